//! Row access through a layout's write-back [`ValueCache`] (the value and map layouts): a
//! cached row is read and changed in memory; changed rows reach the database together, in
//! one write batch, when the cache is full (it is then emptied) and before anything reads
//! the column family directly.
//!
//! Invariants: with a cache of capacity 0 every change is written at once; a row turns
//! clean only once the batch holding it was written.

use rocksdb::{ColumnFamily, WriteBatch, DB};

use super::value_cache::{Cached, ValueCache};
use super::{Layout, RocksTable};
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::tables::StateResult;

impl<K, N, V, L> RocksTable<K, N, L>
where
    K: StateKey,
    N: Namespace,
    V: StateValue,
    L: Layout<Cache = ValueCache<V>>,
{
    /// Runs `f` with the cached row `key` (`what` names its value in errors); on a miss the
    /// row is loaded from the database if `load` (else it starts absent: `f` overwrites it).
    pub(super) fn cached<R>(
        &self,
        (db, cf): (&DB, &ColumnFamily),
        key: &[u8],
        (load, what): (bool, &str),
        f: impl FnOnce(&mut Cached<V>) -> R,
    ) -> StateResult<R> {
        let mut cache = self.cache.borrow_mut();
        let miss = || {
            let value = if load {
                self.get_decoded(db, cf, key, what)?
            } else {
                None
            };
            Ok(Cached {
                value,
                dirty: false,
            })
        };
        // One lookup per access: a cache the access filled is written back and emptied
        // after it, rather than checked for room before.
        let out = cache.with_entry(key, miss, f)?;
        if !cache.enabled() || cache.is_full() {
            self.write_dirty(db, cf, &cache)?;
            cache.clear();
        }
        Ok(out)
    }

    /// Writes every dirty cached row into the database in one batch, in key order; the
    /// rows stay dirty (the caller marks them clean or drops them).
    fn write_dirty(&self, db: &DB, cf: &ColumnFamily, cache: &ValueCache<V>) -> StateResult<()> {
        let mut batch = WriteBatch::default();
        let mut buf = self.value.borrow_mut();
        for (key, value) in cache.dirty_sorted() {
            match value {
                Some(v) => {
                    buf.clear();
                    self.encode(v, &mut buf, "value")?;
                    batch.put_cf(cf, key, &buf[..]);
                }
                None => batch.delete_cf(cf, key),
            }
        }
        if batch.is_empty() {
            return Ok(());
        }
        db.write_opt(batch, &self.db.write)
            .map_err(|e| self.failed("writing", e))
    }

    /// Writes the cache's changes into the database; the rows stay cached, clean.
    pub(super) fn write_back_all(&self) -> StateResult<()> {
        let mut cache = self.cache.borrow_mut();
        if !cache.has_dirty() {
            return Ok(());
        }
        self.with_cf(|db, cf| self.write_dirty(db, cf, &cache))?;
        cache.mark_clean();
        Ok(())
    }
}
