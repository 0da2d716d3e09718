//! The memory backend's table: per key group a hash map from key to the
//! key's namespaces and values.
//!
//! Invariants:
//! - `groups[i]` holds exactly the keys of key group `range.start + i`.
//! - Lookups of existing entries hash `&K` and never clone the key or the
//!   namespace; keys and namespaces are cloned only when an entry is created.
//! - No empty [`KeyEntry`] is stored: removing the last namespace of a key
//!   removes the key, so cleared windows leave nothing behind.
//! - Nothing is serialized outside snapshot and restore.

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::entry::KeyEntry;
use crate::bounds::{Namespace, StateKey};
use crate::error::StateError;
use crate::key_context::CurrentKey;
use crate::key_group::{assign_to_key_group, key_hash, KeyGroup};
use crate::snapshot::{decode_group, encode_group, KeyGroupBytes};
use crate::tables::{SnapshotTable, TableMeta};

/// In-memory storage of one state; `S` is the per-(key, namespace) value
/// (`V`, `Vec<V>` or a map).
pub(crate) struct MemoryTable<K, N, S> {
    meta: TableMeta,
    groups: Vec<FxHashMap<K, KeyEntry<N, S>>>,
}

impl<K: StateKey, N: Namespace, S> MemoryTable<K, N, S> {
    /// An empty table covering `meta.range`.
    pub(crate) fn new(meta: TableMeta) -> Self {
        let groups = (0..meta.range.len())
            .map(|_| FxHashMap::default())
            .collect();
        Self { meta, groups }
    }

    /// The value of (current key, namespace).
    #[inline]
    pub(crate) fn get(&self, cur: &CurrentKey<K>, ns: &N) -> Option<&S> {
        self.groups[cur.offset].get(&cur.key)?.get(ns)
    }

    /// Read-modify-write of the slot of (current key, namespace): `f` sees
    /// `None` if absent; a slot left `None` is removed, a new `Some` inserted.
    #[inline]
    pub(crate) fn modify<R>(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: impl FnOnce(&mut Option<S>) -> R,
    ) -> R {
        let map = &mut self.groups[cur.offset];
        match map.get_mut(&cur.key) {
            Some(entry) => match entry.position(ns) {
                Some(pos) => {
                    let slot = entry.slot_mut(pos);
                    let out = f(slot);
                    if slot.is_none() && entry.remove_at(pos) {
                        map.remove(&cur.key);
                    }
                    out
                }
                None => {
                    let mut slot = None;
                    let out = f(&mut slot);
                    if let Some(value) = slot {
                        entry.push(ns.clone(), value);
                    }
                    out
                }
            },
            None => {
                let mut slot = None;
                let out = f(&mut slot);
                if let Some(value) = slot {
                    map.insert(cur.key.clone(), KeyEntry::new(ns.clone(), value));
                }
                out
            }
        }
    }

    /// Removes and returns the value of (current key, namespace).
    #[inline]
    pub(crate) fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Option<S> {
        self.modify(cur, ns, Option::take)
    }

    fn group_what(&self, key_group: KeyGroup) -> impl Fn() -> String + '_ {
        move || format!("state '{}' key group {key_group}", self.meta.name)
    }
}

impl<K, N, S> SnapshotTable for MemoryTable<K, N, S>
where
    K: StateKey,
    N: Namespace,
    S: Serialize + DeserializeOwned + 'static,
{
    fn snapshot(&self) -> Result<Vec<KeyGroupBytes>, StateError> {
        let mut out = Vec::new();
        for (key_group, map) in self.meta.range.iter().zip(&self.groups) {
            if map.is_empty() {
                continue;
            }
            let count = map.values().map(KeyEntry::len).sum();
            let entries = map
                .iter()
                .flat_map(|(k, entry)| entry.iter().map(move |(n, s)| (k, n, s)));
            let bytes = encode_group(count, entries, self.group_what(key_group))?;
            out.push(KeyGroupBytes { key_group, bytes });
        }
        Ok(out)
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> Result<(), StateError> {
        let range = self.meta.range;
        let offset = range
            .offset_of(key_group)
            .ok_or(StateError::KeyGroupOutOfRange { key_group, range })?;
        let max_parallelism = self.meta.max_parallelism;
        let name = &self.meta.name;
        let what = || format!("state '{name}' key group {key_group}");
        let map = &mut self.groups[offset];
        decode_group(bytes, what, |(key, ns, value): (K, N, S)| {
            let actual = assign_to_key_group(key_hash(&key), max_parallelism);
            if actual != key_group {
                return Err(StateError::KeyGroupMismatch {
                    state: name.to_string(),
                    stored: key_group,
                    actual,
                });
            }
            match map.get_mut(&key) {
                Some(entry) => entry.upsert(ns, value),
                None => {
                    map.insert(key, KeyEntry::new(ns, value));
                }
            }
            Ok(())
        })
    }

    fn clear_all(&mut self) {
        self.groups.iter_mut().for_each(FxHashMap::clear);
    }

    fn entry_count(&self) -> usize {
        self.groups
            .iter()
            .flat_map(FxHashMap::values)
            .map(KeyEntry::len)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::key_group::KeyGroupRange;

    const MAX: u16 = 8;

    fn table() -> MemoryTable<String, u8, u32> {
        MemoryTable::new(TableMeta {
            name: Rc::from("t"),
            range: KeyGroupRange::all(MAX),
            max_parallelism: MAX,
        })
    }

    fn cur(key: &str) -> CurrentKey<String> {
        let key_group = assign_to_key_group(key_hash(key), MAX);
        CurrentKey {
            key: key.to_owned(),
            key_group,
            offset: usize::from(key_group),
        }
    }

    #[test]
    fn clearing_every_namespace_of_a_key_removes_the_key() {
        let mut t = table();
        let a = cur("a");
        for ns in 0..5 {
            t.modify(&a, &ns, |slot| *slot = Some(u32::from(ns)));
        }
        assert_eq!(t.entry_count(), 5);
        assert_eq!(t.get(&a, &3), Some(&3));
        for ns in [2, 0, 4, 1, 3] {
            assert_eq!(t.take(&a, &ns), Some(u32::from(ns)));
        }
        assert!(
            t.groups.iter().all(|g| g.is_empty()),
            "no empty entries linger"
        );
    }

    #[test]
    fn modify_of_an_absent_entry_that_stays_none_inserts_nothing() {
        let mut t = table();
        let seen = t.modify(&cur("a"), &0, |slot| slot.is_none());
        assert!(seen);
        assert_eq!(t.entry_count(), 0);
    }

    #[test]
    fn snapshot_round_trips_through_restore_key_group() {
        let mut t = table();
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            t.modify(&cur(key), &1, |slot| *slot = Some(i as u32));
            t.modify(&cur(key), &2, |slot| *slot = Some(10 + i as u32));
        }
        let groups = t.snapshot().unwrap();
        let mut restored = table();
        for g in &groups {
            restored.restore_key_group(g.key_group, &g.bytes).unwrap();
        }
        assert_eq!(restored.entry_count(), 8);
        assert_eq!(restored.get(&cur("c"), &2), Some(&12));
    }

    #[test]
    fn restoring_a_key_under_the_wrong_key_group_is_detected() {
        let mut t = table();
        let a = cur("a");
        t.modify(&a, &0, |slot| *slot = Some(1));
        let groups = t.snapshot().unwrap();
        let wrong = (a.key_group + 1) % MAX;
        let err = table()
            .restore_key_group(wrong, &groups[0].bytes)
            .unwrap_err();
        assert!(matches!(err, StateError::KeyGroupMismatch { stored, .. } if stored == wrong));
    }
}
