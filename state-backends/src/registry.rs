//! The named states of one keyed backend, and state restored but not yet
//! registered.
//!
//! Invariants:
//! - A name maps to one kind and one table type for the backend's lifetime;
//!   registering it again returns the same table, anything else is an error.
//! - Restored state whose name is not registered yet is kept as snapshot
//!   bytes ("pending") and decoded on registration, when its types are known;
//!   it is included as-is in snapshots until then, so it is never lost.
//! - State restored natively (a RocksDB checkpoint) is already in its column
//!   family; until registered only its kind is known ("native"): it is part of
//!   native snapshots, and a full snapshot refuses to leave it out.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::error::StateError;
use crate::key_group::KeyGroupRange;
use crate::snapshot::{KeyedStateSnapshot, StateSnapshot};
use crate::state_kind::StateKind;
use crate::tables::SnapshotTable;

/// Removes a state's expired entries (state time-to-live) before a full snapshot;
/// returns how many it removed.
pub(crate) type Cleanup = Box<dyn Fn() -> Result<usize, StateError>>;

/// The two views of a freshly created table: typed and type-erased.
pub(crate) type NewTable<T> = (Rc<RefCell<T>>, Rc<RefCell<dyn SnapshotTable>>);

struct RegisteredState {
    kind: StateKind,
    types: &'static str,
    /// An `Rc<RefCell<T>>` for the table trait object `T` of the kind.
    typed: Box<dyn Any>,
    table: Rc<RefCell<dyn SnapshotTable>>,
}

/// Registered and pending states by name.
#[derive(Default)]
pub(crate) struct Registry {
    states: FxHashMap<Rc<str>, RegisteredState>,
    pending: FxHashMap<String, StateSnapshot>,
    native: FxHashMap<String, StateKind>,
    /// What removes expired entries before a full snapshot, by state.
    cleanups: FxHashMap<String, Cleanup>,
}

impl Registry {
    /// Returns the table registered under `name`, creating it (and loading
    /// pending restored state into it) if needed.
    pub(crate) fn get_or_register<T: ?Sized + 'static>(
        &mut self,
        name: &str,
        kind: StateKind,
        types: &'static str,
        create: impl FnOnce(Rc<str>) -> Result<NewTable<T>, StateError>,
    ) -> Result<(Rc<str>, Rc<RefCell<T>>), StateError> {
        let mismatch =
            |existing_kind: StateKind, existing_types: &str| StateError::StateTypeMismatch {
                name: name.to_owned(),
                existing_kind,
                existing_types: existing_types.to_owned(),
                requested_kind: kind,
                requested_types: types.to_owned(),
            };
        if let Some((rc_name, state)) = self.states.get_key_value(name) {
            if state.kind != kind {
                return Err(mismatch(state.kind, state.types));
            }
            let typed = state
                .typed
                .downcast_ref::<Rc<RefCell<T>>>()
                .ok_or_else(|| mismatch(state.kind, state.types))?;
            return Ok((Rc::clone(rc_name), Rc::clone(typed)));
        }
        if let Some(&restored) = self.native.get(name) {
            if restored != kind {
                return Err(StateError::SnapshotKindMismatch {
                    name: name.to_owned(),
                    snapshot_kind: restored,
                    registered_kind: kind,
                });
            }
        }
        let rc_name: Rc<str> = Rc::from(name);
        let (typed, table) = create(Rc::clone(&rc_name))?;
        self.native.remove(name);
        if let Some(pending) = self.pending.get(name) {
            if pending.kind != kind {
                return Err(StateError::SnapshotKindMismatch {
                    name: name.to_owned(),
                    snapshot_kind: pending.kind,
                    registered_kind: kind,
                });
            }
            let mut loading = table.borrow_mut();
            for group in &pending.key_groups {
                loading.restore_key_group(group.key_group, &group.bytes)?;
            }
            drop(loading);
            self.pending.remove(name);
            tracing::debug!(state = name, "restored pending state on registration");
        }
        self.states.insert(
            Rc::clone(&rc_name),
            RegisteredState {
                kind,
                types,
                typed: Box::new(Rc::clone(&typed)),
                table,
            },
        );
        Ok((rc_name, typed))
    }

    /// Runs `cleanup` before every full snapshot from now on (replacing the state's
    /// previous one).
    pub(crate) fn clean_before_full_snapshot(&mut self, name: &str, cleanup: Cleanup) {
        self.cleanups.insert(name.to_owned(), cleanup);
    }

    /// Removes the expired entries of every state with a time to live that asked for it.
    pub(crate) fn clean_expired(&self) -> Result<(), StateError> {
        for (name, cleanup) in &self.cleanups {
            let removed = cleanup()?;
            if removed > 0 {
                tracing::debug!(state = %name, removed, "removed expired state before a full snapshot");
            }
        }
        Ok(())
    }

    /// Snapshots every registered and pending state, sorted by name.
    pub(crate) fn snapshot(&self) -> Result<Vec<StateSnapshot>, StateError> {
        if let Some(name) = self.native.keys().min() {
            return Err(StateError::UnregisteredNativeState(name.clone()));
        }
        let mut states = Vec::with_capacity(self.states.len() + self.pending.len());
        for (name, state) in &self.states {
            states.push(StateSnapshot {
                name: name.to_string(),
                kind: state.kind,
                key_groups: state.table.borrow().snapshot()?,
            });
        }
        states.extend(self.pending.values().cloned());
        states.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(states)
    }

    /// Every registered and pending state with where a full snapshot streamed from the
    /// database reads it, sorted by name.
    #[cfg(feature = "rocksdb")]
    pub(crate) fn streamed(
        &self,
    ) -> Result<Vec<(String, StateKind, crate::full_snapshot::StateSource)>, StateError> {
        use crate::full_snapshot::StateSource;
        if let Some(name) = self.native.keys().min() {
            return Err(StateError::UnregisteredNativeState(name.clone()));
        }
        let mut states = Vec::with_capacity(self.states.len() + self.pending.len());
        for (name, state) in &self.states {
            let rows = state
                .table
                .borrow()
                .rows()
                .ok_or_else(|| StateError::Storage {
                    backend: "rocksdb".to_owned(),
                    doing: format!("snapshotting state '{name}'"),
                    message: "the state is not stored in the database".to_owned(),
                })?;
            states.push((name.to_string(), state.kind, StateSource::Stored(rows)));
        }
        for pending in self.pending.values() {
            let source = StateSource::Pending(pending.clone());
            states.push((pending.name.clone(), pending.kind, source));
        }
        states.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(states)
    }

    /// Replaces all state with the key groups of `snapshots` inside `range`.
    /// The snapshots' layout must already be checked.
    pub(crate) fn restore(
        &mut self,
        range: KeyGroupRange,
        snapshots: &[KeyedStateSnapshot],
    ) -> Result<(), StateError> {
        self.check_kinds(snapshots)?;
        for state in self.states.values() {
            state.table.borrow_mut().clear_all()?;
        }
        self.pending.clear();
        for state in snapshots.iter().flat_map(|s| &s.states) {
            let owned = state
                .key_groups
                .iter()
                .filter(|g| range.contains(g.key_group));
            match self.states.get(state.name.as_str()) {
                Some(registered) => {
                    let mut table = registered.table.borrow_mut();
                    for group in owned {
                        table.restore_key_group(group.key_group, &group.bytes)?;
                    }
                }
                None => {
                    let pending =
                        self.pending
                            .entry(state.name.clone())
                            .or_insert_with(|| StateSnapshot {
                                name: state.name.clone(),
                                kind: state.kind,
                                key_groups: Vec::new(),
                            });
                    pending.key_groups.extend(owned.cloned());
                }
            }
        }
        Ok(())
    }

    /// Rejects snapshots that disagree with registered kinds or each other.
    fn check_kinds(&self, snapshots: &[KeyedStateSnapshot]) -> Result<(), StateError> {
        let mut kinds: FxHashMap<&str, StateKind> = self
            .states
            .iter()
            .map(|(name, state)| (&**name, state.kind))
            .collect();
        for state in snapshots.iter().flat_map(|s| &s.states) {
            let known = *kinds.entry(state.name.as_str()).or_insert(state.kind);
            if known != state.kind {
                return Err(StateError::SnapshotKindMismatch {
                    name: state.name.clone(),
                    snapshot_kind: state.kind,
                    registered_kind: known,
                });
            }
        }
        Ok(())
    }

    #[cfg(feature = "rocksdb")]
    /// Every registered or natively restored state with its kind, sorted by name
    /// (the states of a native snapshot; there is no pending state then).
    pub(crate) fn kinds(&self) -> Vec<(String, StateKind)> {
        let mut kinds: Vec<(String, StateKind)> = self
            .states
            .iter()
            .map(|(name, state)| (name.to_string(), state.kind))
            .chain(self.native.iter().map(|(n, k)| (n.clone(), *k)))
            .collect();
        kinds.sort_by(|a, b| a.0.cmp(&b.0));
        kinds
    }

    #[cfg(feature = "rocksdb")]
    /// Records states restored natively: they are in their column families, and
    /// registering them checks their kind.
    pub(crate) fn restored_natively(&mut self, states: Vec<(String, StateKind)>) {
        for (name, kind) in states {
            if !self.states.contains_key(name.as_str()) {
                self.native.insert(name, kind);
            }
        }
    }

    #[cfg(feature = "rocksdb")]
    /// Whether restored state waits, as snapshot bytes, for its registration.
    pub(crate) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Writes what every table caches into its storage (before a native snapshot reads
    /// the storage directly).
    #[cfg(feature = "rocksdb")]
    pub(crate) fn flush(&self) -> Result<(), StateError> {
        self.states
            .values()
            .try_for_each(|state| state.table.borrow().flush())
    }

    /// Makes every table forget what it caches (its storage was replaced).
    #[cfg(feature = "rocksdb")]
    pub(crate) fn forget_cached(&self) {
        for state in self.states.values() {
            state.table.borrow_mut().forget_cached();
        }
    }

    /// Number of (key, namespace) entries of a registered state.
    pub(crate) fn entry_count(&self, name: &str) -> Option<usize> {
        self.states
            .get(name)
            .and_then(|state| state.table.borrow().entry_count().ok())
    }

    /// Names of registered and pending states, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .states
            .keys()
            .map(|n| n.to_string())
            .chain(self.pending.keys().cloned())
            .chain(self.native.keys().cloned())
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use crate::{
        KeyGroupRange, KeyedStateBackend, StateBackendKind, StateError, StateKind, VoidNamespace,
    };

    fn backend() -> KeyedStateBackend<u64> {
        KeyedStateBackend::new(StateBackendKind::Memory, KeyGroupRange::all(32), 32).unwrap()
    }

    #[test]
    fn restored_state_is_decoded_when_registered_and_kept_until_then() {
        let source = backend();
        let s = source.value_state::<VoidNamespace, String>("name").unwrap();
        source.set_current_key(7).unwrap();
        s.update("seven".into()).unwrap();
        let snapshot = source.snapshot().unwrap();

        let target = backend();
        target.restore(&[snapshot]).unwrap();
        assert_eq!(target.state_names(), ["name"]);
        assert_eq!(target.entry_count("name"), None, "pending until registered");
        // A snapshot taken before registration still carries the state.
        let again = backend();
        again.restore(&[target.snapshot().unwrap()]).unwrap();
        let s = again.value_state::<VoidNamespace, String>("name").unwrap();
        again.set_current_key(7).unwrap();
        assert_eq!(s.value().unwrap().as_deref(), Some("seven"));
    }

    #[test]
    fn pending_state_of_another_kind_is_rejected_at_registration() {
        let source = backend();
        source.list_state::<VoidNamespace, u8>("x").unwrap();
        let target = backend();
        target.restore(&[source.snapshot().unwrap()]).unwrap();
        let err = target.value_state::<VoidNamespace, u8>("x").unwrap_err();
        assert!(matches!(
            err,
            StateError::SnapshotKindMismatch {
                snapshot_kind: StateKind::List,
                ..
            }
        ));
    }

    #[test]
    fn restore_rejects_a_snapshot_kind_that_contradicts_a_registered_state() {
        let source = backend();
        source.map_state::<VoidNamespace, u8, u8>("x").unwrap();
        let target = backend();
        target.value_state::<VoidNamespace, u8>("x").unwrap();
        let err = target.restore(&[source.snapshot().unwrap()]).unwrap_err();
        assert!(matches!(
            err,
            StateError::SnapshotKindMismatch {
                registered_kind: StateKind::Value,
                ..
            }
        ));
    }

    #[test]
    fn restore_replaces_existing_contents() {
        let b = backend();
        let s = b.value_state::<VoidNamespace, u8>("v").unwrap();
        b.set_current_key(1).unwrap();
        s.update(1).unwrap();
        let empty = backend().snapshot().unwrap();
        b.restore(&[empty]).unwrap();
        assert_eq!(s.value().unwrap(), None);
    }
}
