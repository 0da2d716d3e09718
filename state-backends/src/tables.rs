//! Storage-independent interfaces between state handles and a backend.
//!
//! A backend implements one object-safe trait per state kind (value, list,
//! map) plus [`SnapshotTable`]; handles only ever talk to these traits, so a
//! second backend (RocksDB) slots in by implementing them. Reducing and
//! aggregating state are built on [`ValueTable`].
//!
//! Invariants every implementation upholds:
//! - An access reads or writes only the entry of (current key, namespace).
//! - Entries that become empty (`None`, empty list, empty map) are removed.
//! - Callbacks passed as `&mut dyn FnMut` are invoked exactly once.
//! - Snapshot bytes of one key group are a `u64` entry count followed by that
//!   many `(key, namespace, value)` tuples (see [`crate::snapshot`]).

use std::rc::Rc;

use crate::error::StateError;

/// The result of a table access.
pub(crate) type StateResult<T> = Result<T, StateError>;
use crate::bounds::StateKey;
use crate::key_context::CurrentKey;
use crate::key_group::{assign_to_key_group, key_hash};
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::snapshot::{decode_group, KeyGroupBytes};
use serde::de::DeserializeOwned;

/// What a table needs to know about the state it stores.
#[derive(Clone)]
pub(crate) struct TableMeta {
    /// Name of the state (for errors).
    pub(crate) name: Rc<str>,
    /// Key groups owned by the backend.
    pub(crate) range: KeyGroupRange,
    /// Total number of key groups.
    pub(crate) max_parallelism: u16,
}

impl TableMeta {
    /// The index of `key_group` in the backend's range, or an error if it is not in it.
    pub(crate) fn offset_of(&self, key_group: KeyGroup) -> StateResult<usize> {
        let range = self.range;
        range
            .offset_of(key_group)
            .ok_or(StateError::KeyGroupOutOfRange { key_group, range })
    }
}

/// Decodes key group `key_group` of a snapshot of `meta`'s state (see
/// [`crate::snapshot`]), passing each `(key, namespace, value)` to `sink`; a key that
/// does not belong to the key group is an error.
pub(crate) fn decode_owned_group<K, N, S>(
    meta: &TableMeta,
    key_group: KeyGroup,
    bytes: &[u8],
    mut sink: impl FnMut(K, N, S) -> StateResult<()>,
) -> StateResult<()>
where
    K: StateKey,
    N: DeserializeOwned,
    S: DeserializeOwned,
{
    let name = &meta.name;
    let what = || format!("state '{name}' key group {key_group}");
    decode_group(bytes, what, |(key, ns, value): (K, N, S)| {
        let actual = assign_to_key_group(key_hash(&key), meta.max_parallelism);
        if actual != key_group {
            return Err(StateError::KeyGroupMismatch {
                state: name.to_string(),
                stored: key_group,
                actual,
            });
        }
        sink(key, ns, value)
    })
}

/// Storage of value, reducing and aggregating state.
pub(crate) trait ValueTable<K, N, V> {
    /// Calls `f` with the value, if present.
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(Option<&V>)) -> StateResult<()>;
    /// Calls `f` with the slot; a slot left `None` is removed.
    fn modify(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        f: &mut dyn FnMut(&mut Option<V>),
    ) -> StateResult<()>;
    /// Replaces the value.
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()>;
    /// Removes and returns the value.
    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Option<V>>;
    /// Removes the value.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()>;
    /// Removes every entry, of any key and namespace, whose value `keep` rejects;
    /// returns how many were removed.
    fn retain(&mut self, keep: &mut dyn FnMut(&V) -> bool) -> StateResult<usize>;
    /// The keys with a value in `ns`, each once, in no particular order.
    fn keys(&self, ns: &N) -> StateResult<Vec<K>>;
}

/// Storage of list state.
pub(crate) trait ListTable<K, N, V> {
    /// Calls `f` with the list (empty if absent).
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&[V])) -> StateResult<()>;
    /// Appends one value without reading the list.
    fn add(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> StateResult<()>;
    /// Appends all values.
    fn add_all(
        &mut self,
        cur: &CurrentKey<K>,
        ns: &N,
        values: &mut dyn Iterator<Item = V>,
    ) -> StateResult<()>;
    /// Replaces the list.
    fn update(&mut self, cur: &CurrentKey<K>, ns: &N, values: Vec<V>) -> StateResult<()>;
    /// Removes and returns the list.
    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<Vec<V>>;
    /// Removes the list.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()>;
    /// Removes every element, of any key and namespace, that `keep` rejects (and the
    /// lists left empty); returns how many elements were removed.
    fn retain_elements(&mut self, keep: &mut dyn FnMut(&V) -> bool) -> StateResult<usize>;
    /// The keys with a list in `ns`, each once, in no particular order.
    fn keys(&self, ns: &N) -> StateResult<Vec<K>>;
}

/// Storage of map state.
pub(crate) trait MapTable<K, N, UK, UV> {
    /// The value of a user key.
    fn get(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> StateResult<Option<UV>>;
    /// Whether the user key is present.
    fn contains(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> StateResult<bool>;
    /// Inserts or replaces a user key.
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, key: UK, value: UV) -> StateResult<()>;
    /// Removes a user key.
    fn remove(&mut self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> StateResult<()>;
    /// Calls `f` for every entry, in unspecified order.
    fn for_each(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&UK, &UV))
        -> StateResult<()>;
    /// Number of user keys.
    fn len(&self, cur: &CurrentKey<K>, ns: &N) -> StateResult<usize>;
    /// Removes the whole map.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N) -> StateResult<()>;
    /// Removes every user entry, of any key and namespace, that `keep` rejects (and the
    /// maps left empty); returns how many user entries were removed.
    fn retain_entries(&mut self, keep: &mut dyn FnMut(&UK, &UV) -> bool) -> StateResult<usize>;
    /// The keys with a map in `ns`, each once, in no particular order.
    fn keys(&self, ns: &N) -> StateResult<Vec<K>>;
}

/// Type-erased snapshot and restore of one state's table.
pub(crate) trait SnapshotTable {
    /// Serializes every non-empty key group, in ascending key-group order.
    fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>>;
    /// Adds the entries of one key group (which must be in range).
    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> StateResult<()>;
    /// Removes every entry.
    fn clear_all(&mut self) -> StateResult<()>;
    /// Number of (key, namespace) entries.
    fn entry_count(&self) -> StateResult<usize>;
    /// Writes what the table caches into its storage, so storage holds every entry.
    #[cfg(feature = "rocksdb")]
    fn flush(&self) -> StateResult<()> {
        Ok(())
    }
    /// Forgets what the table caches, after its storage was replaced underneath it.
    #[cfg(feature = "rocksdb")]
    fn forget_cached(&mut self) {}
    /// How the rows of the table's column family become snapshot entries; `None` for a
    /// table not in RocksDB.
    #[cfg(feature = "rocksdb")]
    fn rows(&self) -> Option<crate::full_snapshot::RowLayout> {
        None
    }
}

/// Reads a value table with a one-shot callback.
pub(crate) fn read_value<K, N, V, R>(
    table: &dyn ValueTable<K, N, V>,
    cur: &CurrentKey<K>,
    ns: &N,
    f: impl FnOnce(Option<&V>) -> R,
) -> StateResult<R> {
    let mut f = Some(f);
    let mut out = None;
    table.read(cur, ns, &mut |v| out = f.take().map(|f| f(v)))?;
    Ok(out.expect("ValueTable::read must invoke its callback exactly once"))
}

/// Modifies a value table slot with a one-shot callback.
pub(crate) fn modify_value<K, N, V, R>(
    table: &mut dyn ValueTable<K, N, V>,
    cur: &CurrentKey<K>,
    ns: &N,
    f: impl FnOnce(&mut Option<V>) -> R,
) -> StateResult<R> {
    let mut f = Some(f);
    let mut out = None;
    table.modify(cur, ns, &mut |slot| out = f.take().map(|f| f(slot)))?;
    Ok(out.expect("ValueTable::modify must invoke its callback exactly once"))
}

/// Reads a list table with a one-shot callback.
pub(crate) fn read_list<K, N, V, R>(
    table: &dyn ListTable<K, N, V>,
    cur: &CurrentKey<K>,
    ns: &N,
    f: impl FnOnce(&[V]) -> R,
) -> StateResult<R> {
    let mut f = Some(f);
    let mut out = None;
    table.read(cur, ns, &mut |v| out = f.take().map(|f| f(v)))?;
    Ok(out.expect("ListTable::read must invoke its callback exactly once"))
}
