//! Shared fixtures of the conformance suite.

use weir_state_backends::{
    assign_to_key_group, key_hash, operator_index_for_key_group, KeyGroupRange, KeyedStateBackend,
    StateBackendKind,
};

/// Max parallelism used throughout the suite.
pub const MAX: u16 = 128;

/// A backend owning every key group.
pub fn full(kind: StateBackendKind) -> KeyedStateBackend<String> {
    KeyedStateBackend::new(kind, KeyGroupRange::all(MAX), MAX).unwrap()
}

/// The backend of subtask `index` out of `parallelism`.
pub fn subtask(kind: StateBackendKind, parallelism: u16, index: u16) -> KeyedStateBackend<String> {
    KeyedStateBackend::new(
        kind,
        KeyGroupRange::for_operator(MAX, parallelism, index),
        MAX,
    )
    .unwrap()
}

/// The subtask owning `key` at `parallelism`.
pub fn owner(key: &str, parallelism: u16) -> u16 {
    let kg = assign_to_key_group(key_hash(key), MAX);
    operator_index_for_key_group(MAX, parallelism, kg)
}

/// The `i`-th test key.
pub fn key(i: usize) -> String {
    format!("key-{i}")
}
