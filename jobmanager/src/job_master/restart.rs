//! Placement, deployment and failover of a JobMaster's runs.
//!
//! Invariants: a failure that restarting cannot heal ([`FailureKind::is_restartable`]) ends
//! the job at once; otherwise the restart strategy decides, and a run that cannot be placed
//! counts as one more failed run. A restart restores the latest usable checkpoint, or,
//! before the first one completes, the savepoint the job started from.

use super::event::JobEvent;
use super::JobMaster;
use crate::checkpoint_coordinator::history::RestoredCheckpoint;
use crate::cluster::ClusterError;
use crate::execution::JobExecution;
use crate::{schedule, Endpoints, JobManagerError, JobOutcome};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weir_runtime::control::{JobManagerMessage, RestoreSpec};
use weir_runtime::rpc::messages::JobStatus;
use weir_runtime::{CheckpointId, FailureCause, FailureKind};

/// What a [`crate::Placement`] may report while it waits.
pub struct PlacementProgress {
    attempt: u32,
    mailbox: tokio::sync::mpsc::UnboundedSender<JobEvent>,
}

impl PlacementProgress {
    /// The placement waits for `message` (slots, workers): shown as the job's message.
    pub fn waiting(&self, message: String) {
        let _ = self.mailbox.send(JobEvent::Waiting {
            attempt: self.attempt,
            message,
        });
    }
}

impl JobMaster {
    /// The current run ended with `failure`: restarts the job or ends it.
    pub(super) fn on_run_failed(&mut self, failure: FailureCause) {
        self.record_exception(&failure);
        let restart = if failure.kind.is_restartable() {
            self.restart.on_failure(Instant::now())
        } else {
            None
        };
        match restart {
            Some(delay) => {
                let cause = failure.to_string();
                warn!(job_id = %self.id, kind = failure.kind.name(), %cause, restart = self.restart.restarts(), delay_ms = delay.as_millis() as u64, "job failed; restarting");
                self.with_coordinator(|c| c.pause(&cause));
                self.message = Some(cause);
                self.schedule_restart(delay);
            }
            None => {
                let message = final_failure_message(&failure);
                self.end(JobOutcome::Failed { message });
            }
        }
    }

    /// Starts the next run after `delay`, on the runtime's timer.
    fn schedule_restart(&mut self, delay: Duration) {
        self.attempt += 1;
        self.set_status(JobStatus::Restarting);
        let mailbox = self.mailbox.clone();
        let attempt = self.attempt;
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = mailbox.send(JobEvent::RestartDue { attempt });
        });
    }

    pub(super) fn on_restart_due(&mut self, attempt: u32) {
        if attempt != self.attempt || self.status != JobStatus::Restarting {
            return;
        }
        if self.placement.is_some() {
            self.set_status(JobStatus::Scheduling);
            self.place();
        } else {
            // The same placement again.
            self.redeploy();
        }
    }

    /// Asks the placement for endpoints of the current run, on the blocking pool.
    pub(super) fn place(&mut self) {
        let Some(placement) = self.placement.clone() else {
            return;
        };
        let (id, attempt, mailbox) = (self.id, self.attempt, self.mailbox.clone());
        let progress = PlacementProgress {
            attempt,
            mailbox: mailbox.clone(),
        };
        self.runtime.spawn_blocking(move || {
            let result = placement.place(id, attempt, &progress);
            let _ = mailbox.send(JobEvent::Placed { attempt, result });
        });
    }

    pub(super) fn on_placed(&mut self, attempt: u32, result: Result<Endpoints, ClusterError>) {
        if attempt != self.attempt || self.status != JobStatus::Scheduling {
            if self.status.is_terminal() {
                // Placed after the job ended (cancelled meanwhile): release it again.
                if let Some(p) = &self.placement {
                    p.ended(self.id);
                }
            }
            return;
        }
        let scheduled = result.and_then(|endpoints| {
            let infos: Vec<_> = endpoints.iter().map(|(i, _)| i.clone()).collect();
            let deployments =
                schedule(self.id, &self.graph, &infos).map_err(JobManagerError::from)?;
            Ok((endpoints, deployments))
        });
        match scheduled {
            Ok((endpoints, deployments)) => {
                self.endpoints = endpoints;
                self.deployments = deployments;
                self.message = None;
                if self.attempt == 0 {
                    let restore = self.initial_restore.clone();
                    self.deploy(restore);
                } else {
                    self.redeploy();
                }
            }
            Err(e) if self.attempt == 0 => {
                let kind = match e {
                    ClusterError::Cancelled => FailureKind::Cancelled,
                    _ => FailureKind::Io,
                };
                self.fail(FailureCause::job(kind, e.to_string()));
            }
            Err(reason) => {
                // A failed placement is one more failed run: the restart strategy decides
                // whether to try again.
                match self.restart.on_failure(Instant::now()) {
                    Some(delay) => {
                        warn!(job_id = %self.id, %reason, restart = self.restart.restarts(), "cannot place the restarted job; restarting again");
                        self.message = Some(reason.to_string());
                        self.schedule_restart(delay);
                    }
                    None => {
                        let message = format!("cannot restart job {}: {reason}", self.id);
                        self.fail(FailureCause::job(FailureKind::Io, message));
                    }
                }
            }
        }
    }

    /// Deploys the current run again, restored from the latest usable checkpoint.
    fn redeploy(&mut self) {
        let restore = match self.restore_spec() {
            Ok(r) => r,
            Err(e) => {
                let message = format!("cannot restore job {}: {e}", self.id);
                return self.fail(FailureCause::job(FailureKind::RestoredState, message));
            }
        };
        self.restored_from
            .push(restore.as_ref().map(|r| r.metadata.checkpoint));
        info!(job_id = %self.id, attempt = self.attempt, checkpoint = restore.as_ref().map(|r| r.metadata.checkpoint), "restarting job");
        if let Some((c, _)) = self.checkpoints.as_mut() {
            c.resume();
        }
        self.deploy(restore);
    }

    /// Deploys every subtask of the current run, restored from `restore`.
    pub(super) fn deploy(&mut self, restore: Option<RestoreSpec>) {
        self.set_status(JobStatus::Deploying);
        self.message = None;
        self.run_started_ms = Some(weir_runtime::now_ms());
        if let (Some(r), Some((c, _))) = (&restore, self.checkpoints.as_mut()) {
            // Anything but one of this job's own checkpoints came from a savepoint.
            let own = weir_runtime::checkpoint::checkpoint_dir(self.id, r.metadata.checkpoint);
            let savepoint = r.dir != own;
            c.restored(RestoredCheckpoint {
                id: r.metadata.checkpoint,
                restore_timestamp_ms: weir_runtime::now_ms(),
                savepoint,
                external_path: weir_runtime::checkpoint::join_url(&r.storage, &r.dir),
            });
        }
        self.execution = JobExecution::new(
            self.deployments
                .iter()
                .map(|(_, d)| (d.subtask, d.name.clone())),
        );
        info!(job_id = %self.id, job = %self.graph.name, attempt = self.attempt, subtasks = self.deployments.len(), "deploying job");
        for (tm, d) in &mut self.deployments {
            d.attempt = self.attempt;
            d.restore = restore.clone();
            let message = JobManagerMessage::Deploy(Box::new(d.clone()));
            if let Some(gw) = self.endpoints.iter().find(|(i, _)| i.id == *tm) {
                gw.1.send(message);
            }
        }
        if let Some(p) = &self.placement {
            p.deployed(self.id);
        }
    }

    /// The latest usable checkpoint; before the first one completes (or when none is
    /// usable), the savepoint the job started from.
    fn restore_spec(&self) -> Result<Option<RestoreSpec>, weir_runtime::checkpoint::StorageError> {
        let Some((_, storage)) = self.checkpoints.as_ref() else {
            return Ok(self.initial_restore.clone());
        };
        // With high availability only what is recorded complete counts: a checkpoint an
        // earlier leader stored but could not record may have been discarded by a restore.
        let newest = match (&self.record, self.recorded) {
            (Some(_), None) => return Ok(self.initial_restore.clone()),
            (Some(_), Some(recorded)) => recorded,
            (None, _) => CheckpointId::MAX,
        };
        if storage.completed(self.id).unwrap_or_default().is_empty() {
            return Ok(self.initial_restore.clone());
        }
        match checkpoint_restore(storage, self.id, newest) {
            Ok(restore) => Ok(Some(restore)),
            Err(e) if self.initial_restore.is_some() => {
                warn!(job_id = %self.id, error = %e, "no usable checkpoint; restoring from the savepoint the job started from");
                Ok(self.initial_restore.clone())
            }
            Err(e) => Err(e),
        }
    }
}

/// Restores job `job` from its newest usable checkpoint in `storage` up to `newest`.
pub(crate) fn checkpoint_restore(
    storage: &weir_runtime::checkpoint::CheckpointStorage,
    job: weir_runtime::JobId,
    newest: CheckpointId,
) -> Result<RestoreSpec, weir_runtime::checkpoint::StorageError> {
    let metadata = storage.latest_usable_up_to(job, newest)?;
    Ok(RestoreSpec {
        storage: storage.url().to_string(),
        dir: weir_runtime::checkpoint::checkpoint_dir(job, metadata.checkpoint),
        metadata,
    })
}

/// Returns the message a job that ends with `failure` fails with: the cause, and for one
/// that restarting cannot heal, why the job did not restart.
pub(crate) fn final_failure_message(failure: &FailureCause) -> String {
    if failure.kind.is_restartable() || failure.kind == FailureKind::Cancelled {
        return failure.to_string();
    }
    format!(
        "{failure} (a {} failure: every run would fail the same way, so the job was not restarted)",
        failure.kind
    )
}
