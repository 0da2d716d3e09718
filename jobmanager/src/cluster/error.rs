//! Why a request to the standalone cluster was refused, or a job could not be placed.
//!
//! The messages are what clients print after `weir: `; each names the job, TaskManager or
//! setting concerned.

use crate::JobManagerError;
use thiserror::Error;
use weir_runtime::control::TaskManagerId;
use weir_runtime::rpc::messages::ArtifactDigest;
use weir_runtime::{GraphError, JobId};

/// A refused cluster request or a failed placement.
#[derive(Debug, Error)]
pub enum ClusterError {
    /// No job has this id.
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The job waits for slots: it has no tasks to take a savepoint of.
    #[error("job {job} is not running yet ({status})")]
    NotRunning {
        /// The job.
        job: JobId,
        /// Its status.
        status: &'static str,
    },
    /// The submission names an artifact that is not stored.
    #[error("no artifact {0} is stored; upload it first")]
    MissingArtifact(ArtifactDigest),
    /// The submitted job graph is invalid.
    #[error("invalid job graph: {0}")]
    InvalidGraph(#[from] GraphError),
    /// The submitted job graph has no vertices.
    #[error("the job graph has no vertices")]
    EmptyGraph,
    /// The dispatcher refused the job, its savepoint, or a request about it.
    #[error(transparent)]
    JobManager(#[from] JobManagerError),
    /// The JobManager is shutting down.
    #[error("the JobManager is shutting down")]
    ShuttingDown,
    /// The job was cancelled while it was placed.
    #[error("job was cancelled")]
    Cancelled,
    /// Not enough free slots within `slot.request.timeout`.
    #[error("job '{name}' {need} after waiting {waited_s} s (slot.request.timeout)")]
    SlotTimeout {
        /// The job's name.
        name: String,
        /// How many slots it needs and how many are free.
        need: String,
        /// How long it waited.
        waited_s: u64,
    },
    /// A TaskManager the job was placed on went away before its worker registered.
    #[error("taskmanager {0} was lost while the job's worker started")]
    TaskManagerLost(TaskManagerId),
    /// The job's worker on a TaskManager exited or was refused.
    #[error("the job's worker on taskmanager {taskmanager}: {reason}")]
    WorkerFailed {
        /// The TaskManager.
        taskmanager: TaskManagerId,
        /// Why.
        reason: String,
    },
    /// The job's workers did not all register in time.
    #[error("the job's workers did not register within {0} s")]
    WorkersTimedOut(u64),
    /// A worker registered for a job that holds no slot on its TaskManager.
    #[error("job {job} holds no slot on taskmanager {taskmanager}")]
    NoSlot {
        /// The job.
        job: JobId,
        /// The worker's TaskManager.
        taskmanager: TaskManagerId,
    },
    /// A worker's program built another job graph than the submitted one.
    #[error(
        "the program of job '{0}' built a different job graph in its worker than at submission; \
         graph construction must be deterministic (the same arguments must build the same \
         operators, parallelism and settings)"
    )]
    GraphMismatch(String),
    /// The job cannot be persisted for high availability (it was not accepted).
    #[error("cannot persist the job for high availability: {0}")]
    HighAvailability(#[from] weir_runtime::ha::HaError),
    /// A savepoint did not complete in time.
    #[error("the savepoint of job {job} did not complete within {waited_s} s")]
    SavepointTimedOut {
        /// The job.
        job: JobId,
        /// How long the request waited.
        waited_s: u64,
    },
}
