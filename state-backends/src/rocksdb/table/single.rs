//! The [`Single`] layout of a [`RocksTable`]: value, reducing and aggregating state,
//! one encoded value per (key, namespace) entry.
//!
//! Invariants:
//! - A value is stored as its encoding alone, so a snapshot entry is the stored key
//!   (without its key group) followed by the stored value, copied as they are.
//! - Setting a value to `None` deletes its entry; no entry is ever stored empty.

use std::marker::PhantomData;

use super::RocksTable;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::key_context::CurrentKey;
use crate::key_group::KeyGroup;
use crate::snapshot::KeyGroupBytes;
use crate::tables::{SnapshotTable, StateResult, ValueTable};

/// Layout of value, reducing and aggregating state: one encoded value per entry.
pub(crate) struct Single<V>(PhantomData<V>);

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
