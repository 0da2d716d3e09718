//! The Weir JobManager: scheduling subtasks into TaskManager slots, following each job's
//! execution state, and reporting its outcome.
//!
//! It depends only on `weir-runtime`; TaskManagers are reached through
//! [`weir_runtime::control::TaskManagerGateway`]s.

mod dispatcher;
mod execution;
mod scheduler;

pub use dispatcher::{JobHandle, JobManager, JobManagerError, JobOutcome};
pub use execution::{Decision, JobExecution};
pub use scheduler::{schedule, ScheduleError};
