//! How checkpoints fail: declined by a task, timed out, subsumed, dropped by a restart.
//! Each is recorded failed in the history and its files deleted, with those of older
//! checkpoints that failed before and got files afterwards (an upload that outlived its
//! checkpoint); its savepoint request is answered, or it counts against
//! `execution.checkpointing.tolerable-failed-checkpoints`.

use super::savepoints::savepoint_failed;
use super::{CheckpointCoordinator, CoordinatorAction, Pending};
use tracing::warn;
use weir_runtime::{CheckpointId, SubtaskId};

impl CheckpointCoordinator {
    /// A subtask declined `checkpoint`: it is aborted.
    pub fn decline(
        &mut self,
        subtask: SubtaskId,
        checkpoint: CheckpointId,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        self.abort(
            checkpoint,
            &format!(
                "declined by subtask {} of vertex {}: {reason}",
                subtask.subtask, subtask.vertex
            ),
        )
    }

    pub(super) fn abort(
        &mut self,
        checkpoint: CheckpointId,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        match self.pending.remove(&checkpoint) {
            Some(p) => self.abort_removed(checkpoint, p, reason),
            None => Vec::new(),
        }
    }

    /// Aborts `checkpoint`, already removed from the pending ones: deletes its files and
    /// answers its savepoint, or counts it as a failed checkpoint.
    pub(super) fn abort_removed(
        &mut self,
        checkpoint: CheckpointId,
        p: Pending,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        self.history.failed(checkpoint, reason);
        let mut actions = vec![CoordinatorAction::Discard { checkpoint }];
        actions.extend(self.delete_unreferenced(checkpoint, &p.state));
        actions.push(self.discard_incomplete(checkpoint));
        actions.extend(match p.savepoint {
            // A failed savepoint is answered, and the job goes on.
            Some((request, savepoint)) => {
                warn!(job_id = %self.job, checkpoint, reason, "savepoint aborted");
                savepoint_failed(request, &savepoint, checkpoint, reason, true)
            }
            None => self.failed(checkpoint, reason),
        });
        actions
    }

    pub(super) fn failed(
        &mut self,
        checkpoint: CheckpointId,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        self.failures_in_a_row += 1;
        warn!(job_id = %self.job, checkpoint, reason, failures_in_a_row = self.failures_in_a_row, "checkpoint aborted");
        if self.failures_in_a_row > self.config.tolerable_failures {
            vec![CoordinatorAction::FailJob {
                reason: format!(
                    "checkpoint {checkpoint} failed ({reason}); {} checkpoint failure(s) in a row exceed the {} tolerated (execution.checkpointing.tolerable-failed-checkpoints)",
                    self.failures_in_a_row, self.config.tolerable_failures
                ),
            }]
        } else {
            Vec::new()
        }
    }

    pub(super) fn drop_pending(&mut self, reason: &str) -> Vec<CoordinatorAction> {
        let mut actions = Vec::new();
        let mut newest = None;
        for (id, p) in std::mem::take(&mut self.pending) {
            self.history.failed(id, reason);
            actions.push(CoordinatorAction::Discard { checkpoint: id });
            actions.extend(self.delete_unreferenced(id, &p.state));
            if let Some((request, savepoint)) = p.savepoint {
                actions.extend(savepoint_failed(request, &savepoint, id, reason, false));
            }
            newest = Some(id);
        }
        if let Some(id) = newest {
            actions.push(self.discard_incomplete(id));
        }
        actions
    }

    /// The deletion of every incomplete checkpoint older than `before` that is not in
    /// flight: an upload that ended after its checkpoint was aborted left files there.
    pub(super) fn discard_incomplete(&self, before: CheckpointId) -> CoordinatorAction {
        CoordinatorAction::DiscardIncomplete {
            before,
            keep: self
                .pending
                .keys()
                .chain(self.storing.keys())
                .copied()
                .collect(),
        }
    }
}
