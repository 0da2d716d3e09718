//! Control messages between the JobManager and TaskManagers.
//!
//! `jobmanager` and `taskmanager` never depend on each other: every message they exchange is
//! a type here. All types are serde-serializable so the same messages travel in-process in
//! the local mini-cluster and over TCP in a standalone cluster.

use crate::checkpoint::SubtaskStateHandle;
use crate::element::BarrierOptions;
use crate::failure::FailureCause;
use crate::graph::Partitioning;
use crate::types::{CheckpointId, GateAddress, JobId, SubtaskId};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Identifies a TaskManager within a cluster.
pub type TaskManagerId = u32;

/// The life cycle of one subtask's execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecutionState {
    /// Sent to a TaskManager, not started yet.
    Deploying,
    /// The task thread runs.
    Running,
    /// Ended after consuming all input.
    Finished,
    /// Stopped on request.
    Cancelled,
    /// Stopped by an error.
    Failed,
}

impl ExecutionState {
    /// Returns whether no further transition will happen.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ExecutionState::Finished | ExecutionState::Cancelled | ExecutionState::Failed
        )
    }
}

/// Where one channel of an output edge ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTarget {
    /// The consumer's input gate. The JobManager leaves its `attempt` at 0: the TaskManager
    /// stamps the deployment's attempt on it before any lookup (`task/wiring.rs`), so read
    /// it there, never straight from here.
    pub gate: GateAddress,
    /// The channel index within that gate (the producer's subtask index).
    pub channel: u32,
    /// The TaskManager running the consumer.
    pub taskmanager: TaskManagerId,
    /// That TaskManager's data-plane address.
    pub data_address: SocketAddr,
}

/// One output edge of a deployed subtask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// How records are distributed.
    pub partitioning: Partitioning,
    /// One target per consumer subtask, indexed by consumer subtask.
    pub targets: Vec<ChannelTarget>,
}

/// One input gate of a deployed subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSpec {
    /// Number of producer channels (the producer's parallelism).
    pub channels: u32,
    /// The logical input the gate feeds.
    pub input: u8,
}

/// Everything a TaskManager needs to start one subtask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDeployment {
    /// The subtask.
    pub subtask: SubtaskId,
    /// The vertex name, for logs and errors.
    pub name: String,
    /// The vertex's parallelism.
    pub parallelism: u16,
    /// The vertex's number of key groups.
    pub max_parallelism: u16,
    /// Whether the chain starts with a source.
    pub is_source: bool,
    /// Input gates, in gate order.
    pub gates: Vec<GateSpec>,
    /// Output edges, in output order.
    pub outputs: Vec<OutputSpec>,
    /// Which run of the job this is (0 first, then one more per restart).
    pub attempt: u32,
    /// The checkpoint to restore from, if the job restarts after a failure.
    pub restore: Option<RestoreSpec>,
}

/// Where a task finds the state it starts from: a completed checkpoint or a savepoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSpec {
    /// The storage URL.
    pub storage: String,
    /// The snapshot's directory inside the storage (`<job>/chk-<n>` for a checkpoint, empty
    /// for a savepoint, whose URL is its directory); the metadata's file names are relative
    /// to it.
    pub dir: String,
    /// The checkpoint's metadata (every operator's state files).
    pub metadata: crate::checkpoint::CheckpointMetadata,
}

/// Messages from the JobManager to a TaskManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum JobManagerMessage {
    /// Start a subtask.
    Deploy(Box<TaskDeployment>),
    /// Cancel every subtask of one run of a job.
    CancelJob {
        /// The job.
        job: JobId,
        /// The run.
        attempt: u32,
    },
    /// Sources of `job` on this TaskManager: snapshot and emit `Barrier(checkpoint)`.
    TriggerCheckpoint {
        /// The job.
        job: JobId,
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// When it was triggered (milliseconds since the epoch).
        timestamp_ms: i64,
        /// Savepoint or checkpoint, aligned or not.
        options: BarrierOptions,
    },
    /// Every task of `job` on this TaskManager: checkpoint `checkpoint` is complete (two-
    /// phase-commit sinks commit what it covers).
    NotifyCheckpointComplete {
        /// The job.
        job: JobId,
        /// The completed checkpoint.
        checkpoint: CheckpointId,
        /// Every task's input had ended before it snapshotted this checkpoint: it is the
        /// job's final checkpoint, and tasks end once they committed it.
        last: bool,
    },
    /// Every task of `job` on this TaskManager: checkpoint `checkpoint` was aborted (tasks
    /// stopping for it as a stop-with-savepoint resume).
    NotifyCheckpointAborted {
        /// The job.
        job: JobId,
        /// The aborted checkpoint.
        checkpoint: CheckpointId,
    },
}

/// The state one operator of a subtask wrote for a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorSubtaskState {
    /// The operator's `uid`.
    pub uid: String,
    /// The operator's parallelism.
    pub parallelism: u16,
    /// The operator's number of key groups.
    pub max_parallelism: u16,
    /// The uploaded state file.
    pub handle: SubtaskStateHandle,
}

/// Messages from a TaskManager to the JobManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TaskManagerMessage {
    /// A subtask changed state; `failure` is set for [`ExecutionState::Failed`].
    TaskState {
        /// The subtask.
        subtask: SubtaskId,
        /// The run of the job it belongs to.
        attempt: u32,
        /// Its new state.
        state: ExecutionState,
        /// The failure, for failed tasks: its kind decides whether it is the job's root
        /// cause and whether a restart can heal it.
        failure: Option<FailureCause>,
    },
    /// A subtask snapshotted and uploaded its state for a checkpoint.
    AcknowledgeCheckpoint {
        /// The subtask.
        subtask: SubtaskId,
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// The state of each of its stateful operators.
        state: Vec<OperatorSubtaskState>,
        /// Time its inputs spent aligning, in milliseconds.
        alignment_ms: u64,
        /// Its input (or its source) had ended before the snapshot.
        ended: bool,
    },
    /// A subtask's input ended (in a job that checkpoints): it waits for the job's final
    /// checkpoint, which the JobManager triggers as soon as every subtask's input ended.
    InputEnded {
        /// The subtask.
        subtask: SubtaskId,
    },
    /// A subtask could not take part in a checkpoint.
    DeclineCheckpoint {
        /// The subtask.
        subtask: SubtaskId,
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Why.
        reason: String,
    },
}

impl TaskManagerMessage {
    /// Returns the subtask the message is about.
    pub fn subtask(&self) -> SubtaskId {
        match self {
            TaskManagerMessage::TaskState { subtask, .. }
            | TaskManagerMessage::AcknowledgeCheckpoint { subtask, .. }
            | TaskManagerMessage::InputEnded { subtask }
            | TaskManagerMessage::DeclineCheckpoint { subtask, .. } => *subtask,
        }
    }
}

/// A TaskManager as the JobManager sees it: its id, slots and data address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskManagerInfo {
    /// Its id.
    pub id: TaskManagerId,
    /// Number of task slots it offers.
    pub slots: u32,
    /// Its data-plane address.
    pub data_address: SocketAddr,
}

/// The JobManager's handle to send messages to one TaskManager.
pub trait TaskManagerGateway: Send + Sync {
    /// Sends a message; delivery failures are reported by the transport.
    fn send(&self, message: JobManagerMessage);
}

/// A TaskManager's handle to send messages to the JobManager.
pub trait JobManagerGateway: Send + Sync {
    /// Sends a message.
    fn send(&self, message: TaskManagerMessage);
}
