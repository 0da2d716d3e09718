//! What a submitter holds: the outcome of one job ([`JobHandle`]) and the answer to one
//! savepoint request ([`SavepointHandle`]).
//!
//! Invariant: each handle is answered at most once; a handle whose JobMaster is gone
//! answers with the job's end rather than waiting forever.

use crate::{JobManagerError, SavepointError};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::time::Duration;
use weir_runtime::{CheckpointId, JobId};

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every subtask finished.
    Finished {
        /// Wall time from deployment to the last subtask's end.
        duration: Duration,
        /// The checkpoints that completed while it ran.
        checkpoints: Vec<crate::CompletedCheckpoint>,
        /// The checkpoint (or savepoint) each restart after a failure restored from, in
        /// order (`None`: the restart started without state).
        restored_from: Vec<Option<CheckpointId>>,
    },
    /// The job failed or was cancelled; the message names the first failure.
    Failed {
        /// The first failure.
        message: String,
    },
}

/// Waits for the outcome of one submitted job.
pub struct JobHandle {
    /// The job's id.
    pub id: JobId,
    pub(crate) rx: Receiver<JobOutcome>,
}

impl JobHandle {
    /// Waits up to `timeout` for the job to end; `None` if it is still running.
    pub fn wait(&self, timeout: Duration) -> Option<JobOutcome> {
        match self.rx.recv_timeout(timeout) {
            Ok(outcome) => Some(outcome),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(JobOutcome::Failed {
                message: format!("job {} was dropped by the JobManager", self.id),
            }),
        }
    }
}

/// What a client asks a running job to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TriggerRequest {
    /// A savepoint into `target` (`None`: the job's `state.savepoints.dir`).
    Savepoint {
        /// Where.
        target: Option<String>,
    },
    /// A savepoint, after which the job stops (stop-with-savepoint); with `drain` the
    /// sources emit the final watermark first, so every event-time window is emitted.
    Stop {
        /// Where (`None`: the job's `state.savepoints.dir`).
        target: Option<String>,
        /// Emit the final watermark before the savepoint.
        drain: bool,
    },
    /// A checkpoint now, retained as any other.
    Checkpoint,
}

/// Waits for the answer to one savepoint (or checkpoint) request.
pub struct SavepointHandle {
    pub(crate) job: JobId,
    pub(crate) request: u64,
    pub(crate) rx: Receiver<Result<String, SavepointError>>,
}

impl SavepointHandle {
    /// Waits up to `timeout` for the savepoint: its URL, or why it failed; `None` if it is
    /// still in progress.
    pub fn wait(&self, timeout: Duration) -> Option<Result<String, JobManagerError>> {
        let failed = |source: SavepointError| JobManagerError::SavepointFailed {
            job: self.job,
            source,
        };
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(r.map_err(failed)),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Err(failed(SavepointError::JobEnded))),
        }
    }
}
