//! `ListState`: an append-friendly list per (key, namespace).
//!
//! Invariant: an empty list is never stored — clearing, updating with an
//! empty vector or merging away a namespace removes its entry.

use std::fmt;

use super::StateCore;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;
use crate::tables::{read_list, ListTable};

/// Handle to a list state; cheap to clone, scoped to the backend's current
/// key and this handle's namespace.
pub struct ListState<K, N, V> {
    pub(super) core: StateCore<K, N, dyn ListTable<K, N, V>>,
}

impl<K, N: Clone, V> Clone for ListState<K, N, V> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<K, N, V> fmt::Debug for ListState<K, N, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListState")
            .field("name", &self.core.name)
            .finish()
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ListState<K, N, V> {
    pub(crate) fn new(core: StateCore<K, N, dyn ListTable<K, N, V>>) -> Self {
        Self { core }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The state's table.
    pub(crate) fn table(&self) -> &std::rc::Rc<std::cell::RefCell<dyn ListTable<K, N, V>>> {
        self.core.table()
    }

    /// Sets the namespace used by the methods without an `_in` suffix.
    pub fn set_namespace(&mut self, namespace: N) {
        self.core.set_namespace(namespace);
    }

    /// The namespace used by the methods without an `_in` suffix.
    pub fn namespace(&self) -> Option<&N> {
        self.core.namespace()
    }

    /// The list of the current key and namespace (cloned; empty if absent).
    pub fn get(&self) -> Result<Vec<V>, StateError> {
        self.get_in(self.core.current_namespace()?)
    }

    /// The list of the current key in `namespace` (cloned; empty if absent).
    pub fn get_in(&self, namespace: &N) -> Result<Vec<V>, StateError> {
        self.with_values_in(namespace, <[V]>::to_vec)
    }

    /// Calls `f` with the list as a slice, without cloning it.
    pub fn with_values<R>(&self, f: impl FnOnce(&[V]) -> R) -> Result<R, StateError> {
        self.with_values_in(self.core.current_namespace()?, f)
    }

    /// Calls `f` with the list in `namespace` as a slice.
    pub fn with_values_in<R>(
        &self,
        namespace: &N,
        f: impl FnOnce(&[V]) -> R,
    ) -> Result<R, StateError> {
        self.core.read(|t, cur| read_list(t, cur, namespace, f))
    }

    /// Appends a value, without reading the list.
    pub fn add(&self, value: V) -> Result<(), StateError> {
        self.add_in(self.core.current_namespace()?, value)
    }

    /// Appends a value in `namespace`, without reading the list.
    pub fn add_in(&self, namespace: &N, value: V) -> Result<(), StateError> {
        self.core.write(|t, cur| t.add(cur, namespace, value))
    }

    /// Removes and returns the list (empty if absent).
    pub fn take(&self) -> Result<Vec<V>, StateError> {
        self.take_in(self.core.current_namespace()?)
    }

    /// Removes and returns the list in `namespace`, in one lookup and without a copy.
    pub fn take_in(&self, namespace: &N) -> Result<Vec<V>, StateError> {
        self.core.write(|t, cur| t.take(cur, namespace))
    }

    /// Appends all values.
    pub fn add_all(&self, values: impl IntoIterator<Item = V>) -> Result<(), StateError> {
        self.add_all_in(self.core.current_namespace()?, values)
    }

    /// Appends all values in `namespace`.
    pub fn add_all_in(
        &self,
        namespace: &N,
        values: impl IntoIterator<Item = V>,
    ) -> Result<(), StateError> {
        let mut values = values.into_iter();
        self.core
            .write(|t, cur| t.add_all(cur, namespace, &mut values))
    }

    /// Replaces the list (an empty vector clears it).
    pub fn update(&self, values: Vec<V>) -> Result<(), StateError> {
        self.update_in(self.core.current_namespace()?, values)
    }

    /// Replaces the list in `namespace`.
    pub fn update_in(&self, namespace: &N, values: Vec<V>) -> Result<(), StateError> {
        self.core.write(|t, cur| t.update(cur, namespace, values))
    }

    /// Removes the list.
    pub fn clear(&self) -> Result<(), StateError> {
        self.clear_in(self.core.current_namespace()?)
    }

    /// Removes the list in `namespace`.
    pub fn clear_in(&self, namespace: &N) -> Result<(), StateError> {
        self.core.write(|t, cur| t.clear(cur, namespace))
    }

    /// Appends the lists of `sources` (in order) to the list of `target` and
    /// removes the sources; `target` among `sources` is ignored.
    pub fn merge_namespaces(&self, target: &N, sources: &[N]) -> Result<(), StateError> {
        self.core.write(|t, cur| {
            let mut merged = Vec::new();
            for source in sources.iter().filter(|s| *s != target) {
                let mut list = t.take(cur, source)?;
                merged.append(&mut list);
            }
            t.add_all(cur, target, &mut merged.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyGroupRange, KeyedStateBackend, StateBackendKind};

    #[test]
    fn list_state_appends_and_empty_update_removes_the_entry() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let mut s = b.list_state::<u8, String>("l").unwrap();
        s.set_namespace(0);
        b.set_current_key(1).unwrap();
        s.add("a".into()).unwrap();
        s.add_all(["b".to_owned(), "c".to_owned()]).unwrap();
        assert_eq!(s.get().unwrap(), ["a", "b", "c"]);
        assert_eq!(s.with_values(<[String]>::len).unwrap(), 3);
        s.add_all(Vec::new()).unwrap();
        s.update(Vec::new()).unwrap();
        assert!(s.get().unwrap().is_empty());
        assert_eq!(b.entry_count("l"), Some(0));
    }

    #[test]
    fn merge_namespaces_appends_sources_in_order_and_removes_them() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let s = b.list_state::<u8, u32>("l").unwrap();
        b.set_current_key(1).unwrap();
        s.add_in(&0, 1).unwrap();
        s.add_in(&1, 2).unwrap();
        s.add_in(&2, 3).unwrap();
        s.merge_namespaces(&0, &[2, 0, 1]).unwrap();
        assert_eq!(s.get_in(&0).unwrap(), [1, 3, 2]);
        assert_eq!(b.entry_count("l"), Some(1));
    }
}
