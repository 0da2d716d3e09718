//! A new leader takes over (high availability): it recovers every job an earlier leader
//! accepted that has not ended, under the same id and from its latest recorded
//! checkpoint, and records each job's end so that no later leader runs it again.
//!
//! Invariants: recovery runs once, before this leader publishes its address (no client
//! sees it without its jobs); a job that cannot be recovered (its stored submission or
//! its artifact is unreadable) is recorded as failed, naming why, never silently dropped;
//! a job's end is recorded by a fenced write, so a deposed leader records nothing.

use super::{Cluster, ClusterError};
use crate::ha::{HaServices, StoredJob};
use crate::CheckpointContinuation;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};
use weir_runtime::ha::HaError;
use weir_runtime::rpc::messages::{JobStatus, JobSummary};
use weir_runtime::JobId;

/// How often recording a job's end is tried before it is left to the next leader.
const RECORD_ATTEMPTS: u32 = 5;

impl Cluster {
    /// Recovers the jobs of earlier leaders and loads the results of those that ended;
    /// returns how many jobs were recovered. Does nothing without high availability.
    pub fn recover(&self) -> Result<usize, HaError> {
        let Some(ha) = self.ha.clone() else {
            return Ok(0);
        };
        let results = ha.job_results()?;
        self.lock().results = results.into_iter().map(|r| (r.id, r)).collect();
        let mut recovered = 0;
        for (id, stored) in ha.recover_jobs()? {
            let outcome = match stored {
                Ok(job) => self.recover_job(&ha, job),
                Err(e) => Err(ClusterError::HighAvailability(e)),
            };
            match outcome {
                Ok(()) => recovered += 1,
                Err(e) => self.unrecoverable(&ha, id, &e),
            }
        }
        info!(jobs = recovered, epoch = ha.epoch(), "jobs recovered");
        Ok(recovered)
    }

    /// Starts stored job `job` again, continuing its checkpoints.
    fn recover_job(&self, ha: &Arc<HaServices>, job: StoredJob) -> Result<(), ClusterError> {
        if !self.artifacts.contains(&job.submission.artifact) {
            return Err(ClusterError::MissingArtifact(job.submission.artifact));
        }
        let (next_id, latest) = ha.checkpoint_progress(job.id)?;
        info!(job_id = %job.id, job = %job.submission.graph.name, next_checkpoint = next_id, latest_checkpoint = latest, "recovering job");
        let continuation = CheckpointContinuation {
            record: ha.clone(),
            next_id,
            latest,
        };
        let fingerprint = job.submission.graph.fingerprint();
        self.start_job(job.id, job.submission, fingerprint, Some(continuation))
    }

    /// Records job `id`, which cannot be recovered because of `why`, as failed.
    fn unrecoverable(&self, ha: &HaServices, id: JobId, why: &ClusterError) {
        error!(job_id = %id, error = %why, "cannot recover job");
        let summary = JobSummary {
            id,
            name: String::new(),
            status: JobStatus::Failed,
            slots: 0,
            subtasks: 0,
            restarts: 0,
            submitted_ms: weir_runtime::now_ms(),
            ended_ms: Some(weir_runtime::now_ms()),
            taskmanagers: Vec::new(),
            message: Some(format!(
                "cannot recover the job after a leader change: {why}"
            )),
            last_checkpoint: None,
        };
        if let Err(e) = ha.job_ended(&summary) {
            warn!(job_id = %id, error = %e, "cannot record an unrecoverable job as failed");
        }
        self.lock().results.insert(id, summary);
    }

    /// Records that job `id` ended (with high availability): no later leader runs it
    /// again, and its result stays readable.
    pub(super) fn record_end(&self, id: JobId) {
        let Some(ha) = &self.ha else {
            return;
        };
        let Some(summary) = self.summary(id).filter(|s| s.status.is_terminal()) else {
            return;
        };
        for attempt in 1..=RECORD_ATTEMPTS {
            match ha.job_ended(&summary) {
                Ok(()) => return,
                Err(e @ HaError::NotLeader { .. }) => {
                    warn!(job_id = %id, error = %e, "a deposed leader does not record a job's end");
                    return;
                }
                Err(e) => {
                    warn!(job_id = %id, attempt, error = %e, "cannot record the end of a job");
                    std::thread::sleep(Duration::from_millis(200) * attempt);
                }
            }
        }
        error!(job_id = %id, "the end of the job is not recorded: a later leader would recover it");
    }

    /// How job `id` ended under an earlier leader, if it did.
    pub(super) fn result(&self, id: JobId) -> Option<JobSummary> {
        self.lock().results.get(&id).cloned()
    }

    /// The jobs that ended under earlier leaders.
    pub(super) fn results(&self) -> Vec<JobSummary> {
        let mut all: Vec<JobSummary> = self.lock().results.values().cloned().collect();
        all.sort_by_key(|r| (r.submitted_ms, r.id.0));
        all
    }
}
