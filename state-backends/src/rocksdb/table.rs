//! The RocksDB backend's table: one column family holding one state, in one of three
//! layouts: [`Single`] (value, reducing and aggregating state), [`Listed`] (list state)
//! and [`Mapped`] (map state). See the module documentation for the key layout.
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

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;

use rocksdb::{ColumnFamily, ReadOptions, WriteBatch, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::instance::RocksDbInstance;
use super::keys::{entry_prefix, key_group_of, prefix_end, PAST_ALL_KEYS};
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::codec::{decode_from, encode_into};
use crate::error::StateError;
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::memory::UserMap;
use crate::snapshot::{group_start, KeyGroupBytes};
use crate::tables::{
    decode_owned_group, ListTable, MapTable, SnapshotTable, StateResult, TableMeta, ValueTable,
};

/// Layout of value, reducing and aggregating state: one encoded value per entry.
pub(crate) struct Single<V>(PhantomData<V>);
/// Layout of list state: the concatenated encoded elements per entry.
pub(crate) struct Listed<V>(PhantomData<V>);
/// Layout of map state: one entry per user key.
pub(crate) struct Mapped<UK, UV>(PhantomData<(UK, UV)>);

/// One state in its column family.
pub(crate) struct RocksTable<K, N, L> {
    meta: TableMeta,
    db: Rc<RocksDbInstance>,
    key: RefCell<Vec<u8>>,
    value: RefCell<Vec<u8>>,
    _types: PhantomData<fn() -> (K, N, L)>,
}

/// Assembles snapshot key groups from entries met in key order.
#[derive(Default)]
struct Groups {
    out: Vec<KeyGroupBytes>,
    group: Option<KeyGroup>,
    count: u64,
    body: Vec<u8>,
}

impl Groups {
    /// The buffer of the next entry of `key_group`.
    fn entry(&mut self, key_group: KeyGroup) -> &mut Vec<u8> {
        if self.group != Some(key_group) {
            self.flush();
            self.group = Some(key_group);
        }
        self.count += 1;
        &mut self.body
    }

    /// Adds an entry of `key_group`: `head`, then `count`, then `tail` (a list's or a
    /// map's length precedes its elements).
    fn counted(&mut self, key_group: KeyGroup, head: &[u8], count: u64, tail: &[u8]) {
        let entry = self.entry(key_group);
        entry.extend_from_slice(head);
        encode_into(&count, entry).expect("a u64 always encodes");
        entry.extend_from_slice(tail);
    }

    fn flush(&mut self) {
        if let Some(key_group) = self.group.take() {
            let mut bytes = group_start(self.count, self.body.len());
            bytes.extend_from_slice(&self.body);
            self.out.push(KeyGroupBytes { key_group, bytes });
            self.count = 0;
            self.body.clear();
        }
    }

    fn finish(mut self) -> Vec<KeyGroupBytes> {
        self.flush();
        self.out
    }
}

impl<K: StateKey, N: Namespace, L> RocksTable<K, N, L> {
    /// The table of state `meta.name`, creating its column family if needed.
    pub(crate) fn new(meta: TableMeta, db: Rc<RocksDbInstance>) -> StateResult<Self> {
        db.create_column_family(&meta.name)?;
        Ok(Self {
            meta,
            db,
            key: RefCell::new(Vec::with_capacity(64)),
            value: RefCell::new(Vec::with_capacity(64)),
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
    /// namespace` of the current key and `ns`: one key encoding and one column-family
    /// lookup per access.
    fn with_entry<R>(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: impl FnOnce(&DB, &ColumnFamily, &mut Vec<u8>) -> StateResult<R>,
    ) -> StateResult<R> {
        let mut key = self.key.borrow_mut();
        entry_prefix(&mut key, cur.key_group, &cur.key, ns, &self.meta.name)?;
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

    /// Encodes `value` and stores it under `key`.
    fn put_encoded<T: Serialize>(
        &self,
        db: &DB,
        cf: &ColumnFamily,
        key: &[u8],
        value: &T,
    ) -> StateResult<()> {
        let mut buf = self.value.borrow_mut();
        buf.clear();
        self.encode(value, &mut buf, "value")?;
        self.put(db, cf, key, &buf)
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

    fn corrupt_key(&self) -> StateError {
        StateError::Storage {
            backend: self.db.describe(),
            doing: format!("scanning state '{}'", self.meta.name),
            message: "a stored key is shorter than its key group".to_owned(),
        }
    }

    /// The snapshot of a layout with one stored entry per (key, namespace): the stored
    /// key without its key group, then `value(stored value, entry)`.
    fn snapshot_entries(
        &self,
        mut value: impl FnMut(&[u8], &mut Groups, KeyGroup, &[u8]) -> StateResult<()>,
    ) -> StateResult<Vec<KeyGroupBytes>> {
        let mut groups = Groups::default();
        self.scan_all(|key_group, _, key, stored| {
            value(stored, &mut groups, key_group, &key[2..])
        })?;
        Ok(groups.finish())
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

impl<K: StateKey, N: Namespace, V: StateValue> ValueTable<K, N, V> for RocksTable<K, N, Single<V>> {
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(Option<&V>)) -> StateResult<()> {
        let value: Option<V> = self.with_entry(cur, ns, |db, cf, key| {
            self.get_decoded(db, cf, key, "value")
        })?;
        f(value.as_ref());
        Ok(())
    }

    fn modify(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: &mut dyn FnMut(&mut Option<V>),
    ) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, key| {
            let mut slot = self.get_decoded(db, cf, key, "value")?;
            let existed = slot.is_some();
            f(&mut slot);
            match &slot {
                Some(v) => self.put_encoded(db, cf, key, v),
                None if existed => self.delete(db, cf, key),
                None => Ok(()),
            }
        })
    }

    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, key| self.put_encoded(db, cf, key, &value))
    }

    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Option<V>> {
        self.with_entry(cur, ns, |db, cf, key| {
            self.take_with(db, cf, key, |b| self.decode(b, "value").map(|(v, _)| v))
        })
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        self.delete_entry(cur, ns)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> SnapshotTable for RocksTable<K, N, Single<V>> {
    fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>> {
        // (key, namespace, value): the stored key and value as they are.
        self.snapshot_entries(|stored, groups, key_group, head| {
            let entry = groups.entry(key_group);
            entry.extend_from_slice(head);
            entry.extend_from_slice(stored);
            Ok(())
        })
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> StateResult<()> {
        self.restore_with(key_group, bytes, |batch, cf, v: V, key, value| {
            value.clear();
            self.encode(&v, value, "value")?;
            batch.put_cf(cf, key, value);
            Ok(())
        })
    }

    fn clear_all(&mut self) -> StateResult<()> {
        self.clear_everything()
    }

    fn entry_count(&self) -> StateResult<usize> {
        self.stored_entries()
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> RocksTable<K, N, Listed<V>> {
    /// Calls `f` for each of the concatenated elements in `bytes`.
    fn each_element(&self, mut bytes: &[u8], mut f: impl FnMut(V)) -> StateResult<()> {
        while !bytes.is_empty() {
            let (v, used): (V, usize) = self.decode(bytes, "list element")?;
            f(v);
            bytes = &bytes[used..];
        }
        Ok(())
    }

    /// Decodes concatenated elements.
    fn elements(&self, bytes: &[u8]) -> StateResult<Vec<V>> {
        let mut out = Vec::new();
        self.each_element(bytes, |v| out.push(v))?;
        Ok(out)
    }

    /// Appends the encoded `values` to the list under `key`; returns whether any.
    fn append(
        &self,
        db: &DB,
        cf: &ColumnFamily,
        key: &[u8],
        values: &mut dyn Iterator<Item = V>,
    ) -> StateResult<bool> {
        let mut buf = self.value.borrow_mut();
        buf.clear();
        self.encode_all(values, &mut buf, "list element")?;
        if buf.is_empty() {
            return Ok(false);
        }
        db.merge_cf_opt(cf, key, &buf[..], &self.db.write)
            .map_err(|e| self.failed("appending to", e))?;
        Ok(true)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ListTable<K, N, V> for RocksTable<K, N, Listed<V>> {
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&[V])) -> StateResult<()> {
        let list = self.with_entry(cur, ns, |db, cf, key| {
            self.get(db, cf, key, |b| {
                b.map_or(Ok(Vec::new()), |b| self.elements(b))
            })
        })?;
        f(&list);
        Ok(())
    }

    fn add(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<bool> {
        self.with_entry(cur, ns, |db, cf, key| {
            let started = self.get(db, cf, key, |bytes| Ok(bytes.is_none()))?;
            self.append(db, cf, key, &mut std::iter::once(value))?;
            Ok(started)
        })
    }

    fn add_all(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        values: &mut dyn Iterator<Item = V>,
    ) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, key| {
            self.append(db, cf, key, values).map(drop)
        })
    }

    fn update(&mut self, cur: &CurrentKey<K>, ns: &N, values: Vec<V>) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, key| {
            let mut buf = self.value.borrow_mut();
            buf.clear();
            self.encode_all(&values, &mut buf, "list element")?;
            if buf.is_empty() {
                self.delete(db, cf, key)
            } else {
                self.put(db, cf, key, &buf)
            }
        })
    }

    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Vec<V>> {
        let list = self.with_entry(cur, ns, |db, cf, key| {
            self.take_with(db, cf, key, |b| self.elements(b))
        })?;
        Ok(list.unwrap_or_default())
    }

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        self.delete_entry(cur, ns)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> SnapshotTable for RocksTable<K, N, Listed<V>> {
    fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>> {
        // (key, namespace, Vec<V>): the list's length, then its elements as stored.
        self.snapshot_entries(|stored, groups, key_group, head| {
            let mut len = 0u64;
            self.each_element(stored, |_| len += 1)?;
            groups.counted(key_group, head, len, stored);
            Ok(())
        })
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> StateResult<()> {
        self.restore_with(key_group, bytes, |batch, cf, list: Vec<V>, key, value| {
            value.clear();
            self.encode_all(&list, value, "list element")?;
            if !value.is_empty() {
                batch.put_cf(cf, key, value);
            }
            Ok(())
        })
    }

    fn clear_all(&mut self) -> StateResult<()> {
        self.clear_everything()
    }

    fn entry_count(&self) -> StateResult<usize> {
        self.stored_entries()
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

    /// Calls `f(user key, value)` with the stored bytes of every user entry of the
    /// current key and `ns`.
    fn scan_map(
        &self,
        cur: &CurrentKey<K>,
        ns: &N,
        mut f: impl FnMut(&[u8], &[u8]) -> StateResult<()>,
    ) -> StateResult<()> {
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
        self.with_user_key(cur, ns, uk, |db, cf, key| {
            self.get_decoded(db, cf, key, "map value")
        })
    }

    fn contains(&self, cur: &CurrentKey<K>, ns: &N, uk: &UK) -> StateResult<bool> {
        self.with_user_key(cur, ns, uk, |db, cf, key| {
            RocksTable::get(self, db, cf, key, |bytes| Ok(bytes.is_some()))
        })
    }

    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, uk: UK, value: UV) -> StateResult<()> {
        self.with_user_key(cur, ns, &uk, |db, cf, key| {
            self.put_encoded(db, cf, key, &value)
        })
    }

    fn remove(&mut self, cur: &CurrentKey<K>, ns: &N, uk: &UK) -> StateResult<()> {
        self.with_user_key(cur, ns, uk, |db, cf, key| self.delete(db, cf, key))
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

    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, prefix| {
            // Never `None`: the prefix starts with a key group, below 0x8000.
            let end = prefix_end(prefix).expect("a key group's first byte is below 0x80");
            db.delete_range_cf_opt(cf, &prefix[..], &end[..], &self.db.write)
                .map_err(|e| self.failed("deleting from", e))
        })
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
        // (key, namespace, map): the map's length, then its (user key, value) pairs;
        // the pairs of one (key, namespace) are consecutive.
        let mut groups = Groups::default();
        // The (key group, prefix, pair count, pairs) of the map being read.
        let mut map: Option<(KeyGroup, Vec<u8>, u64, Vec<u8>)> = None;
        self.scan_all(|key_group, prefix_len, key, value| {
            let prefix = &key[..prefix_len];
            if map.as_ref().is_none_or(|(_, p, _, _)| p != prefix) {
                if let Some((g, p, count, pairs)) = map.take() {
                    groups.counted(g, &p[2..], count, &pairs);
                }
                map = Some((key_group, prefix.to_vec(), 0, Vec::new()));
            }
            let (_, _, count, pairs) = map.as_mut().expect("set above");
            pairs.extend_from_slice(&key[prefix_len..]);
            pairs.extend_from_slice(value);
            *count += 1;
            Ok(())
        })?;
        if let Some((g, p, count, pairs)) = map {
            groups.counted(g, &p[2..], count, &pairs);
        }
        Ok(groups.finish())
    }

    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> StateResult<()> {
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
        self.clear_everything()
    }

    fn entry_count(&self) -> StateResult<usize> {
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
}
