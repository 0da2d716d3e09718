//! The embedded local mini-cluster: one JobManager and N TaskManagers in this process.
//!
//! TaskManagers exchange data over real loopback TCP (each has its own data server on
//! `127.0.0.1`); control messages go through in-process gateways. Dropping the cluster
//! cancels and joins everything it started.

use crate::environment::JobExecutionResult;
use crate::error::ApiError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::info;
use weir_jobmanager::{JobHandle, JobManager, JobManagerError, JobOutcome};
use weir_runtime::control::JobManagerGateway;
use weir_runtime::{JobGraph, JobId, TaskManagerConfig};
use weir_taskmanager::TaskManager;

static JOB_COUNTER: AtomicU64 = AtomicU64::new(1);

/// A JobManager and its TaskManagers in this process.
pub struct LocalMiniCluster {
    jobmanager: Arc<JobManager>,
    taskmanagers: Vec<TaskManager>,
}

impl LocalMiniCluster {
    /// Starts `taskmanagers` TaskManagers with `slots` slots each.
    pub fn start(taskmanagers: u32, slots: u32) -> Result<Self, ApiError> {
        Self::start_with_config(taskmanagers, slots, &TaskManagerConfig::default())
    }

    /// Starts `taskmanagers` TaskManagers with `slots` slots each and `config`.
    pub fn start_with_config(
        taskmanagers: u32,
        slots: u32,
        config: &TaskManagerConfig,
    ) -> Result<Self, ApiError> {
        let jobmanager = Arc::new(JobManager::new());
        let gateway: Arc<dyn JobManagerGateway> = jobmanager.clone();
        let mut tms = Vec::new();
        for id in 0..taskmanagers {
            let tm = TaskManager::start_with_config(
                id,
                slots,
                "127.0.0.1:0".parse().expect("loopback"),
                gateway.clone(),
                config,
            )
            .map_err(|e| ApiError::Cluster(format!("cannot start taskmanager {id}: {e}")))?;
            jobmanager.register_taskmanager(tm.info(), tm.gateway());
            tms.push(tm);
        }
        info!(taskmanagers, slots, "local mini-cluster started");
        Ok(Self {
            jobmanager,
            taskmanagers: tms,
        })
    }

    /// Returns the metric registries of the TaskManagers, in TaskManager order.
    pub fn metrics(&self) -> Vec<Arc<weir_runtime::metrics::MetricRegistry>> {
        self.taskmanagers.iter().map(TaskManager::metrics).collect()
    }

    /// Returns `(buffers reserved, pool size)` of each TaskManager's network buffer pool.
    pub fn network_buffers(&self) -> Vec<(usize, usize)> {
        self.taskmanagers
            .iter()
            .map(TaskManager::network_buffers)
            .collect()
    }

    /// Returns the number of subtask threads still running on the TaskManagers.
    pub fn running_tasks(&self) -> usize {
        self.taskmanagers.iter().map(TaskManager::task_count).sum()
    }

    /// Runs `graph` to its end.
    pub fn run(&self, graph: JobGraph) -> Result<JobExecutionResult, ApiError> {
        let (id, name, handle) = self.submit(graph)?;
        wait_for(id, &name, &handle)
    }

    /// Submits `graph` and returns at once with its id, name and handle.
    pub(crate) fn submit(&self, graph: JobGraph) -> Result<(JobId, String, JobHandle), ApiError> {
        let name = graph.name.clone();
        let seq = JOB_COUNTER.fetch_add(1, Ordering::Relaxed);
        // The clock too: processes in different containers may share a pid (and sinks
        // name their outside transactions after the job id).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = JobId(weir_state_backends::key_hash(&(
            name.as_str(),
            std::process::id(),
            seq,
            now,
        )));
        let graph = Arc::new(graph);
        for tm in &self.taskmanagers {
            tm.register_program(id, graph.clone());
        }
        let handle = self.jobmanager.submit(id, &graph).map_err(|e| match e {
            e @ JobManagerError::Savepoint { .. } => ApiError::Savepoint(e.to_string()),
            e => ApiError::InvalidGraph(e.to_string()),
        })?;
        Ok((id, name, handle))
    }

    /// Returns the cluster's JobManager.
    pub fn jobmanager(&self) -> &Arc<JobManager> {
        &self.jobmanager
    }
}

/// Waits for job `id` to end and turns its outcome into a result.
pub(crate) fn wait_for(
    id: JobId,
    name: &str,
    handle: &JobHandle,
) -> Result<JobExecutionResult, ApiError> {
    loop {
        if let Some(o) = handle.wait(Duration::from_secs(1)) {
            return outcome(id, name, o);
        }
    }
}

/// Turns the outcome of job `id` into a result.
pub(crate) fn outcome(
    id: JobId,
    name: &str,
    outcome: JobOutcome,
) -> Result<JobExecutionResult, ApiError> {
    match outcome {
        JobOutcome::Finished {
            duration,
            checkpoints,
            restored_from,
        } => Ok(JobExecutionResult {
            job_id: id,
            job_name: name.to_string(),
            net_runtime: duration,
            checkpoints,
            restored_from,
        }),
        JobOutcome::Failed { message } => Err(ApiError::JobFailed {
            job: name.to_string(),
            message,
        }),
    }
}
