//! The write-back cache of a RocksDB table: decoded values of recently used rows (a value
//! state's (key, namespace) entries, a map state's user entries), in front of the database.
//!
//! A hot key's reads and updates stay in memory: an update marks its entry dirty instead of
//! writing, and dirty entries reach the database together, in one write batch, when the
//! cache is full (it is then emptied) and before anything reads the database directly
//! (snapshots, scans, counts; the entries then stay, clean).
//!
//! Invariants:
//! - An entry holds the entry's whole current value: `None` is a known absence (a deleted
//!   or never written entry), so a cached read never consults the database.
//! - A clean entry equals what the database holds under its key; a dirty one is newer.
//! - The cache holds at most its capacity of entries (a count, not bytes: large values take
//!   memory outside RocksDB's managed budget); capacity 0 caches nothing.
//! - An entry turns clean only once the write holding it succeeded.
//! - The keys of the dirty entries are listed (each once), so finding and writing back
//!   the dirty entries costs what they are, not the cache's size.

use rustc_hash::FxHashMap;

/// One cached entry.
pub(crate) struct Cached<V> {
    /// The current value (`None`: absent).
    pub(crate) value: Option<V>,
    /// Newer than the database.
    pub(crate) dirty: bool,
}

/// Decoded values by stored key (`key group | key | namespace [| user key]`).
pub(crate) struct ValueCache<V> {
    entries: FxHashMap<Box<[u8]>, Cached<V>>,
    /// The keys of the dirty entries.
    dirty: Vec<Box<[u8]>>,
    capacity: usize,
}

impl<V> ValueCache<V> {
    /// A cache of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: FxHashMap::default(),
            dirty: Vec::new(),
            capacity,
        }
    }

    /// Whether the cache keeps anything.
    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Whether the cache holds its capacity of entries (it is then written back and emptied).
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// Runs `f` with the cached entry of `key`, or with `miss()` cached first (the cache
    /// has room); lists the entry as dirty if `f` made it so.
    #[inline]
    pub(crate) fn with_entry<R, E>(
        &mut self,
        key: &[u8],
        miss: impl FnOnce() -> Result<Cached<V>, E>,
        f: impl FnOnce(&mut Cached<V>) -> R,
    ) -> Result<R, E> {
        let entry = match self.entries.get_mut(key) {
            Some(entry) => entry,
            None => self.entries.entry(key.into()).or_insert(miss()?),
        };
        let was_dirty = entry.dirty;
        let out = f(entry);
        if entry.dirty && !was_dirty {
            self.dirty.push(key.into());
        }
        Ok(out)
    }

    /// Whether `key` is cached.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        self.entries.contains_key(key)
    }

    /// Forgets the entry of `key`, dropping its change if it had one (the caller deletes
    /// the row).
    pub(crate) fn forget(&mut self, key: &[u8]) {
        if self.entries.remove(key).is_some_and(|e| e.dirty) {
            self.dirty.retain(|k| &k[..] != key);
        }
    }

    /// The dirty entries, sorted by key (a write batch in key order goes into RocksDB's
    /// memtable with little searching); they stay dirty until [`Self::mark_clean`], called
    /// once they are written. A mostly dirty cache is walked whole, which costs no lookup.
    pub(crate) fn dirty_sorted(&self) -> Vec<(&[u8], Option<&V>)> {
        let mut rows: Vec<(&[u8], Option<&V>)> = if self.dirty.len() * 4 >= self.entries.len() {
            let dirty = self.entries.iter().filter(|(_, e)| e.dirty);
            dirty.map(|(k, e)| (&k[..], e.value.as_ref())).collect()
        } else {
            let entries = &self.entries;
            let row = |k| (k, entries[k].value.as_ref());
            self.dirty.iter().map(|k| &k[..]).map(row).collect()
        };
        rows.sort_unstable_by(|a, b| a.0.cmp(b.0));
        rows
    }

    /// Marks every entry clean: the database holds them all.
    pub(crate) fn mark_clean(&mut self) {
        for key in self.dirty.drain(..) {
            if let Some(entry) = self.entries.get_mut(&key) {
                entry.dirty = false;
            }
        }
    }

    /// Whether any entry is dirty.
    pub(crate) fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Drops every entry (after a write-back, or when the database is replaced).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.dirty.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_entries_stay_dirty_until_marked_clean() {
        let mut c = ValueCache::new(2);
        assert!(c.enabled() && !c.is_full());
        let absent = || {
            Ok::<_, ()>(Cached {
                value: None,
                dirty: false,
            })
        };
        c.with_entry(b"a", absent, |e| {
            e.value = Some(1u8);
            e.dirty = true;
        })
        .unwrap();
        c.with_entry(b"b", absent, |_| ()).unwrap();
        // Dirtied again: listed once.
        c.with_entry(b"a", absent, |e| e.dirty = true).unwrap();
        assert!(c.is_full() && c.has_dirty());
        assert_eq!(c.dirty_sorted(), vec![(&b"a"[..], Some(&1))]);
        // Few dirty entries among many: found through the list, in key order.
        let mut big = ValueCache::new(16);
        for k in [b"d", b"c", b"b", b"a", b"e", b"f", b"g", b"h", b"i"] {
            big.with_entry(k, absent, |e| e.dirty = k == b"d" || k == b"b")
                .unwrap();
        }
        assert_eq!(
            big.dirty_sorted(),
            vec![(&b"b"[..], None), (&b"d"[..], None)]
        );
        big.forget(b"b");
        assert_eq!(big.dirty_sorted(), vec![(&b"d"[..], None)]);
        assert!(c.has_dirty(), "a failed write must find them again");
        c.mark_clean();
        assert!(!c.has_dirty());
        assert_eq!(c.with_entry(b"a", absent, |e| e.value), Ok(Some(1)));
        c.forget(b"b");
        assert!(c.contains(b"a") && !c.contains(b"b"));
        c.clear();
        assert!(!c.contains(b"a"));
        assert!(!ValueCache::<u8>::new(0).enabled());
    }
}
