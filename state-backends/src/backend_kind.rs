//! Selection of the storage behind a keyed state backend.
//!
//! Invariant: the kind only chooses how tables are created; the typed state
//! handles and the snapshot format are identical for every kind, so state
//! snapshotted by one kind restores into any other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Storage used by a [`crate::KeyedStateBackend`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateBackendKind {
    /// Plain Rust values in per-key-group hash maps on the heap.
    #[default]
    Memory,
    /// Serialized entries in an embedded RocksDB per operator subtask, on local disk,
    /// so state can grow far beyond memory (cargo feature `rocksdb`).
    RocksDb,
}

impl StateBackendKind {
    /// Whether this build has the backend (RocksDB needs the cargo feature `rocksdb`).
    pub fn is_available(self) -> bool {
        match self {
            Self::Memory => true,
            Self::RocksDb => cfg!(feature = "rocksdb"),
        }
    }

    /// The name used in configuration (`state.backend`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::RocksDb => "rocksdb",
        }
    }
}

impl fmt::Display for StateBackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string names no [`StateBackendKind`].
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseBackendKindError {
    /// The name is none of the backends' names.
    #[error("unknown state backend '{name}' (expected 'memory' or 'rocksdb')")]
    Unknown {
        /// The name as given.
        name: String,
    },
}

impl FromStr for StateBackendKind {
    type Err = ParseBackendKindError;

    /// Parses `memory` or `rocksdb` (as `state.backend`; case-insensitive).
    fn from_str(s: &str) -> Result<Self, ParseBackendKindError> {
        match s.to_ascii_lowercase().as_str() {
            "memory" | "hashmap" => Ok(Self::Memory),
            "rocksdb" => Ok(Self::RocksDb),
            _ => Err(ParseBackendKindError::Unknown {
                name: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_case_insensitively_and_unknown_names_are_named() {
        assert_eq!("RocksDB".parse(), Ok(StateBackendKind::RocksDb));
        assert_eq!("hashmap".parse(), Ok(StateBackendKind::Memory));
        assert_eq!(
            "disk".parse::<StateBackendKind>().unwrap_err().to_string(),
            "unknown state backend 'disk' (expected 'memory' or 'rocksdb')"
        );
    }
}
