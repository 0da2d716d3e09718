//! The RocksDB backend's table: one column family holding one state, in one of three
//! layouts: [`Single`] (value, reducing and aggregating state), [`Listed`] (list state)
//! and [`Mapped`] (map state). See the module documentation for the key layout.
//!
//! This file holds what every layout shares: the table itself, its encoding buffers
//! and the reads, writes, scans, snapshots and restores of whole entries. Each layout's
//! state operations live in a child module named after it; [`groups`] assembles
//! snapshot key groups.
//!
//! Invariants:
//! - An access encodes the key (and the value, on a write) into buffers the table
//!   reuses and looks its column family up once, so the per-access path allocates only
//!   for decoded values.
//! - No entry is stored empty: `None`, an empty list and a map's last removed user key
//!   leave no entry behind.
//! - Snapshots are written in the backend-independent format of [`crate::snapshot`]
//!   straight from the stored bytes (a tuple's encoding is the concatenation of its
//!   parts'); restores decode that format and write it in one batch per key group.

mod listed;
mod mapped;
mod single;
mod value_cache;
mod write_back;

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use rocksdb::{ColumnFamily, ReadOptions, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::instance::RocksDbInstance;
use super::keys::{entry_prefix, key_group_of, PAST_ALL_KEYS};
use super::rows;
use crate::bounds::{Namespace, StateKey};
use crate::codec::{decode_from, encode_into};
use crate::error::StateError;
use crate::full_snapshot::RowLayout;
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::snapshot::KeyGroupBytes;
use crate::tables::{decode_owned_group, StateResult, TableMeta};

pub(crate) use self::listed::Listed;
pub(crate) use self::mapped::Mapped;
pub(crate) use self::single::Single;

/// Marks the key, namespace and layout types of a table, which holds no values of them.
type Types<K, N, L> = PhantomData<fn() -> (K, N, L)>;

/// A layout of a table, and what it keeps in memory beside its column family.
pub(crate) trait Layout {
    /// The layout's cache (`()`: none).
    type Cache;
    /// A cache of at most `entries` entries.
    fn cache(entries: usize) -> Self::Cache;
}

/// One state in its column family.
pub(crate) struct RocksTable<K, N, L: Layout> {
    meta: TableMeta,
    db: Rc<RocksDbInstance>,
    key: RefCell<Vec<u8>>,
    value: RefCell<Vec<u8>>,
    cache: RefCell<L::Cache>,
    _types: Types<K, N, L>,
}

impl<K: StateKey, N: Namespace, L: Layout> RocksTable<K, N, L> {
    /// The table of state `meta.name`, creating its column family if needed.
    pub(crate) fn new(meta: TableMeta, db: Rc<RocksDbInstance>) -> StateResult<Self> {
        db.create_column_family(&meta.name)?;
        let cache = RefCell::new(L::cache(db.value_cache_entries));
        Ok(Self {
            meta,
            db,
            key: RefCell::new(Vec::with_capacity(64)),
            value: RefCell::new(Vec::with_capacity(64)),
            cache,
            _types: PhantomData,
        })
    }

    fn failed(&self, doing: &str, e: rocksdb::Error) -> StateError {
        self.db
            .error(format!("{doing} state '{}'", self.meta.name), e)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> StateResult<(T, usize)> {
        decode_from(bytes).map_err(|e| {
            StateError::codec(format!("stored {what} of state '{}'", self.meta.name), e)
        })
    }

    fn encode<T: Serialize>(&self, value: &T, out: &mut Vec<u8>, what: &str) -> StateResult<()> {
        encode_into(value, out)
            .map_err(|e| StateError::codec(format!("{what} of state '{}'", self.meta.name), e))
    }

    /// Appends every one of `values` to `out`.
    fn encode_all<T: Serialize>(
        &self,
        values: impl IntoIterator<Item = T>,
        out: &mut Vec<u8>,
        what: &str,
    ) -> StateResult<()> {
        values
            .into_iter()
            .try_for_each(|v| self.encode(&v, out, what))
    }

    fn with_cf<R>(&self, f: impl FnOnce(&DB, &ColumnFamily) -> StateResult<R>) -> StateResult<R> {
        self.db.with_cf(&self.meta.name, f)
    }

    /// Runs `f` with the database, the state's column family and `key group | key |
    /// namespace` of the current key and `ns`: the key's encoding is the current key's
    /// (made once per key), and the column family is looked up once per access.
    fn with_entry<R>(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: impl FnOnce(&DB, &ColumnFamily, &mut Vec<u8>) -> StateResult<R>,
    ) -> StateResult<R> {
        let mut key = self.key.borrow_mut();
        key.clear();
        cur.append_encoded(&mut key)
            .map_err(|e| StateError::codec(format!("key of state '{}'", self.meta.name), e))?;
        self.encode(ns, &mut key, "namespace")?;
        self.with_cf(|db, cf| f(db, cf, &mut key))
    }

    /// Calls `f` with the stored bytes of `key`.
    fn get<R>(
        &self,
        db: &DB,
        cf: &ColumnFamily,
        key: &[u8],
        f: impl FnOnce(Option<&[u8]>) -> StateResult<R>,
    ) -> StateResult<R> {
        let bytes = db
            .get_pinned_cf(cf, key)
            .map_err(|e| self.failed("reading", e))?;
        f(bytes.as_deref())
    }

    /// The value stored under `key`, decoded.
    fn get_decoded<T: DeserializeOwned>(
        &self,
        db: &DB,
        cf: &ColumnFamily,
        key: &[u8],
        what: &str,
    ) -> StateResult<Option<T>> {
        self.get(db, cf, key, |bytes| {
            bytes
                .map(|b| self.decode(b, what).map(|(v, _)| v))
                .transpose()
        })
    }

    /// Removes the entry under `key` and returns it, decoded by `decode`.
    fn take_with<T>(
        &self,
        db: &DB,
        cf: &ColumnFamily,
        key: &[u8],
        decode: impl FnOnce(&[u8]) -> StateResult<T>,
    ) -> StateResult<Option<T>> {
        let value = self.get(db, cf, key, |bytes| bytes.map(decode).transpose())?;
        if value.is_some() {
            self.delete(db, cf, key)?;
        }
        Ok(value)
    }

    fn put(&self, db: &DB, cf: &ColumnFamily, key: &[u8], value: &[u8]) -> StateResult<()> {
        db.put_cf_opt(cf, key, value, &self.db.write)
            .map_err(|e| self.failed("writing", e))
    }

    fn delete(&self, db: &DB, cf: &ColumnFamily, key: &[u8]) -> StateResult<()> {
        db.delete_cf_opt(cf, key, &self.db.write)
            .map_err(|e| self.failed("deleting from", e))
    }

    /// Deletes the entry of the current key and `ns`.
    fn delete_entry(&self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, key| self.delete(db, cf, key))
    }

    /// Calls `f(key, value)` for every entry with a key in `[from, to)`, in key order.
    fn scan(
        &self,
        db: &DB,
        cf: &ColumnFamily,
        from: &[u8],
        to: Option<Vec<u8>>,
        mut f: impl FnMut(&[u8], &[u8]) -> StateResult<()>,
    ) -> StateResult<()> {
        let mut options = ReadOptions::default();
        if let Some(to) = to {
            options.set_iterate_upper_bound(to);
        }
        let mut it = db.raw_iterator_cf_opt(cf, options);
        it.seek(from);
        while let (Some(key), Some(value)) = (it.key(), it.value()) {
            f(key, value)?;
            it.next();
        }
        it.status().map_err(|e| self.failed("scanning", e))
    }

    /// Calls `f(key group, prefix length, key, value)` for every entry of the state.
    fn scan_all(
        &self,
        mut f: impl FnMut(KeyGroup, usize, &[u8], &[u8]) -> StateResult<()>,
    ) -> StateResult<()> {
        self.with_cf(|db, cf| {
            self.scan(db, cf, &[], None, |key, value| {
                let key_group = key_group_of(key).ok_or_else(|| self.corrupt_key())?;
                let (_, k): (K, usize) = self.decode(&key[2..], "key")?;
                let (_, n): (N, usize) = self.decode(&key[2 + k..], "namespace")?;
                f(key_group, 2 + k + n, key, value)
            })
        })
    }

    /// The keys with a stored entry in `ns`, each once: the rows of one entry (a map's
    /// user keys) are adjacent, sharing their `key group | key | namespace` prefix.
    fn stored_keys(&self, ns: &N) -> StateResult<Vec<K>> {
        let mut keys = Vec::new();
        let mut last_prefix = Vec::new();
        self.with_cf(|db, cf| {
            self.scan(db, cf, &[], None, |row, _| {
                let body = row.get(2..).ok_or_else(|| self.corrupt_key())?;
                let (key, k): (K, usize) = self.decode(body, "key")?;
                let (n, n_len): (N, usize) = self.decode(&body[k..], "namespace")?;
                let prefix = &row[..2 + k + n_len];
                if n == *ns && prefix != last_prefix.as_slice() {
                    last_prefix.clear();
                    last_prefix.extend_from_slice(prefix);
                    keys.push(key);
                }
                Ok(())
            })
        })?;
        Ok(keys)
    }

    /// Calls `f(key, value, batch, column family)` for every row of the state; the
    /// writes `f` adds to the batch are applied every 4,096 of them and once the scan is
    /// done (the scan reads a consistent view, so it never sees them).
    fn rewrite_rows(
        &self,
        mut f: impl FnMut(&[u8], &[u8], &mut WriteBatch, &ColumnFamily) -> StateResult<()>,
    ) -> StateResult<()> {
        const BATCH_WRITES: usize = 4096;
        self.with_cf(|db, cf| {
            let write = |batch: WriteBatch| {
                db.write_opt(batch, &self.db.write)
                    .map_err(|e| self.failed("cleaning up", e))
            };
            let mut batch = WriteBatch::default();
            self.scan(db, cf, &[], None, |key, value| {
                f(key, value, &mut batch, cf)?;
                if batch.len() >= BATCH_WRITES {
                    write(std::mem::take(&mut batch))?;
                }
                Ok(())
            })?;
            if batch.is_empty() {
                return Ok(());
            }
            write(batch)
        })
    }

    fn corrupt_key(&self) -> StateError {
        StateError::Storage {
            backend: self.db.describe(),
            doing: format!("scanning state '{}'", self.meta.name),
            message: "a stored key is shorter than its key group".to_owned(),
        }
    }

    /// The snapshot of the table: the rows of its column family as `layout` makes them
    /// entries.
    fn snapshot_rows(&self, layout: RowLayout) -> StateResult<Vec<KeyGroupBytes>> {
        let backend = self.db.describe();
        let what = format!("state '{}'", self.meta.name);
        self.with_cf(|db, cf| {
            let name = (backend.as_str(), what.as_str());
            rows::key_groups(
                db,
                cf,
                layout,
                self.meta.range,
                name,
                ReadOptions::default(),
            )
            .collect()
        })
    }

    /// Writes the entries of one snapshot key group: `write(batch, cf, value, key
    /// buffer, value buffer)` adds one entry's writes, its key buffer holding the
    /// entry's `key group | key | namespace`.
    fn restore_with<S: DeserializeOwned>(
        &self,
        key_group: KeyGroup,
        bytes: &[u8],
        mut write: impl FnMut(
            &mut WriteBatch,
            &ColumnFamily,
            S,
            &mut Vec<u8>,
            &mut Vec<u8>,
        ) -> StateResult<()>,
    ) -> StateResult<()> {
        self.meta.offset_of(key_group)?;
        self.with_cf(|db, cf| {
            let mut batch = WriteBatch::default();
            let (mut key, mut value) = (Vec::new(), Vec::new());
            decode_owned_group(&self.meta, key_group, bytes, |k: K, n: N, s: S| {
                entry_prefix(&mut key, key_group, &k, &n, &self.meta.name)?;
                write(&mut batch, cf, s, &mut key, &mut value)
            })?;
            db.write_opt(batch, &self.db.write)
                .map_err(|e| self.failed("restoring", e))
        })
    }

    fn clear_everything(&mut self) -> StateResult<()> {
        self.with_cf(|db, cf| {
            db.delete_range_cf_opt(cf, &[][..], &PAST_ALL_KEYS[..], &self.db.write)
                .map_err(|e| self.failed("clearing", e))
        })
    }

    /// Number of stored entries.
    fn stored_entries(&self) -> StateResult<usize> {
        let mut count = 0;
        self.with_cf(|db, cf| {
            self.scan(db, cf, &[], None, |_, _| {
                count += 1;
                Ok(())
            })
        })?;
        Ok(count)
    }
}
