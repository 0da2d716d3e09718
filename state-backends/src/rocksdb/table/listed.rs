//! The [`Listed`] layout of a [`RocksTable`]: list state, the concatenated encoded
//! elements of a list per (key, namespace) entry.
//!
//! Invariants:
//! - Adding elements appends their encodings with a merge operator, without reading
//!   the stored list.
//! - An empty list leaves no entry: updating to, or restoring, an empty list deletes or
//!   skips the entry.
//! - A snapshot entry is the list's length followed by its elements as stored.

use std::marker::PhantomData;

use rocksdb::{ColumnFamily, DB};

use super::RocksTable;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::codec::{decode_from, CodecError};
use crate::full_snapshot::RowLayout;
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::snapshot::KeyGroupBytes;
use crate::tables::{ListTable, SnapshotTable, StateResult};

/// Layout of list state: the concatenated encoded elements per entry.
pub(crate) struct Listed<V>(PhantomData<V>);

impl<V> super::Layout for Listed<V> {
    type Cache = ();
    fn cache(_: usize) {}
}

/// The number of elements of a stored list: a snapshot entry is `(key, namespace,
/// Vec<V>)`, the list's length, then its elements as stored.
fn list_len<V: StateValue>(mut bytes: &[u8]) -> Result<u64, CodecError> {
    let mut len = 0;
    while !bytes.is_empty() {
        let (_, used): (V, usize) = decode_from(bytes)?;
        bytes = &bytes[used..];
        len += 1;
    }
    Ok(len)
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

    fn add(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()> {
        self.with_entry(cur, ns, |db, cf, key| {
            self.append(db, cf, key, &mut std::iter::once(value))
                .map(drop)
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

    fn retain_elements(&mut self, keep: &mut dyn FnMut(&V) -> bool) -> StateResult<usize> {
        let (mut removed, mut buf) = (0, Vec::new());
        self.rewrite_rows(|key, bytes, batch, cf| {
            let mut list = self.elements(bytes)?;
            let before = list.len();
            list.retain(|v| keep(v));
            if list.len() == before {
                return Ok(());
            }
            removed += before - list.len();
            if list.is_empty() {
                batch.delete_cf(cf, key);
            } else {
                buf.clear();
                self.encode_all(&list, &mut buf, "list element")?;
                batch.put_cf(cf, key, &buf[..]);
            }
            Ok(())
        })?;
        Ok(removed)
    }

    fn keys(&self, ns: &N) -> StateResult<Vec<K>> {
        self.stored_keys(ns)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> SnapshotTable for RocksTable<K, N, Listed<V>> {
    fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>> {
        self.snapshot_rows(RowLayout::Listed(list_len::<V>))
    }

    fn rows(&self) -> Option<RowLayout> {
        Some(RowLayout::Listed(list_len::<V>))
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
