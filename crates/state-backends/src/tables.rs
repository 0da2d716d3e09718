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
use crate::key_context::CurrentKey;
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::snapshot::KeyGroupBytes;

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

/// Storage of value, reducing and aggregating state.
pub(crate) trait ValueTable<K, N, V> {
    /// Calls `f` with the value, if present.
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(Option<&V>));
    /// Calls `f` with the slot; a slot left `None` is removed.
    fn modify(&mut self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&mut Option<V>));
    /// Replaces the value.
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, value: V);
    /// Removes and returns the value.
    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Option<V>;
    /// Removes the value.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N);
}

/// Storage of list state.
pub(crate) trait ListTable<K, N, V> {
    /// Calls `f` with the list (empty if absent).
    fn read(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&[V]));
    /// Appends one value; returns whether it started the list (the list was empty).
    fn add(&mut self, cur: &CurrentKey<K>, ns: &N, value: V) -> bool;
    /// Appends all values.
    fn add_all(&mut self, cur: &CurrentKey<K>, ns: &N, values: &mut dyn Iterator<Item = V>);
    /// Replaces the list.
    fn update(&mut self, cur: &CurrentKey<K>, ns: &N, values: Vec<V>);
    /// Removes and returns the list.
    fn take(&mut self, cur: &CurrentKey<K>, ns: &N) -> Vec<V>;
    /// Removes the list.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N);
}

/// Storage of map state.
pub(crate) trait MapTable<K, N, UK, UV> {
    /// The value of a user key.
    fn get(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> Option<UV>;
    /// Whether the user key is present.
    fn contains(&self, cur: &CurrentKey<K>, ns: &N, key: &UK) -> bool;
    /// Inserts or replaces a user key.
    fn put(&mut self, cur: &CurrentKey<K>, ns: &N, key: UK, value: UV);
    /// Removes a user key.
    fn remove(&mut self, cur: &CurrentKey<K>, ns: &N, key: &UK);
    /// Calls `f` for every entry, in unspecified order.
    fn for_each(&self, cur: &CurrentKey<K>, ns: &N, f: &mut dyn FnMut(&UK, &UV));
    /// Number of user keys.
    fn len(&self, cur: &CurrentKey<K>, ns: &N) -> usize;
    /// Removes the whole map.
    fn clear(&mut self, cur: &CurrentKey<K>, ns: &N);
}

/// Type-erased snapshot and restore of one state's table.
pub(crate) trait SnapshotTable {
    /// Serializes every non-empty key group, in ascending key-group order.
    fn snapshot(&self) -> Result<Vec<KeyGroupBytes>, StateError>;
    /// Adds the entries of one key group (which must be in range).
    fn restore_key_group(&mut self, key_group: KeyGroup, bytes: &[u8]) -> Result<(), StateError>;
    /// Removes every entry.
    fn clear_all(&mut self);
    /// Number of (key, namespace) entries.
    fn entry_count(&self) -> usize;
}

/// Reads a value table with a one-shot callback.
pub(crate) fn read_value<K, N, V, R>(
    table: &dyn ValueTable<K, N, V>,
    cur: &CurrentKey<K>,
    ns: &N,
    f: impl FnOnce(Option<&V>) -> R,
) -> R {
    let mut f = Some(f);
    let mut out = None;
    table.read(cur, ns, &mut |v| out = f.take().map(|f| f(v)));
    out.expect("ValueTable::read must invoke its callback exactly once")
}

/// Modifies a value table slot with a one-shot callback.
pub(crate) fn modify_value<K, N, V, R>(
    table: &mut dyn ValueTable<K, N, V>,
    cur: &CurrentKey<K>,
    ns: &N,
    f: impl FnOnce(&mut Option<V>) -> R,
) -> R {
    let mut f = Some(f);
    let mut out = None;
    table.modify(cur, ns, &mut |slot| out = f.take().map(|f| f(slot)));
    out.expect("ValueTable::modify must invoke its callback exactly once")
}

/// Reads a list table with a one-shot callback.
pub(crate) fn read_list<K, N, V, R>(
    table: &dyn ListTable<K, N, V>,
    cur: &CurrentKey<K>,
    ns: &N,
    f: impl FnOnce(&[V]) -> R,
) -> R {
    let mut f = Some(f);
    let mut out = None;
    table.read(cur, ns, &mut |v| out = f.take().map(|f| f(v)));
    out.expect("ListTable::read must invoke its callback exactly once")
}
