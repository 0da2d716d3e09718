//! One timer domain (event time or processing time) of a timer service.
//!
//! Timers are ordered by `(timestamp, key group, registration sequence)` in a
//! `BTreeMap` and indexed by `(key, namespace, timestamp)` in a hash map, so
//! registration, deletion and popping are `O(log n)`.
//!
//! Invariants:
//! - `ordered` and `index` hold exactly the same timers; each
//!   (key, namespace, timestamp) is present at most once (de-duplication).
//! - Timers with equal timestamps pop by key group, then registration order;
//!   restore re-registers each key group in snapshot order, so that order
//!   survives a snapshot/restore.

use std::collections::hash_map::Entry;
use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use super::Timer;
use crate::bounds::{Namespace, StateKey};
use crate::key_group::KeyGroup;

/// Position of a timer in the ordered map.
type Slot = (i64, KeyGroup, u64);

/// The timers of one time domain.
pub(crate) struct TimerQueue<K, N> {
    ordered: BTreeMap<Slot, (K, N)>,
    index: FxHashMap<(K, N, i64), (KeyGroup, u64)>,
    next_seq: u64,
}

impl<K: StateKey, N: Namespace> TimerQueue<K, N> {
    pub(crate) fn new() -> Self {
        Self {
            ordered: BTreeMap::new(),
            index: FxHashMap::default(),
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.ordered.len()
    }

    /// Registers a timer unless the same one exists; returns whether it was
    /// new. `key_group` is computed only for new timers.
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
                self.ordered
                    .insert((timestamp, kg, seq), (key.clone(), namespace.clone()));
                vacant.insert((kg, seq));
                true
            }
        }
    }

    /// Deletes a timer; returns whether it existed.
    pub(crate) fn delete(&mut self, key: &K, namespace: &N, timestamp: i64) -> bool {
        match self
            .index
            .remove(&(key.clone(), namespace.clone(), timestamp))
        {
            Some((kg, seq)) => {
                self.ordered.remove(&(timestamp, kg, seq));
                true
            }
            None => false,
        }
    }

    /// Pops every timer with `timestamp <= limit` into `out`, in order.
    pub(crate) fn pop_until(&mut self, limit: i64, out: &mut Vec<Timer<K, N>>) {
        while let Some(first) = self.ordered.first_entry() {
            if first.key().0 > limit {
                break;
            }
            let ((timestamp, _, _), (key, namespace)) = first.remove_entry();
            let probe = (key, namespace, timestamp);
            self.index.remove(&probe);
            let (key, namespace, _) = probe;
            out.push(Timer {
                key,
                namespace,
                timestamp,
            });
        }
    }

    /// Timestamp of the earliest timer.
    pub(crate) fn peek_timestamp(&self) -> Option<i64> {
        self.ordered.first_key_value().map(|((ts, _, _), _)| *ts)
    }

    /// Every timer with its key group, in firing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (KeyGroup, &K, &N, i64)> {
        self.ordered
            .iter()
            .map(|((ts, kg, _), (k, n))| (*kg, k, n, *ts))
    }

    pub(crate) fn clear(&mut self) {
        self.ordered.clear();
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
        assert_eq!((q.len(), q.index.len()), (1, 1));
        assert!(
            q.register(1, 0, 10, kg),
            "a deleted timer can be registered again"
        );
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
