//! The Weir runtime: job graphs, tasks and their loop, the typed operator output interface,
//! watermarks, the data exchange (in memory and over TCP) and the control messages between
//! JobManager and TaskManagers.
//!
//! Nothing here knows the user-facing API types: the API builds [`graph::JobGraph`]s whose
//! vertices carry [`invokable::InvokableFactory`]s, and the runtime drives the resulting
//! [`invokable::TaskInvokable`]s.

pub mod checkpoint;
pub mod config;
pub mod control;
pub mod element;
pub mod error;
pub mod exchange;
pub mod failure;
pub mod graph;
pub mod ha;
pub mod invokable;
pub mod logging;
pub mod metrics;
pub mod output;
pub mod reassembly;
pub mod rpc;
pub mod task;
pub mod types;

pub use config::{
    BufferDebloatConfig, CheckpointConfig, CheckpointingMode, ConfigError, JobConfig,
    RestartStrategy, SavepointRestoreSettings, Secret, TaskManagerConfig,
};
pub use error::{ExchangeError, TaskError};
pub use failure::{FailureCause, FailureKind};
pub use graph::{GraphError, JobEdge, JobGraph, JobVertex, Partitioning};
pub use invokable::{InvokableFactory, SourceStep, TaskInvokable, TaskSetup};
pub use output::{Lifecycle, Output};
pub use types::*;
