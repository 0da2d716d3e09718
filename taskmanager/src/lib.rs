//! The Weir TaskManager: offers slots, runs deployed subtasks in their own threads, serves
//! the data plane for its subtasks' input gates, and reports every state change to the
//! JobManager.
//!
//! It depends only on `weir-runtime`; the JobManager is reached through a
//! [`weir_runtime::control::JobManagerGateway`]. Job code comes from a program registry:
//! a process that built a job graph registers it here before the job is deployed.
//!
//! In a standalone cluster, [`daemon`] is the TaskManager process (slots, heartbeats,
//! artifacts, worker supervision) and [`worker`] the job worker process that runs a
//! [`TaskManager`] for one job's subtasks.

mod artifact_cache;
pub mod daemon;
mod leader_follower;
mod taskmanager;
pub mod worker;
mod worker_output;

pub use taskmanager::TaskManager;
