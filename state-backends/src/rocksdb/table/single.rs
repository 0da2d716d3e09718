//! The [`Single`] layout of a [`RocksTable`]: value, reducing and aggregating state,
//! one encoded value per (key, namespace) entry, behind a write-back [`ValueCache`] of
//! decoded values.
//!
//! Invariants:
//! - A value is stored as its encoding alone, so a snapshot entry is the stored key
//!   (without its key group) followed by the stored value, copied as they are.
//! - Setting a value to `None` deletes its entry; no entry is ever stored empty.
//! - Every access goes through the cache: a miss loads the stored value (unless the access
//!   overwrites it), and updates stay in the cache until written back in one batch, when
//!   the cache is full (then emptied) and before a snapshot, a count or a checkpoint of the
//!   database reads the column family. With a cache of size 0 every update is written at
//!   once.

use std::marker::PhantomData;

use super::value_cache::{Cached, ValueCache};
use super::{Layout, RocksTable};
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::full_snapshot::RowLayout;
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::snapshot::KeyGroupBytes;
use crate::tables::{SnapshotTable, StateResult, ValueTable};

/// Layout of value, reducing and aggregating state: one encoded value per entry.
pub(crate) struct Single<V>(PhantomData<V>);

impl<V> Layout for Single<V> {
    type Cache = ValueCache<V>;
    fn cache(entries: usize) -> ValueCache<V> {
        ValueCache::new(entries)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> RocksTable<K, N, Single<V>> {
    /// Runs `f` with the cached entry of the current key and `ns`; on a miss, the entry is
    /// loaded from the database if `load` (else it starts absent: `f` overwrites it).
    fn with_cached<R>(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        load: bool,
        f: impl FnOnce(&mut Cached<V>) -> R,
    ) -> StateResult<R> {
        self.with_entry(cur, ns, |db, cf, key| {
            self.cached((db, cf), key, (load, "value"), f)
        })
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ValueTable<K, N, V> for RocksTable<K, N, Single<V>> {
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(Option<&V>)) -> StateResult<()> {
        self.with_cached(cur, ns, true, |entry| f(entry.value.as_ref()))
    }

    fn modify(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: &mut dyn FnMut(&mut Option<V>),
    ) -> StateResult<()> {
        self.with_cached(cur, ns, true, |entry| {
            f(&mut entry.value);
            entry.dirty = true;
        })
    }

    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()> {
        self.with_cached(cur, ns, false, |entry| {
            entry.value = Some(value);
            entry.dirty = true;
        })
    }

    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Option<V>> {
        self.with_cached(cur, ns, true, |entry| {
            let value = entry.value.take();
            entry.dirty |= value.is_some();
            value
        })
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        self.with_cached(cur, ns, false, |entry| {
            entry.value = None;
            entry.dirty = true;
        })
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&V) -> bool) -> StateResult<usize> {
        self.write_back_all()?;
        self.cache.get_mut().clear();
        let mut removed = 0;
        self.rewrite_rows(|key, bytes, batch, cf| {
            let (value, _): (V, usize) = self.decode(bytes, "value")?;
            if !keep(&value) {
                batch.delete_cf(cf, key);
                removed += 1;
            }
            Ok(())
        })?;
        Ok(removed)
    }

    fn keys(&self, ns: &N) -> StateResult<Vec<K>> {
        self.write_back_all()?;
        self.stored_keys(ns)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> SnapshotTable for RocksTable<K, N, Single<V>> {
    fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>> {
        self.write_back_all()?;
        self.snapshot_rows(RowLayout::Single)
    }

    fn rows(&self) -> Option<RowLayout> {
        Some(RowLayout::Single)
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> StateResult<()> {
        self.write_back_all()?;
        self.cache.get_mut().clear();
        self.restore_with(key_group, bytes, |batch, cf, v: V, key, value| {
            value.clear();
            self.encode(&v, value, "value")?;
            batch.put_cf(cf, key, value);
            Ok(())
        })
    }

    fn clear_all(&mut self) -> StateResult<()> {
        self.cache.get_mut().clear();
        self.clear_everything()
    }

    fn entry_count(&self) -> StateResult<usize> {
        self.write_back_all()?;
        self.stored_entries()
    }

    fn flush(&self) -> StateResult<()> {
        self.write_back_all()
    }

    fn forget_cached(&mut self) {
        self.cache.get_mut().clear();
    }
}
