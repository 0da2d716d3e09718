//! Why a savepoint was refused or failed.
//!
//! Every answer to a savepoint request that is not the savepoint's URL is one of these; the
//! messages are what `weir savepoint` and `weir stop` print after the job's id.

use thiserror::Error;
use weir_runtime::CheckpointId;

/// A savepoint refused, or one that failed after it was triggered.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SavepointError {
    /// A stop-with-savepoint is under way already.
    #[error("the job is already stopping with a savepoint")]
    AlreadyStopping,
    /// A task ended: no barrier can pass it any more.
    #[error("a task of the job finished: no further checkpoints or savepoints")]
    TaskFinished,
    /// The job has no checkpoint storage to take the savepoint with.
    #[error(
        "the job takes no checkpoints; savepoints need its checkpoint storage (set \
         execution.checkpointing.interval and state.checkpoints.dir)"
    )]
    NoCheckpointStorage,
    /// Neither the request nor the job names a directory.
    #[error("no savepoint directory given and state.savepoints.dir is not set")]
    NoDirectory,
    /// The savepoint's checkpoint was aborted or could not be stored.
    #[error("savepoint {checkpoint} failed: {reason}")]
    Failed {
        /// The checkpoint the savepoint was taken as.
        checkpoint: CheckpointId,
        /// Why it failed.
        reason: String,
    },
    /// A stop-with-savepoint whose savepoint completed, but the job failed before it
    /// stopped (the savepoint stays usable).
    #[error("the savepoint {url} is complete, but the job failed while stopping: {failure}")]
    FailedWhileStopping {
        /// The completed savepoint.
        url: String,
        /// The job's failure.
        failure: String,
    },
    /// The job ended before the savepoint completed.
    #[error("the job ended before the savepoint completed")]
    JobEnded,
}
