//! The write-back cache of a RocksDB value table: decoded values of recently used
//! (key, namespace) entries, in front of the database.
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

use rustc_hash::FxHashMap;

/// One cached entry.
pub(crate) struct Cached<V> {
    /// The current value (`None`: absent).
    pub(crate) value: Option<V>,
    /// Newer than the database.
    pub(crate) dirty: bool,
}

/// Decoded values by stored key (`key group | key | namespace`).
pub(crate) struct ValueCache<V> {
    entries: FxHashMap<Box<[u8]>, Cached<V>>,
    capacity: usize,
}

impl<V> ValueCache<V> {
    /// A cache of at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: FxHashMap::default(),
            capacity,
        }
    }

    /// Whether the cache keeps anything.
    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Whether a new entry needs room first.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.capacity
    }

    /// The cached entry of `key`.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut Cached<V>> {
        self.entries.get_mut(key)
    }

    /// Caches `entry` under `key` (the cache has room) and returns it.
    pub(crate) fn insert(&mut self, key: &[u8], entry: Cached<V>) -> &mut Cached<V> {
        self.entries.entry(key.into()).or_insert(entry)
    }

    /// Calls `f` with every dirty entry; they stay dirty until [`Self::mark_clean`], called
    /// once what `f` produced is written.
    pub(crate) fn each_dirty<E>(
        &self,
        mut f: impl FnMut(&[u8], Option<&V>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.entries
            .iter()
            .filter(|(_, e)| e.dirty)
            .try_for_each(|(key, entry)| f(key, entry.value.as_ref()))
    }

    /// Marks every entry clean: the database holds them all.
    pub(crate) fn mark_clean(&mut self) {
        for entry in self.entries.values_mut() {
            entry.dirty = false;
        }
    }

    /// Whether any entry is dirty.
    pub(crate) fn has_dirty(&self) -> bool {
        self.entries.values().any(|e| e.dirty)
    }

    /// Drops every entry (after a write-back, or when the database is replaced).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_entries_stay_dirty_until_marked_clean() {
        let mut c = ValueCache::new(2);
        assert!(c.enabled() && !c.is_full());
        c.insert(
            b"a",
            Cached {
                value: Some(1u8),
                dirty: true,
            },
        );
        c.insert(
            b"b",
            Cached {
                value: None,
                dirty: false,
            },
        );
        assert!(c.is_full() && c.has_dirty());
        let mut seen = Vec::new();
        c.each_dirty(|k, v| {
            seen.push((k.to_vec(), v.copied()));
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(seen, vec![(b"a".to_vec(), Some(1))]);
        assert!(c.has_dirty(), "a failed write must find them again");
        c.mark_clean();
        assert!(!c.has_dirty());
        assert_eq!(c.get_mut(b"a").map(|e| e.value), Some(Some(1)));
        c.clear();
        assert!(c.get_mut(b"a").is_none());
        assert!(!ValueCache::<u8>::new(0).enabled());
    }
}
