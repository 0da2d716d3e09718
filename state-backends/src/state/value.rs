//! `ValueState`: one value per (key, namespace).
//!
//! Invariant: an absent value and a cleared value are the same; writing
//! `None` through [`ValueState::modify`] removes the entry.

use std::fmt;

use super::StateCore;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;
use crate::tables::{modify_value, read_value, ValueTable};

/// Handle to a value state; cheap to clone, scoped to the backend's current
/// key and this handle's namespace.
pub struct ValueState<K, N, V> {
    pub(super) core: StateCore<K, N, dyn ValueTable<K, N, V>>,
}

impl<K, N: Clone, V> Clone for ValueState<K, N, V> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
        }
    }
}

impl<K, N, V> fmt::Debug for ValueState<K, N, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueState")
            .field("name", &self.core.name)
            .finish()
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ValueState<K, N, V> {
    pub(crate) fn new(core: StateCore<K, N, dyn ValueTable<K, N, V>>) -> Self {
        Self { core }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The state's table.
    pub(crate) fn table(&self) -> &std::rc::Rc<std::cell::RefCell<dyn ValueTable<K, N, V>>> {
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

    /// The value of the current key and namespace (cloned).
    pub fn value(&self) -> Result<Option<V>, StateError> {
        self.value_in(self.core.current_namespace()?)
    }

    /// The value of the current key in `namespace` (cloned).
    pub fn value_in(&self, namespace: &N) -> Result<Option<V>, StateError> {
        self.with_value_in(namespace, |v| v.cloned())
    }

    /// Calls `f` with a reference to the value, without cloning it.
    pub fn with_value<R>(&self, f: impl FnOnce(Option<&V>) -> R) -> Result<R, StateError> {
        self.with_value_in(self.core.current_namespace()?, f)
    }

    /// Calls `f` with a reference to the value in `namespace`.
    pub fn with_value_in<R>(
        &self,
        namespace: &N,
        f: impl FnOnce(Option<&V>) -> R,
    ) -> Result<R, StateError> {
        self.core.read(|t, cur| read_value(t, cur, namespace, f))
    }

    /// Replaces the value of the current key and namespace.
    pub fn update(&self, value: V) -> Result<(), StateError> {
        self.update_in(self.core.current_namespace()?, value)
    }

    /// Replaces the value of the current key in `namespace`.
    pub fn update_in(&self, namespace: &N, value: V) -> Result<(), StateError> {
        self.core.write(|t, cur| t.put(cur, namespace, value))
    }

    /// Removes the value of the current key and namespace.
    pub fn clear(&self) -> Result<(), StateError> {
        self.clear_in(self.core.current_namespace()?)
    }

    /// Removes the value of the current key in `namespace`.
    pub fn clear_in(&self, namespace: &N) -> Result<(), StateError> {
        self.core.write(|t, cur| t.clear(cur, namespace))
    }

    /// Read-modify-write in place: `f` sees the slot (`None` if absent); a
    /// slot left `None` is removed.
    pub fn modify<R>(&self, f: impl FnOnce(&mut Option<V>) -> R) -> Result<R, StateError> {
        self.modify_in(self.core.current_namespace()?, f)
    }

    /// Read-modify-write in place of the slot in `namespace`.
    pub fn modify_in<R>(
        &self,
        namespace: &N,
        f: impl FnOnce(&mut Option<V>) -> R,
    ) -> Result<R, StateError> {
        self.core.write(|t, cur| modify_value(t, cur, namespace, f))
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyGroupRange, KeyedStateBackend, StateBackendKind, StateError, VoidNamespace};

    fn backend() -> KeyedStateBackend<String> {
        KeyedStateBackend::new(StateBackendKind::Memory, KeyGroupRange::all(16), 16).unwrap()
    }

    #[test]
    fn value_state_is_scoped_to_current_key_and_namespace() {
        let b = backend();
        let mut s = b.value_state::<u32, i64>("v").unwrap();
        s.set_namespace(1);
        b.set_current_key("a".into()).unwrap();
        s.update(10).unwrap();
        s.update_in(&2, 20).unwrap();
        b.set_current_key("b".into()).unwrap();
        assert_eq!(s.value().unwrap(), None);
        s.update(30).unwrap();
        b.set_current_key("a".into()).unwrap();
        assert_eq!(s.value().unwrap(), Some(10));
        assert_eq!(s.value_in(&2).unwrap(), Some(20));
        assert_eq!(
            s.with_value(|v| v.copied().map(|v| v * 2)).unwrap(),
            Some(20)
        );
    }

    #[test]
    fn modify_is_in_place_and_leaving_none_removes_the_entry() {
        let b = backend();
        let s = b.value_state::<VoidNamespace, u64>("count").unwrap();
        b.set_current_key("k".into()).unwrap();
        for _ in 0..3 {
            s.modify(|c| *c = Some(c.unwrap_or(0) + 1)).unwrap();
        }
        assert_eq!(s.value().unwrap(), Some(3));
        let old = s.modify(Option::take).unwrap();
        assert_eq!(old, Some(3));
        assert_eq!(b.entry_count("count"), Some(0));
    }

    #[test]
    fn access_without_current_key_or_namespace_names_the_state() {
        let b = backend();
        let s = b.value_state::<VoidNamespace, u64>("lonely").unwrap();
        let err = s.value().unwrap_err();
        assert!(matches!(&err, StateError::NoCurrentKey { state } if state == "lonely"));
        b.set_current_key("k".into()).unwrap();
        let windowed = b.value_state::<u32, u64>("windowed").unwrap();
        assert!(matches!(
            windowed.update(1),
            Err(StateError::NoNamespace { .. })
        ));
        windowed.update_in(&7, 1).unwrap();
    }
}
