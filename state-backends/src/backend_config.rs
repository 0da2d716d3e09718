//! Per-job configuration of the keyed state backend (`state.backend` and the
//! `state.backend.rocksdb.*` keys), and who owns one backend instance.
//!
//! Invariant: the configuration is plain data (serializable, sent with a job's
//! deployments); nothing here opens files.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::backend_kind::StateBackendKind;

/// Default managed memory of the RocksDB instances of one slot: 128 MiB.
pub const DEFAULT_ROCKSDB_MANAGED_MEMORY: u64 = 128 << 20;

/// Which backend keyed operators use, and its settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateBackendConfig {
    /// `state.backend`: `memory` (default) or `rocksdb`.
    pub kind: StateBackendKind,
    /// `state.backend.incremental` (default `true`): RocksDB checkpoints upload only the
    /// files a previous completed checkpoint did not; `false` writes every entry each
    /// time (a full snapshot, as savepoints always are). The memory backend ignores it.
    pub incremental: bool,
    /// Settings of the RocksDB backend.
    pub rocksdb: RocksDbOptions,
}

impl Default for StateBackendConfig {
    fn default() -> Self {
        StateBackendKind::default().into()
    }
}

/// The smallest managed memory of a slot's RocksDB instances: 8 MiB.
pub const MIN_ROCKSDB_MANAGED_MEMORY: u64 = 8 << 20;

/// Why a [`StateBackendConfig`] cannot be used; names the setting and its value.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BackendConfigError {
    /// The configured backend (`state.backend`) is not compiled into this build.
    #[error(
        "state backend '{kind}' is not available: this build of Weir lacks the cargo feature '{kind}'"
    )]
    Unavailable {
        /// The configured backend.
        kind: StateBackendKind,
    },
    /// `state.backend.rocksdb.memory.managed-size` is below [`MIN_ROCKSDB_MANAGED_MEMORY`].
    #[error("state.backend.rocksdb.memory.managed-size must be at least {min} bytes, not {value}")]
    ManagedMemoryTooSmall {
        /// The configured size in bytes.
        value: u64,
        /// The least size allowed in bytes.
        min: u64,
    },
}

impl StateBackendConfig {
    /// Checks that the backend is compiled into this build and its settings are sane.
    pub fn validate(&self) -> Result<(), BackendConfigError> {
        if !self.kind.is_available() {
            return Err(BackendConfigError::Unavailable { kind: self.kind });
        }
        if self.kind == StateBackendKind::RocksDb
            && self.rocksdb.managed_memory_bytes < MIN_ROCKSDB_MANAGED_MEMORY
        {
            return Err(BackendConfigError::ManagedMemoryTooSmall {
                value: self.rocksdb.managed_memory_bytes,
                min: MIN_ROCKSDB_MANAGED_MEMORY,
            });
        }
        Ok(())
    }
}

impl From<StateBackendKind> for StateBackendConfig {
    fn from(kind: StateBackendKind) -> Self {
        Self {
            kind,
            incremental: true,
            rocksdb: RocksDbOptions::default(),
        }
    }
}

/// Settings of the RocksDB backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RocksDbOptions {
    /// `state.backend.rocksdb.localdir`: where each keyed operator subtask keeps its
    /// working database (default: the TaskManager's temporary directory). Working
    /// directories are deleted when the subtask ends and when a later one starts over
    /// a crashed process's.
    pub local_dir: Option<PathBuf>,
    /// `state.backend.rocksdb.memory.managed-size`: bytes of block cache and write
    /// buffers shared by all RocksDB instances of one slot (default 128 MiB).
    pub managed_memory_bytes: u64,
    /// `state.backend.rocksdb.value-cache.max-entries`: decoded values (of value, reducing
    /// and aggregating state, and map state's user entries) each state of a subtask keeps
    /// in a write-back cache in front of the database (default 65,536; 0: every access
    /// reads or writes the database).
    #[serde(default = "default_value_cache_entries")]
    pub value_cache_entries: usize,
}

/// Default size of each value state's write-back cache: 65,536 entries.
pub const DEFAULT_ROCKSDB_VALUE_CACHE_ENTRIES: usize = 1 << 16;

fn default_value_cache_entries() -> usize {
    DEFAULT_ROCKSDB_VALUE_CACHE_ENTRIES
}

impl Default for RocksDbOptions {
    fn default() -> Self {
        Self {
            local_dir: None,
            managed_memory_bytes: DEFAULT_ROCKSDB_MANAGED_MEMORY,
            value_cache_entries: DEFAULT_ROCKSDB_VALUE_CACHE_ENTRIES,
        }
    }
}

/// Who owns one backend instance: names its working directory and the slot whose
/// memory budget it shares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct BackendOwner {
    /// The job.
    pub job: u64,
    /// The slot (subtask index: slot sharing puts subtask `i` of every operator in
    /// slot `i`).
    pub slot: u16,
    /// The operator's uid.
    pub operator: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_name_the_backend_or_key() {
        assert_eq!(StateBackendConfig::default().validate(), Ok(()));
        let mut rocks = StateBackendConfig::from(StateBackendKind::RocksDb);
        rocks.rocksdb.managed_memory_bytes = 1;
        let err = rocks.validate().unwrap_err().to_string();
        if cfg!(feature = "rocksdb") {
            assert_eq!(
                err,
                format!(
                    "state.backend.rocksdb.memory.managed-size must be at least \
                     {MIN_ROCKSDB_MANAGED_MEMORY} bytes, not 1"
                )
            );
        } else {
            assert_eq!(
                err,
                "state backend 'rocksdb' is not available: this build of Weir lacks the cargo \
                 feature 'rocksdb'"
            );
        }
    }
}
