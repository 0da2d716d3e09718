//! The memory backend's table: per key group, a map from namespace to a map from key to
//! value (namespace-major).
//!
//! Invariants:
//! - `groups[i]` holds exactly the entries of key group `range.start + i`.
//! - Lookups borrow the key and the namespace; both are cloned only when an entry is
//!   created.
//! - Namespace-major order keeps the entries of one namespace (one window) together, so the
//!   few windows that records currently update stay small and hot in cache however many
//!   older windows wait for their watermark.
//! - A zero-sized namespace type (`VoidNamespace`: plain keyed state) has one value only;
//!   its entries live in one flat key map per key group, with no namespace level at all.
//! - Every stored value is `Some` and no empty inner map is kept: an entry left `None` by a
//!   modification is removed, and so is its namespace's map once empty, so cleared windows
//!   leave nothing behind.
//! - Nothing is serialized outside snapshot and restore.

use hashbrown::HashMap;
use rustc_hash::FxBuildHasher;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::bounds::{Namespace, StateKey};
use crate::error::StateError;
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::snapshot::{encode_group, KeyGroupBytes};
use crate::tables::{decode_owned_group, SnapshotTable, TableMeta};

/// The entries of one namespace in one key group. Values are `Option` only so a
/// modification can take them out in place; a stored value is never `None`.
type KeyMap<K, S> = HashMap<K, Option<S>, FxBuildHasher>;

/// One key group's entries.
struct Group<K, N, S> {
    /// The namespace of `single` (zero-sized: only to hand out references).
    single_ns: Option<N>,
    /// The entries of a zero-sized namespace type.
    single: KeyMap<K, S>,
    /// The entries of any other namespace type, by namespace.
    by_ns: HashMap<N, KeyMap<K, S>, FxBuildHasher>,
}

impl<K, N, S> Default for Group<K, N, S> {
    fn default() -> Self {
        Self {
            single_ns: None,
            single: KeyMap::default(),
            by_ns: HashMap::default(),
        }
    }
}

impl<K: StateKey, N: Namespace, S> Group<K, N, S> {
    /// Whether `N` has a single value, decided at compile time.
    const SINGLE: bool = std::mem::size_of::<N>() == 0;

    fn keys(&self, ns: &N) -> Option<&KeyMap<K, S>> {
        if Self::SINGLE {
            Some(&self.single)
        } else {
            self.by_ns.get(ns)
        }
    }

    fn len(&self) -> usize {
        self.single.len() + self.by_ns.values().map(KeyMap::len).sum::<usize>()
    }

    fn is_empty(&self) -> bool {
        self.single.is_empty() && self.by_ns.is_empty()
    }

    fn clear(&mut self) {
        self.single.clear();
        self.by_ns.clear();
    }

    fn entries(&self) -> impl Iterator<Item = (&K, &N, &S)> {
        let single = self.single_ns.iter().flat_map(move |n| {
            self.single
                .iter()
                .filter_map(move |(k, s)| s.as_ref().map(|s| (k, n, s)))
        });
        let by_ns = self.by_ns.iter().flat_map(|(n, keys)| {
            keys.iter()
                .filter_map(move |(k, s)| s.as_ref().map(|s| (k, n, s)))
        });
        single.chain(by_ns)
    }

    fn insert(&mut self, key: K, ns: N, value: S) {
        if Self::SINGLE {
            self.single_ns.get_or_insert(ns);
            self.single.insert(key, Some(value));
        } else {
            self.by_ns.entry(ns).or_default().insert(key, Some(value));
        }
    }
}

pub(crate) struct MemoryTable<K, N, S> {
    meta: TableMeta,
    groups: Vec<Group<K, N, S>>,
}

impl<K: StateKey, N: Namespace, S> MemoryTable<K, N, S> {
    pub(crate) fn new(meta: TableMeta) -> Self {
        let groups = (0..meta.range.len()).map(|_| Group::default()).collect();
        Self { meta, groups }
    }

    #[inline]
    pub(crate) fn get(&self, cur: &CurrentKey<K>, ns: &N) -> Option<&S> {
        self.groups[cur.offset]
            .keys(ns)?
            .get(&cur.key)
            .and_then(Option::as_ref)
    }

    #[inline]
    pub(crate) fn modify<R>(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: impl FnOnce(&mut Option<S>) -> R,
    ) -> R {
        let group = &mut self.groups[cur.offset];
        if Group::<K, N, S>::SINGLE {
            return match group.single.get_mut(&cur.key) {
                Some(slot) => {
                    let out = f(slot);
                    if slot.is_none() {
                        group.single.remove(&cur.key);
                    }
                    out
                }
                None => {
                    let mut slot = None;
                    let out = f(&mut slot);
                    if slot.is_some() {
                        group.single_ns.get_or_insert_with(|| ns.clone());
                        group.single.insert(cur.key.clone(), slot);
                    }
                    out
                }
            };
        }
        let group = &mut group.by_ns;
        match group.get_mut(ns) {
            Some(keys) => match keys.get_mut(&cur.key) {
                Some(slot) => {
                    let out = f(slot);
                    if slot.is_none() {
                        keys.remove(&cur.key);
                        if keys.is_empty() {
                            group.remove(ns);
                        }
                    }
                    out
                }
                None => {
                    let mut slot = None;
                    let out = f(&mut slot);
                    if slot.is_some() {
                        keys.insert(cur.key.clone(), slot);
                    }
                    out
                }
            },
            None => {
                let mut slot = None;
                let out = f(&mut slot);
                if slot.is_some() {
                    let mut keys = KeyMap::default();
                    keys.insert(cur.key.clone(), slot);
                    group.insert(ns.clone(), keys);
                }
                out
            }
        }
    }

    #[inline]
    pub(crate) fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Option<S> {
        self.modify(cur, ns, Option::take)
    }

    /// Calls `f` on every stored value, of any key and namespace; a value for which it
    /// returns `false` is removed (and its namespace's map, once empty).
    pub(crate) fn retain_all(&mut self, mut f: impl FnMut(&mut S) -> bool) {
        for group in &mut self.groups {
            group.single.retain(|_, s| s.as_mut().is_some_and(&mut f));
            group.by_ns.retain(|_, keys| {
                keys.retain(|_, s| s.as_mut().is_some_and(&mut f));
                !keys.is_empty()
            });
        }
    }

    /// The keys with an entry in `ns`, of every key group.
    pub(crate) fn keys_in(&self, ns: &N) -> Vec<K> {
        let maps = self.groups.iter().filter_map(|g| g.keys(ns));
        maps.flat_map(|m| {
            m.iter()
                .filter(|(_, s)| s.is_some())
                .map(|(k, _)| k.clone())
        })
        .collect()
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
        for (key_group, group) in self.meta.range.iter().zip(&self.groups) {
            if group.is_empty() {
                continue;
            }
            let bytes = encode_group(group.len(), group.entries(), self.group_what(key_group))?;
            out.push(KeyGroupBytes { key_group, bytes });
        }
        Ok(out)
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> Result<(), StateError> {
        let offset = self.meta.offset_of(key_group)?;
        let group = &mut self.groups[offset];
        decode_owned_group(&self.meta, key_group, bytes, |key, ns, value: S| {
            group.insert(key, ns, value);
            Ok(())
        })
    }

    fn clear_all(&mut self) -> Result<(), StateError> {
        self.groups.iter_mut().for_each(Group::clear);
        Ok(())
    }

    fn entry_count(&self) -> Result<usize, StateError> {
        Ok(self.groups.iter().map(Group::len).sum())
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;
    use crate::key_group::{assign_to_key_group, key_hash, KeyGroupRange};

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
        CurrentKey::new(key.to_owned(), key_group, usize::from(key_group))
    }

    #[test]
    fn clearing_every_namespace_of_a_key_removes_the_key() {
        let mut t = table();
        let a = cur("a");
        for ns in 0..5 {
            t.modify(&a, &ns, |slot| *slot = Some(u32::from(ns)));
        }
        assert_eq!(t.entry_count().unwrap(), 5);
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
        assert_eq!(t.entry_count().unwrap(), 0);
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
        assert_eq!(restored.entry_count().unwrap(), 8);
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
