//! A JobMaster's side of its checkpoints and savepoints: it feeds the coordinator the
//! events that concern it and carries out what the coordinator decides.
//!
//! Invariant: the coordinator's actions are performed in the order it returned them, by
//! the JobMaster alone, so no other job waits on this job's checkpoint storage.

use super::event::refused;
use super::JobMaster;
use crate::{CheckpointCoordinator, CoordinatorAction, JobManagerError, SavepointError};
use crate::{SavepointHandle, SavepointRequest, TriggerRequest};
use std::time::Instant;
use tracing::{info, warn};
use weir_runtime::control::JobManagerMessage;
use weir_runtime::rpc::messages::JobStatus;
use weir_runtime::{FailureCause, FailureKind};

impl JobMaster {
    /// Runs `f` on the coordinator (if the job checkpoints), carries out its storage
    /// actions on the job's checkpoint storage, then the rest.
    pub(super) fn with_coordinator(
        &mut self,
        f: impl FnOnce(&mut CheckpointCoordinator) -> Vec<CoordinatorAction>,
    ) {
        if let Some((c, storage)) = self.checkpoints.as_mut() {
            let actions = f(c);
            let record = self.record.as_deref();
            let rest = crate::checkpoint_io::perform(c, storage, record, Instant::now(), actions);
            self.perform(rest);
        }
    }

    /// Triggers a checkpoint when one is due and every subtask runs.
    pub(super) fn on_tick(&mut self) {
        if self.status == JobStatus::Running
            && self.execution.can_checkpoint()
            && self.reserve_next_id()
        {
            self.with_coordinator(|c| c.tick(Instant::now(), weir_runtime::now_ms()));
        }
    }

    /// With high availability, reserves the coordinator's next checkpoint id in the
    /// record before it can be triggered (once per id, ahead of its trigger); returns
    /// whether it is reserved.
    fn reserve_next_id(&mut self) -> bool {
        let (Some(record), Some((c, _))) = (&self.record, &self.checkpoints) else {
            return true;
        };
        let next = c.next_id();
        if next < self.reserved {
            return true;
        }
        match record.reserve(self.id, next + 1) {
            Ok(()) => {
                self.reserved = next + 1;
                self.reserve_failed = false;
                true
            }
            Err(e) => {
                if !self.reserve_failed {
                    warn!(job_id = %self.id, checkpoint = next, error = %e, "cannot reserve the next checkpoint id; no checkpoint until it is");
                }
                self.reserve_failed = true;
                false
            }
        }
    }

    /// Carries out the coordinator's `actions` other than storage work.
    fn perform(&mut self, actions: Vec<CoordinatorAction>) {
        for a in actions {
            match a {
                CoordinatorAction::Trigger {
                    checkpoint,
                    timestamp_ms,
                    options,
                } => self.broadcast(JobManagerMessage::TriggerCheckpoint {
                    job: self.id,
                    checkpoint,
                    timestamp_ms,
                    options,
                }),
                CoordinatorAction::NotifyComplete { checkpoint, last } => {
                    if self.record.is_some() {
                        self.recorded = Some(checkpoint);
                    }
                    self.broadcast(JobManagerMessage::NotifyCheckpointComplete {
                        job: self.id,
                        checkpoint,
                        last,
                    })
                }
                CoordinatorAction::NotifyAborted { checkpoint } => {
                    self.broadcast(JobManagerMessage::NotifyCheckpointAborted {
                        job: self.id,
                        checkpoint,
                    })
                }
                CoordinatorAction::SavepointDone { request, result } => {
                    if let Some(tx) = self.savepoints.remove(&request) {
                        let _ = tx.send(result);
                    }
                }
                CoordinatorAction::Store { .. }
                | CoordinatorAction::Discard { .. }
                | CoordinatorAction::DeleteShared { .. }
                | CoordinatorAction::Retain
                | CoordinatorAction::DiscardIncomplete { .. } => {
                    unreachable!("storage actions are performed by checkpoint_io")
                }
                CoordinatorAction::FailJob { reason } => {
                    if matches!(self.status, JobStatus::Deploying | JobStatus::Running) {
                        warn!(job_id = %self.id, %reason, "failing job");
                        self.execution
                            .fail(FailureCause::job(FailureKind::Checkpoint, reason));
                        self.broadcast(JobManagerMessage::CancelJob {
                            job: self.id,
                            attempt: self.attempt,
                        });
                    }
                }
            }
        }
    }

    /// Queues the savepoint (into `state.savepoints.dir` unless the request names a
    /// target) or checkpoint of `request`.
    pub(super) fn on_savepoint(
        &mut self,
        request: TriggerRequest,
    ) -> Result<SavepointHandle, JobManagerError> {
        let id = self.id;
        if self.status.is_terminal() {
            return Err(JobManagerError::Ended {
                job: id,
                status: self.status.name(),
            });
        }
        let Some((c, _)) = self.checkpoints.as_mut() else {
            return Err(refused(id, SavepointError::NoCheckpointStorage));
        };
        let (target, stop, drain) = match request {
            TriggerRequest::Savepoint { target } => (Some(target), false, false),
            TriggerRequest::Stop { target, drain } => (Some(target), true, drain),
            TriggerRequest::Checkpoint => (None, false, false),
        };
        let target = match target {
            Some(target) => {
                let target = target
                    .or_else(|| c.savepoint_dir().map(str::to_string))
                    .ok_or_else(|| refused(id, SavepointError::NoDirectory))?;
                Some(weir_runtime::checkpoint::location_url(&target)?)
            }
            None => None,
        };
        let request = c
            .request_savepoint(SavepointRequest {
                target,
                stop,
                drain,
            })
            .map_err(|e| refused(id, e))?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.savepoints.insert(request, tx);
        Ok(SavepointHandle {
            job: id,
            request,
            rx,
        })
    }

    /// Withdraws savepoint request `request` if it was not triggered yet; returns whether
    /// it was.
    pub(super) fn on_withdraw(&mut self, request: u64) -> bool {
        let withdrawn = self
            .checkpoints
            .as_mut()
            .is_some_and(|(c, _)| c.withdraw(request));
        if withdrawn {
            self.savepoints.remove(&request);
            info!(job_id = %self.id, request, "savepoint request withdrawn");
        }
        withdrawn
    }
}
