//! A handle to a job running on its local mini-cluster, as Flink's `JobClient`: take a
//! savepoint, stop with a savepoint, cancel, or wait for the result.
//!
//! The client owns the mini-cluster; dropping it cancels whatever still runs.

use crate::environment::JobExecutionResult;
use crate::error::ApiError;
use crate::minicluster::{wait_for, LocalMiniCluster};
use std::time::Duration;
use weir_jobmanager::{JobHandle, JobManagerError};
use weir_runtime::JobId;

/// A running job and the mini-cluster it runs on.
pub struct JobClient {
    cluster: LocalMiniCluster,
    id: JobId,
    name: String,
    handle: JobHandle,
    /// The longest a savepoint may take to be answered: a checkpoint in progress may
    /// finish first, then the savepoint's own checkpoint; each within the checkpoint
    /// timeout.
    savepoint_wait: Duration,
}

impl JobClient {
    pub(crate) fn new(
        cluster: LocalMiniCluster,
        id: JobId,
        name: String,
        handle: JobHandle,
        savepoint_wait: Duration,
    ) -> Self {
        Self {
            cluster,
            id,
            name,
            handle,
            savepoint_wait,
        }
    }

    /// Returns the job's id.
    pub fn job_id(&self) -> JobId {
        self.id
    }

    /// Returns the mini-cluster the job runs on.
    pub fn cluster(&self) -> &LocalMiniCluster {
        &self.cluster
    }

    /// Takes a savepoint into `dir` (a URL or a path; `None`: `state.savepoints.dir`) and
    /// returns its URL once it is complete. The job goes on running. A request still
    /// unanswered after twice the checkpoint timeout is withdrawn if it has not started,
    /// and the error says so; one already started may still complete.
    pub fn trigger_savepoint(&self, dir: Option<&str>) -> Result<String, ApiError> {
        self.savepoint(dir, false)
    }

    /// Takes a savepoint into `dir` and stops the job once it is complete: sources emit
    /// nothing after its barrier, transactional sinks commit what it covers, and the job
    /// finishes without ending its input (open windows are not fired; their state is in
    /// the savepoint). Returns the savepoint's URL once the job has finished;
    /// [`Self::wait`] then returns the job's result. If the savepoint fails the job goes on
    /// running; if it completed but the job then failed while stopping (a sink's commit
    /// failed), the error names the savepoint, which is usable, and the job restarts
    /// from its latest checkpoint as after any failure.
    pub fn stop_with_savepoint(&self, dir: Option<&str>) -> Result<String, ApiError> {
        self.savepoint(dir, true)
    }

    fn savepoint(&self, dir: Option<&str>, stop: bool) -> Result<String, ApiError> {
        let failed = |e: JobManagerError| ApiError::Savepoint(e.to_string());
        let handle = self
            .cluster
            .jobmanager()
            .trigger_savepoint(self.id, dir, stop)
            .map_err(failed)?;
        if let Some(answer) = handle.wait(self.savepoint_wait) {
            return answer.map_err(failed);
        }
        let what = if self.cluster.jobmanager().withdraw_savepoint(&handle) {
            "not started; the request is withdrawn"
        } else {
            "still in progress; it may yet complete"
        };
        Err(ApiError::Savepoint(format!(
            "savepoint of job {} not answered within {:?}: {what}",
            self.id, self.savepoint_wait
        )))
    }

    /// Cancels the job; [`Self::wait`] then reports it failed as cancelled.
    pub fn cancel(&self) -> Result<(), ApiError> {
        self.cluster
            .jobmanager()
            .cancel(self.id)
            .map_err(|e| ApiError::Cluster(e.to_string()))
    }

    /// Waits up to `timeout` for the job to end: its result, or `None` while it runs (the
    /// result is returned once; later calls wait for nothing).
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<JobExecutionResult, ApiError>> {
        crate::minicluster::outcome(self.id, &self.name, self.handle.wait(timeout)?).into()
    }

    /// Waits for the job to end and returns its result.
    pub fn wait(self) -> Result<JobExecutionResult, ApiError> {
        wait_for(self.id, &self.name, &self.handle)
    }
}
