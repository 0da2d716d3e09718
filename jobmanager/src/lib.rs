//! The Weir JobManager: scheduling subtasks into TaskManager slots, following each job's
//! execution state, coordinating its checkpoints, and reporting its outcome.
//!
//! It depends only on `weir-runtime`; TaskManagers are reached through
//! [`weir_runtime::control::TaskManagerGateway`]s.

mod checkpoint_coordinator;
pub mod cluster;
mod dispatcher;
mod execution;
mod restart;
mod scheduler;

pub use checkpoint_coordinator::{
    CheckpointCoordinator, CompletedCheckpoint, CoordinatorAction, SavepointRequest,
};
pub use dispatcher::{
    Endpoints, JobHandle, JobManager, JobManagerError, JobOutcome, JobRunStatus, Placement,
    SavepointHandle,
};
pub use execution::{Decision, JobExecution};
pub use restart::RestartPolicy;
pub use scheduler::{schedule, ScheduleError};
