//! The context of a keyed broadcast function's broadcast side: it emits as [`Context`]
//! does (it dereferences to one) and reaches the keyed state of every key of the subtask
//! (`apply_to_keyed_state`, as Flink's `KeyedBroadcastProcessFunction.Context`).
//!
//! Invariants: `apply_to_keyed_state` visits each key that holds the given state in the
//! subtask's key groups exactly once, with that key current, so the function reads and
//! writes the key's state through any handle; keys it clears or adds while visiting do not
//! change the keys visited.

use crate::functions::{Context, FnResult};
use std::ops::{Deref, DerefMut};
use weir_state_backends::{KeyedState, KeyedStateBackend, StateKey};

/// What a keyed broadcast function's broadcast side sees besides its record.
pub struct KeyedBroadcastContext<'a, K, O> {
    pub(crate) base: Context<'a, O>,
    pub(crate) backend: &'a KeyedStateBackend<K>,
}

impl<'a, K, O> Deref for KeyedBroadcastContext<'a, K, O> {
    type Target = Context<'a, O>;

    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

impl<K, O> DerefMut for KeyedBroadcastContext<'_, K, O> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.base
    }
}

impl<K: StateKey, O> KeyedBroadcastContext<'_, K, O> {
    /// Calls `f(key, state)` for every key of this subtask that holds `state` (a handle the
    /// function registered in `open`), with that key current: `f` may read, update or clear
    /// the key's state through `state` or any other handle. An error of `f` stops the
    /// visit and fails the task.
    pub fn apply_to_keyed_state<S: KeyedState<K>>(
        &mut self,
        state: &S,
        mut f: impl FnMut(&K, &S) -> FnResult,
    ) -> FnResult {
        for key in state.state_keys()? {
            self.backend.set_current_key(key.clone())?;
            f(&key, state)?;
        }
        Ok(())
    }
}
