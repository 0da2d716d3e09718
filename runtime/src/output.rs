//! The typed push interface between chained operators.
//!
//! A chain is a nest of [`Output`]s: each operator is the `Output` of its upstream and owns
//! the `Output` of its downstream; network writers end the chain. Records travel by value
//! with their timestamp; every other call (watermarks, idleness, timers, flushing, end of
//! input) must be forwarded downstream by each operator after it did its own part, so that
//! the order of elements is the same on every path.

use crate::checkpoint::OperatorSnapshot;
use crate::element::BarrierOptions;
use crate::error::TaskError;
use crate::types::{CheckpointId, Timestamp};

/// Receives the elements of a stream of `T`.
pub trait Output<T>: Lifecycle {
    /// Receives one record with its event timestamp (or [`crate::types::NO_TIMESTAMP`]).
    fn emit(&mut self, value: T, timestamp: Timestamp) -> Result<(), TaskError>;
}

/// Everything an operator receives besides records; each call is forwarded downstream.
pub trait Lifecycle {
    /// Event time advanced to `watermark`: fire due event-time timers, then forward.
    fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError>;

    /// The stream became idle (`true`) or active again (`false`); forward.
    fn idle(&mut self, idle: bool) -> Result<(), TaskError>;

    /// Processing time reached `now`: fire due processing-time timers, then forward.
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError>;

    /// Returns the earliest processing-time timer of this operator and everything after it.
    fn next_processing_time(&self) -> Option<Timestamp>;

    /// Pushes partly filled network buffers out (the buffer timeout fired).
    fn flush(&mut self) -> Result<(), TaskError>;

    /// All input has been consumed: finish (flush pending output) and forward.
    fn end_input(&mut self) -> Result<(), TaskError>;

    /// Checkpoint barrier `checkpoint` reached this operator (its task's inputs are
    /// aligned, or its source was triggered): append a snapshot of this operator's state,
    /// if it has any, to `state`, then forward (network outputs emit the barrier).
    fn checkpoint(
        &mut self,
        checkpoint: CheckpointId,
        options: BarrierOptions,
        state: &mut Vec<OperatorSnapshot>,
    ) -> Result<(), TaskError>;

    /// Checkpoint `checkpoint` completed (every task acknowledged it): two-phase-commit
    /// sinks make visible what it covers; forward.
    fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError>;
}

/// Returns the earlier of two optional processing-time deadlines.
pub fn earliest(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
