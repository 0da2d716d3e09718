//! [`TtlMapState`]: a map state whose user entries expire one by one.
//!
//! Invariant: reading a user entry (alone, or by iterating the map) removes it if it
//! expired, and refreshes it if reads refresh.

use std::fmt;
use std::rc::Rc;

use super::{Ttl, TtlValue};
use crate::bounds::{StateKey, StateValue, VoidNamespace};
use crate::error::StateError;
use crate::state::{KeyedState, MapState};

/// A map state with a time to live per user entry (see [`crate::StateTtlConfig`]).
#[derive(Clone)]
pub struct TtlMapState<K, UK, UV> {
    inner: MapState<K, VoidNamespace, UK, TtlValue<UV>>,
    ttl: Rc<Ttl>,
}

impl<K, UK, UV> fmt::Debug for TtlMapState<K, UK, UV> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TtlMapState").field(&self.inner).finish()
    }
}

impl<K: StateKey, UK: StateKey, UV: StateValue> TtlMapState<K, UK, UV> {
    pub(crate) fn new(inner: MapState<K, VoidNamespace, UK, TtlValue<UV>>, ttl: Rc<Ttl>) -> Self {
        Self { inner, ttl }
    }

    /// Name the state was registered under.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The value of user key `key`, unless absent or expired.
    pub fn get(&self, key: &UK) -> Result<Option<UV>, StateError> {
        let ttl = &self.ttl;
        let Some(stored) = self.inner.get(key)? else {
            return Ok(None);
        };
        let now = ttl.now();
        if ttl.is_expired(stored.last_access, now) {
            self.inner.remove(key)?;
            return Ok(ttl.return_expired().then_some(stored.value));
        }
        if ttl.update_on_read() {
            self.inner
                .put(key.clone(), ttl.wrap(stored.value.clone(), now))?;
        }
        Ok(Some(stored.value))
    }

    /// Whether user key `key` has an unexpired value.
    pub fn contains(&self, key: &UK) -> Result<bool, StateError> {
        Ok(self.get(key)?.is_some())
    }

    /// Sets user key `key` to `value`, stamped now.
    pub fn put(&self, key: UK, value: UV) -> Result<(), StateError> {
        let now = self.ttl.now();
        self.inner.put(key, self.ttl.wrap(value, now))
    }

    /// Removes user key `key`.
    pub fn remove(&self, key: &UK) -> Result<(), StateError> {
        self.inner.remove(key)
    }

    /// The unexpired (user key, value) entries, in unspecified order (expired ones
    /// too, if the visibility says so); expired entries are removed.
    pub fn entries(&self) -> Result<Vec<(UK, UV)>, StateError> {
        let ttl = &self.ttl;
        let now = ttl.now();
        let mut out = Vec::new();
        for (key, stored) in self.inner.entries()? {
            if ttl.is_expired(stored.last_access, now) {
                self.inner.remove(&key)?;
                if ttl.return_expired() {
                    out.push((key, stored.value));
                }
                continue;
            }
            if ttl.update_on_read() {
                self.inner
                    .put(key.clone(), ttl.wrap(stored.value.clone(), now))?;
            }
            out.push((key, stored.value));
        }
        Ok(out)
    }

    /// The user keys of [`Self::entries`].
    pub fn keys(&self) -> Result<Vec<UK>, StateError> {
        Ok(self.entries()?.into_iter().map(|(k, _)| k).collect())
    }

    /// The values of [`Self::entries`].
    pub fn values(&self) -> Result<Vec<UV>, StateError> {
        Ok(self.entries()?.into_iter().map(|(_, v)| v).collect())
    }

    /// Whether the map has no unexpired entry.
    pub fn is_empty(&self) -> Result<bool, StateError> {
        let ttl = &self.ttl;
        if ttl.return_expired() {
            return Ok(self.entries()?.is_empty());
        }
        let now = ttl.now();
        let mut live = false;
        self.inner
            .for_each(|_, v| live |= !ttl.is_expired(v.last_access, now))?;
        Ok(!live)
    }

    /// Removes the current key's map.
    pub fn clear(&self) -> Result<(), StateError> {
        self.inner.clear()
    }
}

impl<K: StateKey, UK: StateKey, UV: StateValue> KeyedState<K> for TtlMapState<K, UK, UV> {
    fn state_keys(&self) -> Result<Vec<K>, StateError> {
        self.inner.state_keys()
    }
}
