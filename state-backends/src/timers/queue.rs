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
//!   skipped when its bucket fires. `stale` counts such entries.
//! - Timers with equal timestamps pop by key group, then registration order; restore
//!   re-registers each key group in snapshot order, so that order survives a
//!   snapshot/restore.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use hashbrown::hash_map::Entry;
use hashbrown::{Equivalent, HashMap};
use rustc_hash::{FxBuildHasher, FxHashMap};

use super::Timer;
use crate::bounds::{Namespace, StateKey};
use crate::key_group::KeyGroup;

/// A timer in its bucket: key group, registration sequence, key and namespace.
type Slot<K, N> = (KeyGroup, u64, K, N);

/// A key group's live timers, borrowed, in firing order: key, namespace, timestamp.
pub(crate) type GroupTimers<'a, K, N> = (KeyGroup, Vec<(&'a K, &'a N, i64)>);

/// A borrowed `(key, namespace, timestamp)` that finds its timer in the index without
/// cloning key and namespace: it hashes exactly as the tuple does.
struct Probe<'a, K, N>(&'a K, &'a N, i64);

impl<K: Hash, N: Hash> Hash for Probe<'_, K, N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
        self.2.hash(state);
    }
}

impl<K: Eq, N: Eq> Equivalent<(K, N, i64)> for Probe<'_, K, N> {
    fn equivalent(&self, other: &(K, N, i64)) -> bool {
        *self.0 == other.0 && *self.1 == other.1 && self.2 == other.2
    }
}

/// The timers of one time domain.
pub(crate) struct TimerQueue<K, N> {
    buckets: BTreeMap<i64, Vec<Slot<K, N>>>,
    index: HashMap<(K, N, i64), (KeyGroup, u64), FxBuildHasher>,
    next_seq: u64,
    /// Bucket entries that are stale (their timer was deleted): while there are none,
    /// every bucket entry is live and a snapshot needs no index lookups.
    stale: usize,
}

impl<K: StateKey, N: Namespace> TimerQueue<K, N> {
    pub(crate) fn new() -> Self {
        Self {
            buckets: BTreeMap::new(),
            index: HashMap::default(),
            next_seq: 0,
            stale: 0,
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
        let deleted = self
            .index
            .remove(&Probe(key, namespace, timestamp))
            .is_some();
        self.stale += usize::from(deleted);
        deleted
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
                } else {
                    self.stale -= 1;
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

    /// The live timers by key group, ascending, each group's in firing order (timestamp,
    /// then registration): buckets are walked in timestamp order and each bucket holds its
    /// timers in registration order, so nothing needs sorting but the key groups.
    pub(crate) fn by_key_group(&self) -> Vec<GroupTimers<'_, K, N>> {
        let mut groups: FxHashMap<KeyGroup, Vec<(&K, &N, i64)>> = FxHashMap::default();
        for (ts, bucket) in &self.buckets {
            for (kg, seq, k, n) in bucket {
                let live = self.stale == 0
                    || matches!(self.index.get(&Probe(k, n, *ts)), Some((_, s)) if s == seq);
                if live {
                    groups.entry(*kg).or_default().push((k, n, *ts));
                }
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_unstable_by_key(|(kg, _)| *kg);
        groups
    }

    pub(crate) fn clear(&mut self) {
        self.buckets.clear();
        self.index.clear();
        self.stale = 0;
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
    fn by_key_group_lists_live_timers_in_firing_order_with_and_without_deletions() {
        let mut q: TimerQueue<u32, u8> = TimerQueue::new();
        let by_key = |k: &u32| (*k % 2) as KeyGroup;
        for (key, ts) in [(1, 30), (2, 10), (3, 20), (4, 10), (5, 10)] {
            q.register(key, 0, ts, by_key);
        }
        type Listed = Vec<(KeyGroup, Vec<(u32, i64)>)>;
        let listed = |q: &TimerQueue<u32, u8>| -> Listed {
            let groups = q.by_key_group();
            let owned = groups
                .into_iter()
                .map(|(kg, timers)| (kg, timers.into_iter().map(|(k, _, ts)| (*k, ts)).collect()));
            owned.collect()
        };
        assert_eq!(
            listed(&q),
            vec![
                (0, vec![(2, 10), (4, 10)]),
                (1, vec![(5, 10), (3, 20), (1, 30)])
            ]
        );
        assert!(q.delete(&5, &0, 10) && q.delete(&1, &0, 30));
        q.register(1, 0, 30, by_key);
        assert_eq!(
            listed(&q),
            vec![(0, vec![(2, 10), (4, 10)]), (1, vec![(3, 20), (1, 30)])],
            "the deleted timer is gone and the re-registered one listed once"
        );
        let mut out = Vec::new();
        q.pop_until(30, &mut out);
        assert_eq!(
            (out.len(), q.stale),
            (4, 0),
            "popping drops the stale entries"
        );
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
