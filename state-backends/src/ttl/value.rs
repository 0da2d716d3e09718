//! The TTL handles of one value per key: [`TtlValueState`], [`TtlReducingState`] and
//! [`TtlAggregatingState`], each over a value state holding a [`TtlValue`].
//!
//! Invariant: a write stamps the value with the current time; an add to an expired
//! reduction or accumulator starts it afresh, as if the state were empty.

use std::fmt;
use std::rc::Rc;

use super::{Ttl, TtlValue};
use crate::bounds::{StateKey, StateValue, VoidNamespace};
use crate::error::StateError;
use crate::functions::{AggregateFunction, ReduceFunction};
use crate::state::{KeyedState, ValueState};

/// The value state under a TTL handle.
pub(crate) type Stamped<K, V> = ValueState<K, VoidNamespace, TtlValue<V>>;

/// The current key's unexpired value. An expired one is removed, and returned only if
/// the visibility says so; a read refreshes the timestamp if reads do.
fn read_entry<K: StateKey, V: StateValue>(
    state: &Stamped<K, V>,
    ttl: &Ttl,
) -> Result<Option<V>, StateError> {
    let now = ttl.now();
    let found = state.with_value(|stored| {
        stored.map(|v| (ttl.is_expired(v.last_access, now), v.value.clone()))
    })?;
    match found {
        None => Ok(None),
        Some((true, value)) => {
            state.clear()?;
            Ok(ttl.return_expired().then_some(value))
        }
        Some((false, value)) => {
            if ttl.update_on_read() {
                state.modify(|stored| {
                    if let Some(v) = stored {
                        v.last_access = now;
                    }
                })?;
            }
            Ok(Some(value))
        }
    }
}

/// A value state with a time to live (see [`crate::StateTtlConfig`]).
#[derive(Clone)]
pub struct TtlValueState<K, V> {
    inner: Stamped<K, V>,
    ttl: Rc<Ttl>,
}

impl<K, V> fmt::Debug for TtlValueState<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TtlValueState").field(&self.inner).finish()
    }
}

impl<K: StateKey, V: StateValue> TtlValueState<K, V> {
    pub(crate) fn new(inner: Stamped<K, V>, ttl: Rc<Ttl>) -> Self {
        Self { inner, ttl }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The current key's value, unless absent or expired.
    pub fn value(&self) -> Result<Option<V>, StateError> {
        read_entry(&self.inner, &self.ttl)
    }

    /// Replaces the current key's value, stamped now.
    pub fn update(&self, value: V) -> Result<(), StateError> {
        let now = self.ttl.now();
        self.inner.update(self.ttl.wrap(value, now))
    }

    /// Removes the current key's value.
    pub fn clear(&self) -> Result<(), StateError> {
        self.inner.clear()
    }
}

/// A reducing state with a time to live (see [`crate::StateTtlConfig`]).
#[derive(Clone)]
pub struct TtlReducingState<K, V> {
    inner: Stamped<K, V>,
    reduce: Rc<dyn ReduceFunction<V>>,
    ttl: Rc<Ttl>,
}

impl<K, V> fmt::Debug for TtlReducingState<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TtlReducingState")
            .field(&self.inner)
            .finish()
    }
}

impl<K: StateKey, V: StateValue> TtlReducingState<K, V> {
    pub(crate) fn new(
        inner: Stamped<K, V>,
        reduce: Rc<dyn ReduceFunction<V>>,
        ttl: Rc<Ttl>,
    ) -> Self {
        Self { inner, reduce, ttl }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The current key's reduction, unless absent or expired.
    pub fn get(&self) -> Result<Option<V>, StateError> {
        read_entry(&self.inner, &self.ttl)
    }

    /// Reduces `value` into the current key's reduction (a new one if it expired),
    /// stamped now.
    pub fn add(&self, value: V) -> Result<(), StateError> {
        let (ttl, reduce) = (&self.ttl, &self.reduce);
        let now = ttl.now();
        self.inner.modify(|stored| {
            let next = match stored.take() {
                Some(v) if !ttl.is_expired(v.last_access, now) => reduce.reduce(v.value, value),
                _ => value,
            };
            *stored = Some(ttl.wrap(next, now));
        })
    }

    /// Removes the current key's reduction.
    pub fn clear(&self) -> Result<(), StateError> {
        self.inner.clear()
    }
}

/// An aggregating state with a time to live (see [`crate::StateTtlConfig`]).
pub struct TtlAggregatingState<K, IN, ACC, OUT> {
    inner: Stamped<K, ACC>,
    function: Rc<dyn AggregateFunction<IN, ACC, OUT>>,
    ttl: Rc<Ttl>,
}

impl<K: Clone, IN, ACC: Clone, OUT> Clone for TtlAggregatingState<K, IN, ACC, OUT> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            function: Rc::clone(&self.function),
            ttl: Rc::clone(&self.ttl),
        }
    }
}

impl<K, IN, ACC, OUT> fmt::Debug for TtlAggregatingState<K, IN, ACC, OUT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TtlAggregatingState")
            .field(&self.inner)
            .finish()
    }
}

impl<K: StateKey, IN: 'static, ACC: StateValue, OUT: 'static> TtlAggregatingState<K, IN, ACC, OUT> {
    pub(crate) fn new(
        inner: Stamped<K, ACC>,
        function: Rc<dyn AggregateFunction<IN, ACC, OUT>>,
        ttl: Rc<Ttl>,
    ) -> Self {
        Self {
            inner,
            function,
            ttl,
        }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The result of the current key's accumulator, unless absent or expired.
    pub fn get(&self) -> Result<Option<OUT>, StateError> {
        let acc = read_entry(&self.inner, &self.ttl)?;
        Ok(acc.map(|acc| self.function.get_result(&acc)))
    }

    /// Adds `value` to the current key's accumulator (a new one if it expired), stamped
    /// now.
    pub fn add(&self, value: IN) -> Result<(), StateError> {
        let (ttl, function) = (&self.ttl, &self.function);
        let now = ttl.now();
        self.inner.modify(|stored| {
            let mut acc = match stored.take() {
                Some(v) if !ttl.is_expired(v.last_access, now) => v.value,
                _ => function.create_accumulator(),
            };
            function.add(value, &mut acc);
            *stored = Some(ttl.wrap(acc, now));
        })
    }

    /// Removes the current key's accumulator.
    pub fn clear(&self) -> Result<(), StateError> {
        self.inner.clear()
    }
}

impl<K: StateKey, V: StateValue> KeyedState<K> for TtlValueState<K, V> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.inner.state_keys()
    }
}

impl<K: StateKey, V: StateValue> KeyedState<K> for TtlReducingState<K, V> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.inner.state_keys()
    }
}

impl<K: StateKey, IN: 'static, ACC: StateValue, OUT: 'static> KeyedState<K>
    for TtlAggregatingState<K, IN, ACC, OUT>
{
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.inner.state_keys()
    }
}
