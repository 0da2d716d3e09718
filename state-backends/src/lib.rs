//! Keyed state for Weir: key groups, state backends, timers and snapshots.
//!
//! A keyed operator subtask owns one [`KeyedStateBackend`] (its named value,
//! list, map, reducing and aggregating states) and one [`TimerService`], both
//! covering the subtask's [`KeyGroupRange`]. Snapshots are grouped per key
//! group so state can be restored at any parallelism up to the max
//! parallelism.
//!
//! Invariants:
//! - Everything here is single-threaded per subtask (`Rc`/`RefCell`); the
//!   per-record access path neither locks nor clones the current key for
//!   existing entries, and the memory backend serializes only in snapshot and
//!   restore.
//! - [`codec`] is the only module that touches the binary encoding.

mod backend_config;
mod backend_kind;
mod bounds;
pub mod codec;
mod error;
mod full_snapshot;
mod functions;
mod key_context;
mod key_group;
mod keyed_backend;
mod memory;
mod native;
mod registry;
#[cfg(feature = "rocksdb")]
mod rocksdb;
mod snapshot;
mod state;
mod state_kind;
mod tables;
mod timers;
mod ttl;

pub use backend_config::{
    BackendConfigError, BackendOwner, RocksDbOptions, StateBackendConfig,
    DEFAULT_ROCKSDB_MANAGED_MEMORY, DEFAULT_ROCKSDB_VALUE_CACHE_ENTRIES,
    MIN_ROCKSDB_MANAGED_MEMORY,
};
pub use backend_kind::{ParseBackendKindError, StateBackendKind};
pub use bounds::{Namespace, StateKey, StateValue, VoidNamespace};
pub use codec::{
    decode_from, decode_versioned, decode_versioned_nested_from, encode_into, encode_versioned,
    encode_versioned_nested_to, CodecError, FORMAT_VERSION,
};
pub use error::StateError;
pub use full_snapshot::{
    FullSnapshotReader, LocalFullSnapshot, StreamedKeyedState, StreamedTimers,
};
pub use functions::{AggregateFunction, ReduceAggregate, ReduceFunction};
pub use key_group::{
    assign_to_key_group, key_hash, operator_index_for_key_group, KeyGroup, KeyGroupRange,
    DEFAULT_MAX_PARALLELISM,
};
pub use keyed_backend::KeyedStateBackend;
pub use native::{
    BackendSnapshot, LocalFile, LocalSnapshot, NativeKeyedState, NativeRestore, SharedStateFile,
};
pub use snapshot::{KeyGroupBytes, KeyedStateSnapshot, StateSnapshot};
pub use state::{AggregatingState, KeyedState, ListState, MapState, ReducingState, ValueState};
pub use state_kind::StateKind;
pub use timers::{Timer, TimerService, TimerSnapshot};
pub use ttl::{
    StateTtlConfig, StateTtlConfigBuilder, StateVisibility, SystemTimeProvider,
    TtlAggregatingState, TtlListState, TtlMapState, TtlReducingState, TtlTimeProvider,
    TtlValueState, UpdateType,
};
