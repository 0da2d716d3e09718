//! The error type of the state layer.
//!
//! Invariant: every variant carries the context needed to act on it without
//! a debugger — the state name, the key group and range, what was being
//! decoded — and wraps lower-level errors as `source`.

use crate::codec::CodecError;
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::state_kind::StateKind;

/// Errors raised by keyed state, timers, snapshots and restores.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A state name was requested with a kind or types other than those it
    /// was registered with.
    #[error(
        "state '{name}' is registered as {existing_kind} state of {existing_types}, \
         but was requested as {requested_kind} state of {requested_types}"
    )]
    StateTypeMismatch {
        /// Name of the state.
        name: String,
        /// Kind it was registered with.
        existing_kind: StateKind,
        /// Types it was registered with.
        existing_types: String,
        /// Kind of the failed request.
        requested_kind: StateKind,
        /// Types of the failed request.
        requested_types: String,
    },
    /// A key hashes to a key group this backend does not own.
    #[error("key group {key_group} is outside this backend's key-group range {range}")]
    KeyGroupOutOfRange {
        /// Key group of the key.
        key_group: KeyGroup,
        /// Range owned by the backend.
        range: KeyGroupRange,
    },
    /// State was accessed before any key was set.
    #[error("state '{state}' was accessed with no current key; call set_current_key first")]
    NoCurrentKey {
        /// Name of the state.
        state: String,
    },
    /// Namespaced state was accessed through its current namespace before one
    /// was set.
    #[error(
        "state '{state}' was accessed with no namespace; call set_namespace or use the *_in methods"
    )]
    NoNamespace {
        /// Name of the state.
        state: String,
    },
    /// Encoding or decoding failed.
    #[error("codec error in {what}: {source}")]
    Codec {
        /// What was being encoded or decoded (state name, key group, ...).
        what: String,
        /// The underlying codec error.
        #[source]
        source: CodecError,
    },
    /// A snapshot was taken with a different number of key groups.
    #[error(
        "{what} was taken with max parallelism {found}, but this backend uses {expected}; \
         key groups cannot be remapped"
    )]
    MaxParallelismMismatch {
        /// What was being restored.
        what: String,
        /// Max parallelism recorded in the snapshot.
        found: u16,
        /// Max parallelism of the restoring backend.
        expected: u16,
    },
    /// Two snapshots restored together claim the same key groups.
    #[error("{what}: snapshots with overlapping key-group ranges {first} and {second}")]
    OverlappingSnapshots {
        /// What was being restored.
        what: String,
        /// Range of one snapshot.
        first: KeyGroupRange,
        /// Range of the other snapshot.
        second: KeyGroupRange,
    },
    /// A snapshot holds data for a key group outside its own range.
    #[error("state '{state}' holds key group {key_group} outside its snapshot's range {range}")]
    KeyGroupOutsideSnapshot {
        /// Name of the state.
        state: String,
        /// Offending key group.
        key_group: KeyGroup,
        /// Range declared by the snapshot.
        range: KeyGroupRange,
    },
    /// A restored key does not hash to the key group it was stored under.
    #[error(
        "state '{state}': a restored key hashes to key group {actual} \
         but was stored under key group {stored}"
    )]
    KeyGroupMismatch {
        /// Name of the state.
        state: String,
        /// Key group the entry was stored under.
        stored: KeyGroup,
        /// Key group the key hashes to.
        actual: KeyGroup,
    },
    /// A snapshot holds a state under a different kind than it is (or was, in
    /// another snapshot) registered with.
    #[error(
        "snapshot holds state '{name}' as {snapshot_kind} state, but it is {registered_kind} state"
    )]
    SnapshotKindMismatch {
        /// Name of the state.
        name: String,
        /// Kind recorded in the snapshot.
        snapshot_kind: StateKind,
        /// Kind it is registered (or otherwise restored) as.
        registered_kind: StateKind,
    },
    /// The storage engine behind the backend failed (opening it, or an access to one
    /// state).
    #[error("state backend {backend} failed {doing}: {message}")]
    Storage {
        /// The backend (with its local directory, where it has one).
        backend: String,
        /// What it was doing (naming the state, where one was accessed).
        doing: String,
        /// The engine's message.
        message: String,
    },
    /// A full snapshot (a savepoint) was asked for while a state restored from a native
    /// RocksDB snapshot was not registered since, so its types are unknown.
    #[error(
        "state '{0}' was restored from an incremental RocksDB checkpoint and has not been \
         used since: a full snapshot (savepoint) needs its types, so register the state \
         (ask for its handle) before taking one"
    )]
    UnregisteredNativeState(String),
    /// A native (incremental RocksDB) snapshot cannot be restored into this backend.
    #[error(
        "the {0} state backend cannot restore an incremental RocksDB checkpoint: \
         restore from a savepoint, whose format every backend reads"
    )]
    NativeSnapshotUnsupported(&'static str),
    /// A state's time to live is below 1 ms (or beyond `i64::MAX` ms).
    #[error("state '{state}': time to live {ttl:?} must be at least 1 ms")]
    InvalidTtl {
        /// The state.
        state: String,
        /// The configured time to live.
        ttl: std::time::Duration,
    },
    /// The configured backend is not compiled into this build.
    #[error(
        "state backend '{0}' is not available: this build of Weir lacks the cargo feature '{0}'"
    )]
    Unavailable(&'static str),
}

impl StateError {
    /// Wraps a codec error, naming what was being encoded or decoded.
    pub(crate) fn codec(what: impl Into<String>, source: CodecError) -> Self {
        StateError::Codec {
            what: what.into(),
            source,
        }
    }
}
