//! `KeyedState`: what every keyed state handle offers whatever its kind, the keys that
//! hold state in the handle's namespace. A broadcast function's `apply_to_keyed_state`
//! visits them (Flink's `KeyedStateBackend::getKeys`).
//!
//! Invariants: each key with state is listed once, from every key group of the backend;
//! a key whose entry was cleared or emptied is not listed. A TTL handle lists the keys
//! whose entries expired but were not cleaned up yet (as Flink's `getKeys`); reading them
//! through the handle gives nothing. Listing reads the whole state,
//! so it is for rare operations (a broadcast rule change), not per record.

use super::ValueState;
use super::{AggregatingState, ListState, MapState, ReducingState, StateCore};
use crate::bounds::{Namespace, StateKey, StateValue};
use crate::error::StateError;

/// A keyed state handle whose keys can be listed.
pub trait KeyedState<K> {
    /// The keys with state in the handle's namespace, each once, in no particular order.
    fn state_keys(&self) -> Result<Vec<K>, StateError>;
}

impl<K: std::hash::Hash, N: Clone + 'static, T: ?Sized> StateCore<K, N, T> {
    /// Runs `f` on the table and the handle's namespace, whatever the current key.
    pub(crate) fn with_table<R>(
        &self,
        f: impl FnOnce(&T, &N) -> Result<R, StateError>,
    ) -> Result<R, StateError> {
        let namespace = self.current_namespace()?;
        f(&self.table().borrow(), namespace)
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> KeyedState<K> for ValueState<K, N, V> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.core.with_table(|t, ns| t.keys(ns))
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> KeyedState<K> for ListState<K, N, V> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.core.with_table(|t, ns| t.keys(ns))
    }
}

impl<K: StateKey, N: Namespace, UK: StateKey, UV: StateValue> KeyedState<K>
    for MapState<K, N, UK, UV>
{
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.core.with_table(|t, ns| t.keys(ns))
    }
}

impl<K: StateKey, N: Namespace, V: StateValue> KeyedState<K> for ReducingState<K, N, V> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.core.with_table(|t, ns| t.keys(ns))
    }
}

impl<K: StateKey, N: Namespace, IN, ACC: StateValue, OUT> KeyedState<K>
    for AggregatingState<K, N, IN, ACC, OUT>
{
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.core.with_table(|t, ns| t.keys(ns))
    }
}
