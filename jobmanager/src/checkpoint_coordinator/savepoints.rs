//! Savepoint requests of the coordinator: queued until no checkpoint is pending, answered
//! exactly once (unless withdrawn before their trigger), and for a stop-with-savepoint
//! answered only when the job has ended.

use super::{CheckpointCoordinator, CoordinatorAction, Pending, SavepointRequest};
use crate::SavepointError;
use tracing::{info, warn};
use weir_runtime::CheckpointId;

impl CheckpointCoordinator {
    /// Queues a savepoint into `request.target` (or, without a target, a checkpoint); it is
    /// triggered as soon as no checkpoint is pending. Returns the request's id, which its
    /// answer ([`CoordinatorAction::SavepointDone`]) carries.
    pub fn request_savepoint(&mut self, request: SavepointRequest) -> Result<u64, SavepointError> {
        if self.stopping.is_some() {
            return Err(SavepointError::AlreadyStopping);
        }
        if self.finished {
            return Err(SavepointError::TaskFinished);
        }
        let id = self.next_request;
        self.next_request += 1;
        self.queued.push_back((id, request));
        Ok(id)
    }

    /// The job restarts after `failure`: pending checkpoints are dropped (without counting
    /// as failures; pending savepoints are answered as failed) and none is triggered until
    /// [`Self::resume`]. Queued savepoint requests wait for the restarted job. A job that
    /// was stopping with a completed savepoint runs again, and the stop is answered as
    /// failed (the savepoint itself stays usable).
    pub fn pause(&mut self, failure: &str) -> Vec<CoordinatorAction> {
        self.stopped = true;
        let mut actions = self.ended(Some(&format!("{failure}; the job restarts")));
        actions.extend(self.drop_pending("the job restarted"));
        actions
    }

    /// The job ended, `Finished` (`failure` is `None`) or failed: answers a
    /// stop-with-savepoint whose savepoint completed, with its URL if the job finished.
    pub fn ended(&mut self, failure: Option<&str>) -> Vec<CoordinatorAction> {
        let Some((request, url)) = self.stopping.take() else {
            return Vec::new();
        };
        let result = match failure {
            None => Ok(url),
            Some(failure) => {
                warn!(job_id = %self.job, savepoint = %url, failure, "the job failed while stopping with a savepoint");
                Err(SavepointError::FailedWhileStopping {
                    url,
                    failure: failure.to_string(),
                })
            }
        };
        vec![CoordinatorAction::SavepointDone { request, result }]
    }

    /// Withdraws savepoint request `request` if it was not triggered yet (it is then not
    /// answered); returns whether it was.
    pub fn withdraw(&mut self, request: u64) -> bool {
        let before = self.queued.len();
        self.queued.retain(|(r, _)| *r != request);
        self.queued.len() != before
    }

    pub(super) fn fail_queued(&mut self, error: SavepointError) -> Vec<CoordinatorAction> {
        self.queued
            .drain(..)
            .map(|(request, _)| CoordinatorAction::SavepointDone {
                request,
                result: Err(error.clone()),
            })
            .collect()
    }

    /// The savepoint of `p`, if it has one, was copied to `url`: returns its answer now, or
    /// keeps a stop's answer until the job has ended.
    pub(super) fn savepoint_stored(
        &mut self,
        checkpoint: CheckpointId,
        p: &Pending,
        url: Option<String>,
    ) -> Option<CoordinatorAction> {
        let (request, savepoint) = p.savepoint.as_ref()?;
        if savepoint.target.is_none() {
            // A checkpoint asked for: answered with where it is.
            return Some(CoordinatorAction::SavepointDone {
                request: *request,
                result: Ok(self.location(checkpoint)),
            });
        }
        let url = url?;
        info!(job_id = %self.job, checkpoint, path = %url, stop = savepoint.stop, "savepoint complete");
        if savepoint.stop {
            // Answered once the job has ended (see `ended`).
            self.stopping = Some((*request, url));
            self.stopped = true;
            None
        } else {
            Some(CoordinatorAction::SavepointDone {
                request: *request,
                result: Ok(url),
            })
        }
    }
}

/// The answer to savepoint `request`, whose checkpoint `checkpoint` failed for `reason`;
/// tasks waiting for a failed stop-with-savepoint resume, unless it drained (the job then
/// fails over, as its sources already ended event time; `running` is false when it fails
/// over anyway).
pub(super) fn savepoint_failed(
    request: u64,
    savepoint: &SavepointRequest,
    checkpoint: CheckpointId,
    reason: &str,
    running: bool,
) -> Vec<CoordinatorAction> {
    let mut actions = vec![CoordinatorAction::SavepointDone {
        request,
        result: Err(SavepointError::Failed {
            checkpoint,
            reason: reason.to_string(),
        }),
    }];
    if savepoint.stop && savepoint.drain && running {
        // The sources emitted the final watermark: resuming would drop every later record
        // as late. The job restarts from its latest checkpoint instead.
        actions.push(CoordinatorAction::FailJob {
            reason: format!(
                "the drained stop-with-savepoint {checkpoint} failed ({reason}) after the final watermark; the job restarts from its latest checkpoint"
            ),
        });
    } else if savepoint.stop {
        actions.push(CoordinatorAction::NotifyAborted { checkpoint });
    }
    actions
}
