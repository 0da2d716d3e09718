//! Shared vocabulary of the runtime: identifiers, timestamps and watermarks, and the
//! cluster secret every connection presents.
//!
//! This module has no dependencies on the rest of the crate so that every layer (graph,
//! tasks, network, control messages) speaks the same types. Timestamps are milliseconds
//! since the epoch as `i64`; [`NO_TIMESTAMP`] marks a record without one.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Event or processing time in milliseconds since the epoch.
pub type Timestamp = i64;

/// Marker for a record that carries no event timestamp.
pub const NO_TIMESTAMP: Timestamp = i64::MIN;

/// The watermark before any input was seen.
pub const MIN_WATERMARK: Timestamp = i64::MIN;

/// The final watermark a bounded source emits when it ends: it fires every open window.
pub const MAX_WATERMARK: Timestamp = i64::MAX;

/// Index of a vertex in a [`crate::graph::JobGraph`] (dense, assigned in build order).
pub type VertexId = u32;

/// Index of a parallel subtask of a vertex, `0..parallelism`.
pub type SubtaskIndex = u16;

/// Identifier of a checkpoint, increasing per job.
pub type CheckpointId = u64;

/// Identifier of a submitted job. Derived deterministically by the submitter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl JobId {
    /// Parses a job id as [`fmt::Display`] writes it (hex digits).
    pub fn from_hex(s: &str) -> Option<Self> {
        u64::from_str_radix(s, 16).ok().map(JobId)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({self})")
    }
}

/// One parallel instance of a vertex of one job.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct SubtaskId {
    /// The job the subtask belongs to.
    pub job: JobId,
    /// The vertex (operator chain) it runs.
    pub vertex: VertexId,
    /// Its index among the vertex's parallel instances.
    pub subtask: SubtaskIndex,
}

/// The address of one input gate of one subtask: where a producer's channel ends.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct GateAddress {
    /// The consuming subtask.
    pub subtask: SubtaskId,
    /// The index of the gate among the consumer's input gates (one gate per input edge).
    pub gate: u16,
    /// The job attempt that deployed the consumer (the TaskManager stamps its deployment's
    /// attempt on both sides): a channel opened by a producer of an earlier attempt, still
    /// on its way, never attaches to the gate of a later attempt at the same place.
    pub attempt: u32,
}

/// Returns the current wall-clock time in milliseconds since the epoch (processing time).
pub fn now_ms() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A secret that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
