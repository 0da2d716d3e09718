//! One timer domain (event time or processing time) of a timer service.
//!
//! Timers sit in buckets by timestamp (a `BTreeMap` from timestamp to the bucket's timers)
//! and are indexed by `(key, namespace, timestamp)` in a hash map. Many timers share a
//! timestamp (every key of a window fires at its end), so registering usually appends to an
//! existing bucket, and firing takes a whole bucket at once.
//!
//! Invariants:
//! - `index` holds exactly the live timers; each (key, namespace, timestamp) is live at most
//!   once (de-duplication). A bucket entry is live only if the index maps its timer to the
//!   entry's sequence number: deleting only updates the index, and the stale entry is
//!   skipped when its bucket fires.
//! - Timers with equal timestamps pop by key group, then registration order; restore
//!   re-registers each key group in snapshot order, so that order survives a
//!   snapshot/restore.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Timer;
use crate::bounds::{Namespace, StateKey};
use crate::key_group::KeyGroup;

/// A timer in its bucket: key group, registration sequence, key and namespace.
type Slot<K, N> = (KeyGroup, u64, K, N);

/// The timers of one time domain.
pub(crate) struct TimerQueue<K, N> {
    buckets: BTreeMap<i64, Vec<Slot<K, N>>>,
    index: FxHashMap<(K, N, i64), (KeyGroup, u64)>,
    next_seq: u64,
}

impl<K: StateKey, N: Namespace> TimerQueue<K, N> {
    pub(crate) fn new() -> Self {
        Self {
            buckets: BTreeMap::new(),
            index: FxHashMap::default(),
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn register(
        &mut self,
        key: K,
        namespace: N,
        timestamp: i64,
        key_group: impl FnOnce(&K) -> KeyGroup,
    ) -> bool {
        match self.index.entry((key, namespace, timestamp)) {
            Entry::Occupied(_) => false,
            Entry::Vacant(vacant) => {
                let (key, namespace, _) = vacant.key();
                let kg = key_group(key);
                let seq = self.next_seq;
                self.next_seq += 1;
                self.buckets.entry(timestamp).or_default().push((
                    kg,
                    seq,
                    key.clone(),
                    namespace.clone(),
                ));
                vacant.insert((kg, seq));
                true
            }
        }
    }

    /// Deletes a timer; returns whether it existed. Its bucket entry goes stale.
    pub(crate) fn delete(&mut self, key: &K, namespace: &N, timestamp: i64) -> bool {
        self.index
            .remove(&(key.clone(), namespace.clone(), timestamp))
            .is_some()
    }

    /// Pops every timer with `timestamp <= limit` into `out`, in order.
    pub(crate) fn pop_until(&mut self, limit: i64, out: &mut Vec<Timer<K, N>>) {
        while let Some(first) = self.buckets.first_entry() {
            let timestamp = *first.key();
            if timestamp > limit {
                break;
            }
            let mut bucket = first.remove();
            bucket.sort_unstable_by_key(|(kg, seq, _, _)| (*kg, *seq));
            for (_, seq, key, namespace) in bucket {
                let probe = (key, namespace, timestamp);
                if matches!(self.index.get(&probe), Some((_, s)) if *s == seq) {
                    self.index.remove(&probe);
                    let (key, namespace, _) = probe;
                    out.push(Timer {
                        key,
                        namespace,
                        timestamp,
                    });
                }
            }
        }
    }

    /// Timestamp of the earliest bucket (it may hold only deleted timers: popping it then
    /// fires nothing).
    pub(crate) fn peek_timestamp(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    /// Timestamp of the latest bucket (it may hold only deleted timers): no live timer is
    /// later.
    pub(crate) fn last_timestamp(&self) -> Option<i64> {
        self.buckets.keys().next_back().copied()
    }

    /// Every live timer with its key group, in firing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (KeyGroup, &K, &N, i64)> {
        let mut live: Vec<(i64, KeyGroup, u64, &K, &N)> = Vec::with_capacity(self.index.len());
        for (ts, bucket) in &self.buckets {
            for (kg, seq, k, n) in bucket {
                let probe = (k.clone(), n.clone(), *ts);
                if matches!(self.index.get(&probe), Some((_, s)) if s == seq) {
                    live.push((*ts, *kg, *seq, k, n));
                }
            }
        }
        live.sort_unstable_by_key(|(ts, kg, seq, _, _)| (*ts, *kg, *seq));
        live.into_iter().map(|(ts, kg, _, k, n)| (kg, k, n, ts))
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
        self.index.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kg(_: &u32) -> KeyGroup {
        0
    }

    #[test]
    fn duplicate_registration_is_ignored_and_delete_removes_from_both_indexes() {
        let mut q: TimerQueue<u32, u8> = TimerQueue::new();
        assert!(q.register(1, 0, 10, kg));
        assert!(!q.register(1, 0, 10, kg));
        assert!(q.register(1, 1, 10, kg));
        assert_eq!(q.len(), 2);
        assert!(q.delete(&1, &0, 10));
        assert!(!q.delete(&1, &0, 10));
        assert_eq!(q.len(), 1);
        assert!(
            q.register(1, 0, 10, kg),
            "a deleted timer can be registered again"
        );
    }

    #[test]
    fn a_deleted_then_registered_again_timer_fires_once_in_its_new_place() {
        let mut q: TimerQueue<u32, u8> = TimerQueue::new();
        q.register(1, 0, 10, kg);
        q.register(2, 0, 10, kg);
        assert!(q.delete(&1, &0, 10));
        assert!(q.register(1, 0, 10, kg));
        let mut out = Vec::new();
        q.pop_until(10, &mut out);
        let fired: Vec<u32> = out.iter().map(|t| t.key).collect();
        assert_eq!(
            fired,
            vec![2, 1],
            "the stale entry is skipped; the new one fires last"
        );
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn equal_timestamps_fire_by_key_group_then_registration() {
        let mut q: TimerQueue<u32, u8> = TimerQueue::new();
        for key in [5u32, 1, 4, 2] {
            q.register(key, 0, 7, |k| (*k % 2) as KeyGroup);
        }
        let mut out = Vec::new();
        q.pop_until(7, &mut out);
        let fired: Vec<u32> = out.iter().map(|t| t.key).collect();
        assert_eq!(fired, vec![4, 2, 5, 1]);
    }

    #[test]
    fn pop_until_returns_due_timers_in_timestamp_then_registration_order() {
        let mut q: TimerQueue<u32, u8> = TimerQueue::new();
        for (key, ts) in [(1, 30), (2, 10), (3, 20), (4, 10)] {
            q.register(key, 0, ts, kg);
        }
        let mut out = Vec::new();
        q.pop_until(20, &mut out);
        let fired: Vec<(u32, i64)> = out.iter().map(|t| (t.key, t.timestamp)).collect();
        assert_eq!(fired, vec![(2, 10), (4, 10), (3, 20)]);
        assert_eq!(q.peek_timestamp(), Some(30));
        assert!(q.index.len() == 1 && !q.register(1, 0, 30, kg));
    }
}
