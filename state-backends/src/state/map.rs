//! `MapState`: a map from user keys to user values per (key, namespace).
//!
//! Invariant: an empty map is never stored — removing the last user key or
//! clearing removes the entry. Iteration order is unspecified.

use std::fmt;

use super::StateCore;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;
use crate::tables::MapTable;

/// Handle to a map state; cheap to clone, scoped to the backend's current
/// key and this handle's namespace.
pub struct MapState<K, N, UK, UV> {
    pub(super) core: StateCore<K, N, dyn MapTable<K, N, UK, UV>>,
}

impl<K, N: Clone, UK, UV> Clone for MapState<K, N, UK, UV> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<K, N, UK, UV> fmt::Debug for MapState<K, N, UK, UV> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapState")
            .field("name", &self.core.name)
            .finish()
    }
}

impl<K: StateKey, N: Namespace, UK: StateKey, UV: StateValue> MapState<K, N, UK, UV> {
    pub(crate) fn new(core: StateCore<K, N, dyn MapTable<K, N, UK, UV>>) -> Self {
        Self { core }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The state's table.
    pub(crate) fn table(&self) -> &std::rc::Rc<std::cell::RefCell<dyn MapTable<K, N, UK, UV>>> {
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

    /// The value of `key` (cloned).
    pub fn get(&self, key: &UK) -> Result<Option<UV>, StateError> {
        self.get_in(self.core.current_namespace()?, key)
    }

    /// The value of `key` in `namespace` (cloned).
    pub fn get_in(&self, namespace: &N, key: &UK) -> Result<Option<UV>, StateError> {
        self.core.read(|t, cur| t.get(cur, namespace, key))
    }

    /// Inserts or replaces `key`.
    pub fn put(&self, key: UK, value: UV) -> Result<(), StateError> {
        self.put_in(self.core.current_namespace()?, key, value)
    }

    /// Inserts or replaces `key` in `namespace`.
    pub fn put_in(&self, namespace: &N, key: UK, value: UV) -> Result<(), StateError> {
        self.core.write(|t, cur| t.put(cur, namespace, key, value))
    }

    /// Removes `key` (no-op if absent).
    pub fn remove(&self, key: &UK) -> Result<(), StateError> {
        self.remove_in(self.core.current_namespace()?, key)
    }

    /// Removes `key` from `namespace` (no-op if absent).
    pub fn remove_in(&self, namespace: &N, key: &UK) -> Result<(), StateError> {
        self.core.write(|t, cur| t.remove(cur, namespace, key))
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &UK) -> Result<bool, StateError> {
        self.contains_in(self.core.current_namespace()?, key)
    }

    /// Whether `key` is present in `namespace`.
    pub fn contains_in(&self, namespace: &N, key: &UK) -> Result<bool, StateError> {
        self.core.read(|t, cur| t.contains(cur, namespace, key))
    }

    /// Calls `f` for every entry without cloning, in unspecified order.
    pub fn for_each(&self, f: impl FnMut(&UK, &UV)) -> Result<(), StateError> {
        self.for_each_in(self.core.current_namespace()?, f)
    }

    /// Calls `f` for every entry in `namespace`, in unspecified order.
    pub fn for_each_in(
        &self,
        namespace: &N,
        mut f: impl FnMut(&UK, &UV),
    ) -> Result<(), StateError> {
        self.core.read(|t, cur| t.for_each(cur, namespace, &mut f))
    }

    /// All entries (cloned), in unspecified order.
    pub fn entries(&self) -> Result<Vec<(UK, UV)>, StateError> {
        self.entries_in(self.core.current_namespace()?)
    }

    /// All entries in `namespace` (cloned), in unspecified order.
    pub fn entries_in(&self, namespace: &N) -> Result<Vec<(UK, UV)>, StateError> {
        self.collect_in(namespace, |k, v| (k.clone(), v.clone()))
    }

    /// All user keys (cloned), in unspecified order.
    pub fn keys(&self) -> Result<Vec<UK>, StateError> {
        self.keys_in(self.core.current_namespace()?)
    }

    /// All user keys in `namespace` (cloned), in unspecified order.
    pub fn keys_in(&self, namespace: &N) -> Result<Vec<UK>, StateError> {
        self.collect_in(namespace, |k, _| k.clone())
    }

    /// All user values (cloned), in unspecified order.
    pub fn values(&self) -> Result<Vec<UV>, StateError> {
        self.values_in(self.core.current_namespace()?)
    }

    /// All user values in `namespace` (cloned), in unspecified order.
    pub fn values_in(&self, namespace: &N) -> Result<Vec<UV>, StateError> {
        self.collect_in(namespace, |_, v| v.clone())
    }

    /// Number of user keys.
    pub fn len(&self) -> Result<usize, StateError> {
        self.len_in(self.core.current_namespace()?)
    }

    /// Number of user keys in `namespace`.
    pub fn len_in(&self, namespace: &N) -> Result<usize, StateError> {
        self.core.read(|t, cur| t.len(cur, namespace))
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> Result<bool, StateError> {
        self.is_empty_in(self.core.current_namespace()?)
    }

    /// Whether the map in `namespace` is empty.
    pub fn is_empty_in(&self, namespace: &N) -> Result<bool, StateError> {
        Ok(self.len_in(namespace)? == 0)
    }

    /// Removes the whole map.
    pub fn clear(&self) -> Result<(), StateError> {
        self.clear_in(self.core.current_namespace()?)
    }

    /// Removes the whole map in `namespace`.
    pub fn clear_in(&self, namespace: &N) -> Result<(), StateError> {
        self.core.write(|t, cur| t.clear(cur, namespace))
    }

    fn collect_in<T>(
        &self,
        namespace: &N,
        mut f: impl FnMut(&UK, &UV) -> T,
    ) -> Result<Vec<T>, StateError> {
        self.core.read(|t, cur| {
            // One pass: on RocksDB, asking for the length first would scan twice.
            let mut out = Vec::new();
            t.for_each(cur, namespace, &mut |k, v| out.push(f(k, v)))?;
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyGroupRange, KeyedStateBackend, StateBackendKind, VoidNamespace};

    #[test]
    fn map_state_entry_disappears_with_its_last_user_key() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let m = b.map_state::<VoidNamespace, String, u32>("m").unwrap();
        b.set_current_key(5).unwrap();
        assert!(m.is_empty().unwrap());
        m.put("x".into(), 1).unwrap();
        m.put("y".into(), 2).unwrap();
        m.put("x".into(), 3).unwrap();
        assert_eq!(m.get(&"x".into()).unwrap(), Some(3));
        assert!(m.contains(&"y".into()).unwrap());
        assert_eq!(m.len().unwrap(), 2);
        let mut entries = m.entries().unwrap();
        entries.sort();
        assert_eq!(entries, [("x".to_owned(), 3), ("y".to_owned(), 2)]);
        let mut sum = 0;
        m.for_each(|_, v| sum += v).unwrap();
        assert_eq!(sum, 5);
        m.remove(&"x".into()).unwrap();
        m.remove(&"y".into()).unwrap();
        m.remove(&"absent".into()).unwrap();
        assert_eq!(b.entry_count("m"), Some(0));
    }
}
