//! `AggregatingState`: an accumulator driven by an [`AggregateFunction`].
//!
//! Invariant: the accumulator is created lazily on the first add after a
//! clear and updated in place; reads compute the result from it without
//! cloning.

use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use super::StateCore;
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;
use crate::functions::AggregateFunction;
use crate::tables::{modify_value, read_value, ValueTable};

/// Handle to an aggregating state; cheap to clone, scoped to the backend's
/// current key and this handle's namespace.
pub struct AggregatingState<K, N, IN, ACC, OUT> {
    pub(super) core: StateCore<K, N, dyn ValueTable<K, N, ACC>>,
    function: Rc<dyn AggregateFunction<IN, ACC, OUT>>,
    _types: PhantomData<fn(IN) -> OUT>,
}

impl<K, N: Clone, IN, ACC, OUT> Clone for AggregatingState<K, N, IN, ACC, OUT> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            function: Rc::clone(&self.function),
            _types: PhantomData,
        }
    }
}

impl<K, N, IN, ACC, OUT> fmt::Debug for AggregatingState<K, N, IN, ACC, OUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregatingState")
            .field("name", &self.core.name)
            .finish()
    }
}

impl<K, N, IN, ACC, OUT> AggregatingState<K, N, IN, ACC, OUT>
where
    K: StateKey,
    N: Namespace,
    ACC: StateValue,
    IN: 'static,
    OUT: 'static,
{
    pub(crate) fn new(
        core: StateCore<K, N, dyn ValueTable<K, N, ACC>>,
        function: Rc<dyn AggregateFunction<IN, ACC, OUT>>,
    ) -> Self {
        Self {
            core,
            function,
            _types: PhantomData,
        }
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

    /// The result computed from the accumulator, if anything was added.
    pub fn get(&self) -> Result<Option<OUT>, StateError> {
        self.get_in(self.core.current_namespace()?)
    }

    /// The result computed from the accumulator in `namespace`.
    pub fn get_in(&self, namespace: &N) -> Result<Option<OUT>, StateError> {
        let function = &*self.function;
        self.core.read(|t, cur| {
            read_value(t, cur, namespace, |acc| {
                acc.map(|acc| function.get_result(acc))
            })
        })
    }

    /// Adds `value` to the accumulator, creating it if absent.
    pub fn add(&self, value: IN) -> Result<(), StateError> {
        self.add_in(self.core.current_namespace()?, value)
    }

    /// Adds `value` to the accumulator in `namespace`, creating it if absent.
    pub fn add_in(&self, namespace: &N, value: IN) -> Result<(), StateError> {
        let function = &*self.function;
        self.core.write(|t, cur| {
            modify_value(t, cur, namespace, |slot| {
                let acc = slot.get_or_insert_with(|| function.create_accumulator());
                function.add(value, acc);
            })
        })
    }

    /// Removes the accumulator.
    pub fn clear(&self) -> Result<(), StateError> {
        self.clear_in(self.core.current_namespace()?)
    }

    /// Removes the accumulator in `namespace`.
    pub fn clear_in(&self, namespace: &N) -> Result<(), StateError> {
        self.core.write(|t, cur| t.clear(cur, namespace))
    }

    /// Merges the accumulators of `sources` into `target` and removes the
    /// sources; `target` among `sources` is ignored.
    pub fn merge_namespaces(&self, target: &N, sources: &[N]) -> Result<(), StateError> {
        let function = &*self.function;
        self.core.write(|t, cur| {
            let mut merged = None;
            for source in sources.iter().filter(|s| *s != target) {
                if let Some(v) = t.take(cur, source)? {
                    merged = Some(match merged.take() {
                        Some(m) => function.merge(m, v),
                        None => v,
                    });
                }
            }
            if let Some(merged) = merged {
                modify_value(t, cur, target, |slot| {
                    *slot = Some(match slot.take() {
                        Some(current) => function.merge(current, merged),
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
    use crate::{
        AggregateFunction, KeyGroupRange, KeyedStateBackend, StateBackendKind, VoidNamespace,
    };

    struct Average;

    impl AggregateFunction<f64, (f64, u64), f64> for Average {
        fn create_accumulator(&self) -> (f64, u64) {
            (0.0, 0)
        }
        fn add(&self, value: f64, acc: &mut (f64, u64)) {
            acc.0 += value;
            acc.1 += 1;
        }
        fn get_result(&self, acc: &(f64, u64)) -> f64 {
            acc.0 / acc.1 as f64
        }
        fn merge(&self, a: (f64, u64), b: (f64, u64)) -> (f64, u64) {
            (a.0 + b.0, a.1 + b.1)
        }
    }

    #[test]
    fn aggregating_state_creates_accumulator_lazily_and_reports_result() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let s = b
            .aggregating_state::<VoidNamespace, _, _, _>("avg", Average)
            .unwrap();
        b.set_current_key(1).unwrap();
        assert_eq!(s.get().unwrap(), None);
        s.add(1.0).unwrap();
        s.add(3.0).unwrap();
        assert_eq!(s.get().unwrap(), Some(2.0));
    }

    #[test]
    fn merge_namespaces_merges_accumulators() {
        let b = KeyedStateBackend::<u64>::new(StateBackendKind::Memory, KeyGroupRange::all(8), 8)
            .unwrap();
        let s = b.aggregating_state::<u8, _, _, _>("avg", Average).unwrap();
        b.set_current_key(1).unwrap();
        s.add_in(&1, 2.0).unwrap();
        s.add_in(&2, 4.0).unwrap();
        s.add_in(&2, 6.0).unwrap();
        s.merge_namespaces(&1, &[2]).unwrap();
        assert_eq!(s.get_in(&1).unwrap(), Some(4.0));
        assert_eq!(s.get_in(&2).unwrap(), None);
    }
}
