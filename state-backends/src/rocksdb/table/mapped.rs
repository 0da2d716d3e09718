//! The [`Mapped`] layout of a [`RocksTable`]: map state, one entry per user key, its
//! key being `key group | key | namespace | user key`.
//!
//! Invariants:
//! - The user entries of one (key, namespace) share its entry prefix, so they are one
//!   contiguous key range: iterating, counting and clearing a map scan or delete that
//!   range only.
//! - Removing a map's last user key leaves nothing of the map behind.
//! - Point accesses (`get`, `contains`, `put`, `remove`) go through the write-back cache
//!   of decoded user entries (`write_back.rs`), as value state's do; whatever reads the
//!   column family (iteration, length, clearing, snapshots, listing keys) writes the
//!   cache's changes back first.
//! - A snapshot entry is the map's length followed by its (user key, value) pairs as
//!   stored; the entry count is the number of distinct (key, namespace) maps.

use std::marker::PhantomData;

use rocksdb::{ColumnFamily, WriteBatch, DB};

use super::value_cache::{Cached, ValueCache};
use super::RocksTable;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::codec::{decode_from, CodecError};
use crate::error::StateError;
use crate::full_snapshot::RowLayout;
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::memory::UserMap;
use crate::rocksdb::keys::prefix_end;
use crate::snapshot::KeyGroupBytes;
use crate::tables::{MapTable, SnapshotTable, StateResult};

/// The length of `key | namespace` at the start of a stored key (after its key group):
/// a snapshot entry is `(key, namespace, map)`, the map's length, then its (user key,
/// value) pairs as stored, the pairs of one (key, namespace) being consecutive rows.
fn key_namespace_len<K: StateKey, N: Namespace>(bytes: &[u8]) -> Result<usize, CodecError> {
    let (_, key): (K, usize) = decode_from(bytes)?;
    let (_, ns): (N, usize) = decode_from(&bytes[key..])?;
    Ok(key + ns)
}

/// Layout of map state: one entry per user key.
pub(crate) struct Mapped<UK, UV>(PhantomData<(UK, UV)>);

impl<UK, UV> super::Layout for Mapped<UK, UV> {
    type Cache = ValueCache<UV>;
    fn cache(entries: usize) -> ValueCache<UV> {
        ValueCache::new(entries)
    }
}

impl<K, N, UK, UV> RocksTable<K, N, Mapped<UK, UV>>
where
    K: StateKey,
    N: Namespace,
    UK: StateKey,
    UV: StateValue,
{
    /// Runs `f` with the key of user key `uk` of the current key and `ns`.
    fn with_user_key<R>(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        uk: &UK,
        f: impl FnOnce(&DB, &ColumnFamily, &[u8]) -> StateResult<R>,
    ) -> StateResult<R> {
        self.with_entry(cur, ns, |db, cf, key| {
            self.encode(uk, key, "user key")?;
            f(db, cf, key)
        })
    }

    /// Runs `f` with the cached user entry `uk` of the current key and `ns`; on a miss it
    /// is loaded from the database if `load` (else it starts absent: `f` overwrites it).
    fn with_cached<R>(
        &self,
        (cur, ns, uk): (&CurrentKey<K>, &N, &UK),
        load: bool,
        f: impl FnOnce(&mut Cached<UV>) -> R,
    ) -> StateResult<R> {
        self.with_user_key(cur, ns, uk, |db, cf, key| {
            self.cached((db, cf), key, (load, "map value"), f)
        })
    }

    /// Calls `f(user key, value)` with the stored bytes of every user entry of the
    /// current key and `ns` (the cache's changes are written back first).
    fn scan_map(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        mut f: impl FnMut(&[u8], &[u8]) -> StateResult<()>,
    ) -> StateResult<()> {
        self.write_back_all()?;
        self.with_entry(cur, ns, |db, cf, prefix| {
            let len = prefix.len();
            self.scan(db, cf, prefix, prefix_end(prefix), |key, value| {
                f(&key[len..], value)
            })
        })
    }
}

impl<K, N, UK, UV> MapTable<K, N, UK, UV> for RocksTable<K, N, Mapped<UK, UV>>
where
    K: StateKey,
    N: Namespace,
    UK: StateKey,
    UV: StateValue,
{
    fn get(&self, cur: &CurrentKey<K>, ns: &N, uk: &UK) -> StateResult<Option<UV>> {
        self.with_cached((cur, ns, uk), true, |e| e.value.clone())
    }

    fn contains(&self, cur: &CurrentKey<K>, ns: &N, uk: &UK) -> StateResult<bool> {
        self.with_cached((cur, ns, uk), true, |e| e.value.is_some())
    }

    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, uk: UK, value: UV) -> StateResult<()> {
        self.with_cached((cur, ns, &uk), false, |e| {
            e.value = Some(value);
            e.dirty = true;
        })
    }

    fn remove(&mut self, cur: &CurrentKey<K>, ns: &N, uk: &UK) -> StateResult<()> {
        self.with_cached((cur, ns, uk), false, |e| {
            e.value = None;
            e.dirty = true;
        })
    }

    fn for_each(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: &mut dyn FnMut(&UK, &UV),
    ) -> StateResult<()> {
        self.scan_map(cur, ns, |uk, value| {
            let (uk, _): (UK, usize) = self.decode(uk, "user key")?;
            let (value, _): (UV, usize) = self.decode(value, "map value")?;
            f(&uk, &value);
            Ok(())
        })
    }

    fn len(&self, cur: &CurrentKey<K>, ns: &N) -> StateResult<usize> {
        let mut len = 0;
        self.scan_map(cur, ns, |_, _| {
            len += 1;
            Ok(())
        })?;
        Ok(len)
    }

    /// Deletes the map's rows one by one (each is dropped from the cache too), which costs
    /// what the map holds, as reading it did.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        self.write_back_all()?;
        self.with_entry(cur, ns, |db, cf, prefix| {
            let mut cache = self.cache.borrow_mut();
            let mut batch = WriteBatch::default();
            self.scan(db, cf, prefix, prefix_end(prefix), |key, _| {
                batch.delete_cf(cf, key);
                cache.forget(key);
                Ok(())
            })?;
            if batch.is_empty() {
                return Ok(());
            }
            db.write_opt(batch, &self.db.write)
                .map_err(|e| self.failed("deleting from", e))
        })
    }

    fn retain_entries(&mut self, keep: &mut dyn FnMut(&UK, &UV) -> bool) -> StateResult<usize> {
        self.write_back_all()?;
        self.cache.get_mut().clear();
        let mut removed = 0;
        self.rewrite_rows(|key, bytes, batch, cf| {
            let stored = key.get(2..).ok_or_else(|| self.corrupt_key())?;
            let prefix = key_namespace_len::<K, N>(stored).map_err(|e| {
                StateError::codec(format!("stored key of state '{}'", self.meta.name), e)
            })?;
            let (uk, _): (UK, usize) = self.decode(&stored[prefix..], "user key")?;
            let (uv, _): (UV, usize) = self.decode(bytes, "map value")?;
            if !keep(&uk, &uv) {
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

impl<K, N, UK, UV> SnapshotTable for RocksTable<K, N, Mapped<UK, UV>>
where
    K: StateKey,
    N: Namespace,
    UK: StateKey,
    UV: StateValue,
{
    fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>> {
        self.write_back_all()?;
        self.snapshot_rows(RowLayout::Mapped(key_namespace_len::<K, N>))
    }

    fn rows(&self) -> Option<RowLayout> {
        Some(RowLayout::Mapped(key_namespace_len::<K, N>))
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> StateResult<()> {
        self.write_back_all()?;
        self.cache.get_mut().clear();
        self.restore_with(
            key_group,
            bytes,
            |batch, cf, map: UserMap<UK, UV>, key, value| {
                let prefix_len = key.len();
                for (uk, uv) in &map {
                    key.truncate(prefix_len);
                    self.encode(uk, key, "user key")?;
                    value.clear();
                    self.encode(uv, value, "map value")?;
                    batch.put_cf(cf, &key[..], &value[..]);
                }
                Ok(())
            },
        )
    }

    fn clear_all(&mut self) -> StateResult<()> {
        self.cache.get_mut().clear();
        self.clear_everything()
    }

    fn entry_count(&self) -> StateResult<usize> {
        self.write_back_all()?;
        let mut count = 0;
        let mut last: Vec<u8> = Vec::new();
        self.scan_all(|_, prefix_len, key, _| {
            if last.as_slice() != &key[..prefix_len] {
                count += 1;
                last.clear();
                last.extend_from_slice(&key[..prefix_len]);
            }
            Ok(())
        })?;
        Ok(count)
    }

    fn flush(&self) -> StateResult<()> {
        self.write_back_all()
    }

    fn forget_cached(&mut self) {
        self.cache.get_mut().clear();
    }
}
