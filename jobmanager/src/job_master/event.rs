//! The events a JobMaster's mailbox carries: everything that can change one job.
//!
//! Invariant: a JobMaster changes only in reaction to one of these, handled one at a time
//! in arrival order; replies go back on the channel the event carries.

use crate::cluster::ClusterError;
use crate::{Endpoints, JobManagerError, SavepointError, SavepointHandle, TriggerRequest};
use crossbeam_channel::Sender;
use weir_runtime::control::{TaskManagerId, TaskManagerMessage};

/// One event for one job.
pub(crate) enum JobEvent {
    /// A report of one of the job's subtasks: state change, checkpoint acknowledgement or
    /// decline, end of input.
    Task(TaskManagerMessage),
    /// The checkpoint interval's timer fired.
    Tick,
    /// Cancel the job.
    Cancel {
        /// The answer: refused if the job has ended.
        reply: Sender<Result<(), JobManagerError>>,
    },
    /// Take a savepoint (and stop the job once it completed) or a checkpoint.
    Savepoint {
        /// What to take.
        request: TriggerRequest,
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
