//! `ReducingState`: a value folded with a [`ReduceFunction`] on every add.
//!
//! Invariant: the stored value is the reduction of every value added since
//! the last clear, in add order (`reduce(current, new)`), updated in place.

use std::fmt;
use std::rc::Rc;

use super::StateCore;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;
use crate::functions::ReduceFunction;
use crate::tables::{modify_value, read_value, ValueTable};

/// Handle to a reducing state; cheap to clone, scoped to the backend's
/// current key and this handle's namespace.
pub struct ReducingState<K, N, V> {
    pub(super) core: StateCore<K, N, dyn ValueTable<K, N, V>>,
    reduce: Rc<dyn ReduceFunction<V>>,
}

impl<K, N: Clone, V> Clone for ReducingState<K, N, V> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            reduce: Rc::clone(&self.reduce),
        }
    }
}

impl<K, N, V> fmt::Debug for ReducingState<K, N, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReducingState")
            .field("name", &self.core.name)
            .finish()
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> ReducingState<K, N, V> {
    pub(crate) fn new(
        core: StateCore<K, N, dyn ValueTable<K, N, V>>,
        reduce: Rc<dyn ReduceFunction<V>>,
    ) -> Self {
        Self { core, reduce }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Sets the namespace used by the methods without an `_in` suffix.
    pub fn set_namespace(&mut self, namespace: N) {
        self.core.set_namespace(namespace);
    }

    /// The namespace used by the methods without an `_in` suffix.
    pub fn namespace(&self) -> Option<&N> {
        self.core.namespace()
    }

    /// The reduced value (cloned), if anything was added.
    pub fn get(&self) -> Result<Option<V>, StateError> {
        self.get_in(self.core.current_namespace()?)
    }

    /// The reduced value in `namespace` (cloned).
    pub fn get_in(&self, namespace: &N) -> Result<Option<V>, StateError> {
        self.core
            .read(|t, cur| read_value(t, cur, namespace, |v| v.cloned()))
    }

    /// Reduces `value` into the stored value.
    pub fn add(&self, value: V) -> Result<(), StateError> {
        self.add_in(self.core.current_namespace()?, value)
    }

    /// Reduces `value` into the stored value in `namespace`.
    pub fn add_in(&self, namespace: &N, value: V) -> Result<(), StateError> {
        let reduce = &*self.reduce;
        self.core.write(|t, cur| {
            modify_value(t, cur, namespace, |slot| {
                *slot = Some(match slot.take() {
                    Some(current) => reduce.reduce(current, value),
                    None => value,
                });
            })
        })
    }

    /// Removes the stored value.
    pub fn clear(&self) -> Result<(), StateError> {
        self.clear_in(self.core.current_namespace()?)
    }

    /// Removes the stored value in `namespace`.
    pub fn clear_in(&self, namespace: &N) -> Result<(), StateError> {
        self.core.write(|t, cur| t.clear(cur, namespace))
    }

    /// Reduces the values of `sources` (in order) into `target` and removes
    /// the sources; `target` among `sources` is ignored.
    pub fn merge_namespaces(&self, target: &N, sources: &[N]) -> Result<(), StateError> {
        let reduce = &*self.reduce;
        self.core.write(|t, cur| {
            let mut merged = None;
            for source in sources.iter().filter(|s| *s != target) {
                if let Some(v) = t.take(cur, source)? {
                    merged = Some(match merged.take() {
                        Some(m) => reduce.reduce(m, v),
                        None => v,
                    });
                }
            }
            if let Some(merged) = merged {
                modify_value(t, cur, target, |slot| {
                    *slot = Some(match slot.take() {
                        Some(current) => reduce.reduce(current, merged),
                        None => merged,
                    });
                })?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{KeyGroupRange, KeyedStateBackend, StateBackendKind, VoidNamespace};

    #[test]
    fn reducing_state_folds_values_in_add_order() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let s = b
            .reducing_state::<VoidNamespace, String>("r", |a: String, b: String| a + &b)
            .unwrap();
        b.set_current_key(3).unwrap();
        assert_eq!(s.get().unwrap(), None);
        for part in ["a", "b", "c"] {
            s.add(part.to_owned()).unwrap();
        }
        assert_eq!(s.get().unwrap().as_deref(), Some("abc"));
        s.clear().unwrap();
        assert_eq!(s.get().unwrap(), None);
    }

    #[test]
    fn merge_namespaces_reduces_sources_into_target() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let s = b.reducing_state::<u8, i64>("sum", |a, b| a + b).unwrap();
        b.set_current_key(3).unwrap();
        s.add_in(&1, 10).unwrap();
        s.add_in(&2, 5).unwrap();
        s.merge_namespaces(&3, &[1, 2, 4]).unwrap();
        assert_eq!(s.get_in(&3).unwrap(), Some(15));
        assert_eq!((s.get_in(&1).unwrap(), s.get_in(&2).unwrap()), (None, None));
        s.add_in(&1, 1).unwrap();
        s.merge_namespaces(&3, &[1]).unwrap();
        assert_eq!(s.get_in(&3).unwrap(), Some(16));
        assert_eq!(b.entry_count("sum"), Some(1));
    }
}
