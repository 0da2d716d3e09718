//! Shared fixtures of the conformance suite.

use weir_state_backends::{
    assign_to_key_group, key_hash, operator_index_for_key_group, BackendOwner, KeyGroupRange,
    KeyedStateBackend, RocksDbOptions, StateBackendConfig, StateBackendKind,
};

/// Max parallelism used throughout the suite.
pub const MAX: u16 = 128;

/// The backend under test: its kind, and for RocksDB the size of each value state's
/// write-back cache (tiny sizes exercise write-backs on every few accesses).
#[derive(Clone, Copy, Debug)]
pub struct Backend {
    pub kind: StateBackendKind,
    pub value_cache_entries: usize,
}

impl Backend {
    /// A backend owning `range` out of `max` key groups.
    pub fn open(self, range: KeyGroupRange, max: u16) -> KeyedStateBackend<String> {
        let config = StateBackendConfig {
            rocksdb: RocksDbOptions {
                value_cache_entries: self.value_cache_entries,
                ..RocksDbOptions::default()
            },
            ..StateBackendConfig::from(self.kind)
        };
        KeyedStateBackend::open(&config, &BackendOwner::default(), range, max).unwrap()
    }
}

/// A backend owning every key group.
pub fn full(kind: Backend) -> KeyedStateBackend<String> {
    kind.open(KeyGroupRange::all(MAX), MAX)
}

/// The backend of subtask `index` out of `parallelism`.
pub fn subtask(kind: Backend, parallelism: u16, index: u16) -> KeyedStateBackend<String> {
    kind.open(KeyGroupRange::for_operator(MAX, parallelism, index), MAX)
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
