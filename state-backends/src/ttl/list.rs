//! [`TtlListState`]: a list state whose elements expire one by one.
//!
//! Invariant: a read that finds expired elements rewrites the list without them (and
//! with refreshed timestamps if reads refresh); a list whose elements all expired is
//! removed.

use std::fmt;
use std::rc::Rc;

use super::{Ttl, TtlValue};
use crate::bounds::{StateKey, StateValue, VoidNamespace};
use crate::error::StateError;
use crate::state::{KeyedState, ListState};

/// A list state with a time to live per element (see [`crate::StateTtlConfig`]).
#[derive(Clone)]
pub struct TtlListState<K, V> {
    inner: ListState<K, VoidNamespace, TtlValue<V>>,
    ttl: Rc<Ttl>,
}

impl<K, V> fmt::Debug for TtlListState<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TtlListState").field(&self.inner).finish()
    }
}

impl<K: StateKey, V: StateValue> TtlListState<K, V> {
    pub(crate) fn new(inner: ListState<K, VoidNamespace, TtlValue<V>>, ttl: Rc<Ttl>) -> Self {
        Self { inner, ttl }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The current key's unexpired elements, in order (expired ones too, if the
    /// visibility says so); expired elements are removed.
    pub fn get(&self) -> Result<Vec<V>, StateError> {
        let ttl = &self.ttl;
        let now = ttl.now();
        let (returned, rewrite) = self.inner.with_values(|list| {
            let live = |v: &&TtlValue<V>| !ttl.is_expired(v.last_access, now);
            let kept = list.iter().filter(live).count();
            let returned: Vec<V> = if ttl.return_expired() {
                list.iter().map(|v| v.value.clone()).collect()
            } else {
                list.iter().filter(live).map(|v| v.value.clone()).collect()
            };
            let rewrite = (kept < list.len() || (ttl.update_on_read() && kept > 0)).then(|| {
                let stamp = |v: &TtlValue<V>| match ttl.update_on_read() {
                    true => ttl.wrap(v.value.clone(), now),
                    false => v.clone(),
                };
                list.iter().filter(live).map(stamp).collect::<Vec<_>>()
            });
            (returned, rewrite)
        })?;
        if let Some(list) = rewrite {
            self.inner.update(list)?;
        }
        Ok(returned)
    }

    /// Appends `value` to the current key's list, stamped now.
    pub fn add(&self, value: V) -> Result<(), StateError> {
        let now = self.ttl.now();
        self.inner.add(self.ttl.wrap(value, now))
    }

    /// Appends every one of `values`, stamped now.
    pub fn add_all(&self, values: impl IntoIterator<Item = V>) -> Result<(), StateError> {
        let now = self.ttl.now();
        let ttl = &self.ttl;
        self.inner
            .add_all(values.into_iter().map(|v| ttl.wrap(v, now)))
    }

    /// Replaces the current key's list, every element stamped now.
    pub fn update(&self, values: Vec<V>) -> Result<(), StateError> {
        let now = self.ttl.now();
        let ttl = &self.ttl;
        self.inner
            .update(values.into_iter().map(|v| ttl.wrap(v, now)).collect())
    }

    /// Removes the current key's list.
    pub fn clear(&self) -> Result<(), StateError> {
        self.inner.clear()
    }
}

impl<K: StateKey, V: StateValue> KeyedState<K> for TtlListState<K, V> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.inner.state_keys()
    }
}
