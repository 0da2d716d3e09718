//! The memory backend's table: per key group a hash map from (key, namespace) to value.
//!
//! Invariants:
//! - `groups[i]` holds exactly the entries of key group `range.start + i`.
//! - Lookups hash borrowed parts (`Lookup`) and never clone the key or the namespace; both
//!   are cloned only when an entry is created. The cost of a lookup does not depend on how
//!   many namespaces (windows) a key has.
//! - Every stored value is `Some`: an entry left `None` by a modification is removed, so
//!   cleared windows leave nothing behind.
//! - Nothing is serialized outside snapshot and restore.

use hashbrown::{Equivalent, HashMap};
use rustc_hash::FxBuildHasher;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::{Hash, Hasher};

use crate::bounds::{Namespace, StateKey};
use crate::error::StateError;
use crate::key_context::CurrentKey;
use crate::key_group::{assign_to_key_group, key_hash, KeyGroup};
use crate::snapshot::{decode_group, encode_group, KeyGroupBytes};
use crate::tables::{SnapshotTable, TableMeta};

/// One key group's entries. Values are `Option` only so a modification can take them out in
/// place; a stored value is never `None`.
type GroupMap<K, N, S> = HashMap<(K, N), Option<S>, FxBuildHasher>;

/// Looks up a `(K, N)` entry from borrowed parts. Hashes exactly as the tuple does (the key,
/// then the namespace), which is what makes it a valid hashbrown equivalent.
struct Lookup<'a, K, N>(&'a K, &'a N);

impl<K: Hash, N: Hash> Hash for Lookup<'_, K, N> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
        self.1.hash(state);
    }
}

impl<K: Eq, N: Eq> Equivalent<(K, N)> for Lookup<'_, K, N> {
    #[inline]
    fn equivalent(&self, entry: &(K, N)) -> bool {
        *self.0 == entry.0 && *self.1 == entry.1
    }
}

pub(crate) struct MemoryTable<K, N, S> {
    meta: TableMeta,
    groups: Vec<GroupMap<K, N, S>>,
}

impl<K: StateKey, N: Namespace, S> MemoryTable<K, N, S> {
    pub(crate) fn new(meta: TableMeta) -> Self {
        let groups = (0..meta.range.len()).map(|_| GroupMap::default()).collect();
        Self { meta, groups }
    }

    #[inline]
    pub(crate) fn get(&self, cur: &CurrentKey<K>, ns: &N) -> Option<&S> {
        self.groups[cur.offset]
            .get(&Lookup(&cur.key, ns))
            .and_then(Option::as_ref)
    }

    #[inline]
    pub(crate) fn modify<R>(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: impl FnOnce(&mut Option<S>) -> R,
    ) -> R {
        let map = &mut self.groups[cur.offset];
        let lookup = Lookup(&cur.key, ns);
        match map.get_mut(&lookup) {
            Some(slot) => {
                let out = f(slot);
                if slot.is_none() {
                    map.remove(&lookup);
                }
                out
            }
            None => {
                let mut slot = None;
                let out = f(&mut slot);
                if slot.is_some() {
                    map.insert((cur.key.clone(), ns.clone()), slot);
                }
                out
            }
        }
    }

    #[inline]
    pub(crate) fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Option<S> {
        self.groups[cur.offset]
            .remove(&Lookup(&cur.key, ns))
            .flatten()
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
            let entries = map
                .iter()
                .filter_map(|((k, n), s)| s.as_ref().map(|s| (k, n, s)));
            let bytes = encode_group(map.len(), entries, self.group_what(key_group))?;
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
            map.insert((key, ns), Some(value));
            Ok(())
        })
    }

    fn clear_all(&mut self) {
        self.groups.iter_mut().for_each(GroupMap::clear);
    }

    fn entry_count(&self) -> usize {
        self.groups.iter().map(GroupMap::len).sum()
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
