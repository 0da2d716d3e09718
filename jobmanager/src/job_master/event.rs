//! The events a JobMaster's mailbox carries: everything that can change one job.
//!
//! Invariant: a JobMaster changes only in reaction to one of these, handled one at a time
//! in arrival order; replies go back on the channel the event carries.

use crate::cluster::ClusterError;
use crate::{Endpoints, JobManagerError, SavepointError, SavepointHandle};
use crossbeam_channel::Sender;
use weir_runtime::control::{ExecutionState, OperatorSubtaskState, TaskManagerId};
use weir_runtime::{CheckpointId, FailureCause, SubtaskId};

/// One event for one job.
pub(crate) enum JobEvent {
    /// A subtask changed state.
    TaskState {
        /// The subtask.
        subtask: SubtaskId,
        /// The run it belongs to.
        attempt: u32,
        /// Its new state.
        state: ExecutionState,
        /// Its failure, for a failed subtask.
        failure: Option<FailureCause>,
    },
    /// A subtask acknowledged a checkpoint with its state.
    Acknowledge {
        /// The subtask.
        subtask: SubtaskId,
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Its operators' state.
        state: Vec<OperatorSubtaskState>,
        /// Time its inputs spent aligning.
        alignment_ms: u64,
        /// Its input had ended before the snapshot.
        ended: bool,
    },
    /// A subtask's input ended.
    InputEnded {
        /// The subtask.
        subtask: SubtaskId,
    },
    /// A subtask declined a checkpoint.
    Decline {
        /// The subtask.
        subtask: SubtaskId,
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Why.
        reason: String,
    },
    /// The checkpoint interval's timer fired.
    Tick,
    /// Cancel the job.
    Cancel {
        /// The answer: refused if the job has ended.
        reply: Sender<Result<(), JobManagerError>>,
    },
    /// Take a savepoint (and with `stop`, stop the job once it completed).
    Savepoint {
        /// Where (`None`: `state.savepoints.dir`).
        target: Option<String>,
        /// Stop-with-savepoint.
        stop: bool,
        /// The handle to wait on, or why the request is refused.
        reply: Sender<Result<SavepointHandle, JobManagerError>>,
    },
    /// Withdraw a savepoint request that was not triggered yet.
    Withdraw {
        /// The request.
        request: u64,
        /// Whether it was withdrawn.
        reply: Sender<bool>,
    },
    /// The TaskManager (or job worker) `taskmanager` is gone: its subtasks failed.
    TaskManagerLost {
        /// The lost TaskManager.
        taskmanager: TaskManagerId,
        /// Why, for the failure message.
        reason: String,
    },
    /// The placement of run `attempt` waits (for slots): why.
    Waiting {
        /// The run.
        attempt: u32,
        /// What it waits for.
        message: String,
    },
    /// The placement of run `attempt` ended.
    Placed {
        /// The run.
        attempt: u32,
        /// Where its subtasks go, or why it cannot be placed.
        result: Result<Endpoints, ClusterError>,
    },
    /// The restart delay of run `attempt` passed.
    RestartDue {
        /// The run to start.
        attempt: u32,
    },
}

/// The refusal of a savepoint request, for replies.
pub(crate) fn refused(job: weir_runtime::JobId, source: SavepointError) -> JobManagerError {
    JobManagerError::SavepointFailed { job, source }
}
