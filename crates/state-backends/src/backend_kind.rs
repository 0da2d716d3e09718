//! Selection of the storage behind a keyed state backend.
//!
//! Invariant: the kind only chooses how tables are created; the typed state
//! handles and the snapshot format are identical for every kind, so state
//! snapshotted by one kind restores into any other.

use serde::{Deserialize, Serialize};

/// Storage used by a [`crate::KeyedStateBackend`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StateBackendKind {
    /// Plain Rust values in per-key-group hash maps on the heap.
    #[default]
    Memory,
}
