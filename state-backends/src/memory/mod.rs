//! The heap (memory) state backend.
//!
//! Invariant: state lives as plain Rust values in per-key-group hash maps;
//! serialization happens only in snapshot and restore.

mod kinds;
mod table;

pub(crate) use kinds::UserMap;
pub(crate) use table::MemoryTable;
