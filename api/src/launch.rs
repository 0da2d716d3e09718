//! How `execute` runs a job program, chosen by how the program was launched.
//!
//! - Run directly: on an embedded local mini-cluster (the caller goes on as usual).
//! - Launched by `weir run` with [`ENV_PLAN_FILE`] set: the program only builds its job
//!   graph, writes it (versioned and checksummed, without code) to that file and exits 0;
//!   `weir run` submits the graph with the program's executable as its artifact, as Flink's
//!   client extracts a program's plan.
//! - Launched by a TaskManager as a job worker (the variables of
//!   [`weir_taskmanager::worker`]): the program builds the same graph and runs the
//!   subtasks the JobManager deploys to it, then exits.
//!
//! Invariant: in the last two modes `execute` never returns; the process exits with 0 on
//! success and 1 (after printing the error) otherwise.

use crate::error::ApiError;
use weir_runtime::JobGraph;
use weir_taskmanager::worker::{run_worker, WorkerSettings};

pub use weir_runtime::rpc::messages::ENV_PLAN_FILE;

/// Runs the program as its launcher asked, if it was launched by `weir run` or a
/// TaskManager (then never returns); returns `Ok` to run on a local mini-cluster.
pub(crate) fn run_if_launched(
    graph: impl FnOnce() -> Result<JobGraph, ApiError>,
) -> Result<(), ApiError> {
    if let Ok(path) = std::env::var(ENV_PLAN_FILE) {
        let graph = graph()?;
        let bytes = graph
            .encode_plan()
            .map_err(|e| ApiError::InvalidGraph(format!("cannot encode the job graph: {e}")))?;
        if let Err(e) = std::fs::write(&path, bytes) {
            eprintln!("cannot write the job graph to {path}: {e}");
            std::process::exit(1);
        }
        std::process::exit(0);
    }
    let worker = WorkerSettings::from_env().map_err(|e| ApiError::Cluster(e.to_string()))?;
    if let Some(settings) = worker {
        let graph = graph()?;
        match run_worker(graph, &settings) {
            Ok(()) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    Ok(())
}
