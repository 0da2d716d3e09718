//! The Weir JobManager: a dispatcher that starts one JobMaster per job, each owning its
//! job's execution, checkpoint coordinator, restart strategy and typed status; scheduling
//! subtasks into TaskManager slots; and the standalone cluster around them.
//!
//! It depends only on `weir-runtime`; TaskManagers are reached through
//! [`weir_runtime::control::TaskManagerGateway`]s.

mod checkpoint_coordinator;
pub mod checkpoint_io;
pub mod cluster;
mod dispatcher;
mod execution;
pub mod ha;
mod job_handle;
mod job_master;
mod restart;
mod savepoint_error;
mod savepoint_restore;
mod scheduler;

pub use checkpoint_coordinator::history::{
    CheckpointHistory, CheckpointState, CheckpointStats, RestoredCheckpoint, HISTORY_SIZE,
};
pub use checkpoint_coordinator::{
    CheckpointCoordinator, CompletedCheckpoint, CoordinatorAction, SavepointRequest, StoreOutcome,
};
pub use dispatcher::{CheckpointContinuation, Endpoints, JobManager, JobManagerError, Placement};
pub use execution::{Decision, JobExecution};
pub use job_handle::{JobHandle, JobOutcome, SavepointHandle, TriggerRequest};
pub use job_master::status::{
    transition, ExceptionEntry, IllegalTransition, JobSnapshot, SubtaskStatus,
    EXCEPTION_HISTORY_SIZE,
};
pub use job_master::PlacementProgress;
pub use restart::RestartPolicy;
pub use savepoint_error::SavepointError;
pub use scheduler::{schedule, ScheduleError};
