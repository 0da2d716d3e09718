//! The RocksDB keyed state backend: every state of a keyed operator subtask lives
//! serialized in an embedded RocksDB on local disk, so state can grow far beyond
//! memory (compiled with the cargo feature `rocksdb`).
//!
//! Layout (see [`keys`]): one column family per state; an entry's key is the key
//! group (2 bytes, big-endian), the encoded key and the encoded namespace, and for
//! map state the encoded user key, so one key group is one contiguous key range and
//! the entries of one key and namespace are one prefix. Value and reducing state store
//! the encoded value, list state the concatenated encoded elements (appended by a merge
//! operator, without reading the list), map state one entry per user key.
//!
//! Invariants:
//! - Values are encoded once per write and decoded once per read; nothing keeps a
//!   decoded copy, so memory use is RocksDB's (bounded by the slot's budget, see
//!   [`memory`]) whatever the state size.
//! - Writes skip the write-ahead log: durability comes from checkpoints, and a
//!   working directory never outlives its subtask (see [`instance`]).
//! - Full snapshots (savepoints, and checkpoints when `state.backend.incremental` is
//!   off) are in the backend-independent format of [`crate::snapshot`], so a snapshot
//!   of either backend restores into the other at any parallelism. Incremental
//!   checkpoints are native RocksDB checkpoints (see [`native`] and
//!   [`crate::native`]), restorable by this backend at any parallelism.
//! - Timers live in two column families of the database (see [`timers`]), so native
//!   snapshots carry them and their number costs no memory.
//! - Compactions drop expired rows of states with a time to live (see [`expiry`]).

mod expiry;
mod instance;
mod keys;
mod memory;
mod native;
mod rows;
mod table;
mod timers;

pub(crate) use instance::{open_read_only, RocksDbInstance};
pub(crate) use rows::stream_groups;
pub(crate) use table::{Listed, Mapped, RocksTable, Single};
pub(crate) use timers::RocksTimerQueue;
