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
        let groups = (0..meta.range.len()).map(|_| FxHashMap::default()).collect();
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
