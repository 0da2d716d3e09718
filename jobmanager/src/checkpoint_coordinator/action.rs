//! The coordinator's vocabulary: what it asks its JobMaster to do, what a savepoint request
//! is, and what a completed checkpoint measured.
//!
//! Invariant: every storage effect of checkpointing is one of these actions; the
//! coordinator itself never touches storage.

use crate::SavepointError;
use std::time::Duration;
use weir_runtime::checkpoint::CheckpointMetadata;
use weir_runtime::element::BarrierOptions;
use weir_runtime::CheckpointId;

/// What the JobMaster must do for the coordinator: messages to its tasks, answers, and the
/// storage work (the `Store`, `Discard`, `DeleteShared`, `Retain` and `DiscardIncomplete`
/// actions, carried out by [`crate::checkpoint_io::perform`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorAction {
    /// Send `TriggerCheckpoint` to the TaskManagers running the job's sources.
    Trigger {
        /// The new checkpoint.
        checkpoint: CheckpointId,
        /// Its trigger time (milliseconds since the epoch).
        timestamp_ms: i64,
        /// Its barrier options.
        options: BarrierOptions,
    },
    /// Send `NotifyCheckpointComplete` to every TaskManager running the job.
    NotifyComplete {
        /// The completed checkpoint.
        checkpoint: CheckpointId,
        /// Every task's input had ended before it: the job's final checkpoint, after which
        /// tasks end (and none is triggered any more).
        last: bool,
    },
    /// Fail the job: too many checkpoints failed in a row.
    FailJob {
        /// Why.
        reason: String,
    },
    /// Send `NotifyCheckpointAborted` to every TaskManager running the job (tasks stopping
    /// for it resume).
    NotifyAborted {
        /// The aborted checkpoint.
        checkpoint: CheckpointId,
    },
    /// Answer savepoint request `request`: the savepoint's URL (a checkpoint's location),
    /// or why it failed.
    SavepointDone {
        /// The request (from [`crate::CheckpointCoordinator::request_savepoint`]).
        request: u64,
        /// The savepoint's URL, or the reason it failed.
        result: Result<String, SavepointError>,
    },
    /// Write the metadata of a checkpoint every task acknowledged (last, atomically), and
    /// for a savepoint copy it into `savepoint`; then tell the coordinator the outcome
    /// ([`crate::CheckpointCoordinator::stored`]).
    Store {
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Its metadata.
        metadata: Box<CheckpointMetadata>,
        /// The storage URL the savepoint's directory goes into, for a savepoint.
        savepoint: Option<String>,
    },
    /// Delete the directory of a checkpoint that will not complete.
    Discard {
        /// The checkpoint.
        checkpoint: CheckpointId,
    },
    /// Delete shared state files no retained checkpoint references.
    DeleteShared {
        /// The checkpoint they were uploaded for or last referenced by.
        checkpoint: CheckpointId,
        /// Their paths in the checkpoint storage.
        paths: Vec<String>,
    },
    /// Delete completed checkpoints beyond the retained count; tell the coordinator which
    /// ([`crate::CheckpointCoordinator::subsumed`]).
    Retain,
    /// Delete every checkpoint directory of the job that has no metadata, whose id is below
    /// `before` and not in `keep` (the checkpoints still in flight): files that uploads wrote
    /// after their checkpoint was aborted go with them.
    DiscardIncomplete {
        /// Only checkpoints older than this one.
        before: CheckpointId,
        /// Checkpoints in flight, kept.
        keep: Vec<CheckpointId>,
    },
}

/// Whether a completed checkpoint's metadata (and its savepoint copy) was stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored; for a savepoint, the URL of its copy.
    Stored {
        /// The savepoint's URL.
        savepoint: Option<String>,
    },
    /// The metadata could not be written: the checkpoint failed.
    MetadataFailed(String),
    /// The metadata was written but the savepoint copy failed: the checkpoint is aborted.
    SavepointFailed(String),
}

/// A savepoint asked for on a running job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavepointRequest {
    /// The storage URL the savepoint's directory goes into; `None` asks for a checkpoint
    /// (`weir checkpoint`, `POST /jobs/{id}/checkpoints`), retained as any other and
    /// answered with its location.
    pub target: Option<String>,
    /// Whether the job stops once the savepoint completes (stop-with-savepoint).
    pub stop: bool,
    /// With `stop`: the sources emit the final watermark before the barrier, so every
    /// event-time timer fires and every window is emitted before the job stops
    /// (`weir stop --drain`).
    pub drain: bool,
}

/// Figures of one completed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    /// Its id.
    pub checkpoint: CheckpointId,
    /// Trigger to completion.
    pub duration: Duration,
    /// Size of its state in bytes: its files and every shared file it references.
    pub size: u64,
    /// Bytes it stored: its files and the shared files no earlier retained checkpoint
    /// references (equal to `size` for full snapshots).
    pub incremental_size: u64,
    /// The longest alignment of any task, in milliseconds.
    pub max_alignment_ms: u64,
}
