//! The Weir TaskManager: offers slots, runs deployed subtasks in their own threads, serves
//! the data plane for its subtasks' input gates, and reports every state change to the
//! JobManager.
//!
//! It depends only on `weir-runtime`; the JobManager is reached through a
//! [`weir_runtime::control::JobManagerGateway`]. Job code comes from a program registry:
//! a process that built a job graph registers it here before the job is deployed.

mod taskmanager;

pub use taskmanager::TaskManager;
