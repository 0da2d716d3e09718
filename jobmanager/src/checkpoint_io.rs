//! The storage edge of checkpointing: carries out the storage actions the pure
//! [`CheckpointCoordinator`] returns, and feeds back the outcomes it needs.
//!
//! Invariants: actions are performed in the order they were returned, each follow-up after
//! the action that caused it; a failed deletion is logged and never undoes a completion (the
//! next completion or job end retries it); only the outcome of storing a checkpoint's
//! metadata, or of recording it complete (with high availability), can fail a checkpoint.

use crate::ha::CheckpointRecord;
use crate::{CheckpointCoordinator, CoordinatorAction, StoreOutcome};
use std::collections::VecDeque;
use std::time::Instant;
use tracing::warn;
use weir_runtime::checkpoint::{CheckpointMetadata, CheckpointStorage, SharedStateRegistry};
use weir_runtime::{CheckpointId, JobId};

/// Performs the storage actions among `actions` for coordinator `c` on `storage`, and
/// returns the others (messages to tasks, answers, job failures), in order.
pub fn perform(
    c: &mut CheckpointCoordinator,
    storage: &CheckpointStorage,
    record: Option<&dyn CheckpointRecord>,
    now: Instant,
    actions: Vec<CoordinatorAction>,
) -> Vec<CoordinatorAction> {
    let job = c.job();
    let mut queue: VecDeque<CoordinatorAction> = actions.into();
    let mut rest = Vec::new();
    while let Some(action) = queue.pop_front() {
        match action {
            CoordinatorAction::Store {
                metadata,
                savepoint,
                ..
            } => {
                let mut outcome = store(storage, &metadata, savepoint.as_deref());
                if let (StoreOutcome::Stored { .. }, Some(record)) = (&outcome, record) {
                    if let Err(e) = record.completed(job, metadata.checkpoint) {
                        outcome = StoreOutcome::MetadataFailed(format!(
                            "it cannot be recorded complete: {e}"
                        ));
                    }
                }
                queue.extend(c.stored(now, &metadata, outcome));
            }
            CoordinatorAction::Discard { checkpoint } => {
                if let Err(e) = storage.discard(job, checkpoint) {
                    warn!(job_id = %job, checkpoint, error = %e, "cannot delete a checkpoint that did not complete");
                }
            }
            CoordinatorAction::DeleteShared { checkpoint, paths } => {
                for path in paths {
                    if let Err(e) = storage.delete_file(&path) {
                        warn!(job_id = %job, checkpoint, path, error = %e, "cannot delete a shared state file");
                    }
                }
            }
            CoordinatorAction::Retain => match storage.retain(job, c.retained()) {
                Ok(deleted) => queue.extend(c.subsumed(deleted)),
                Err(e) => warn!(job_id = %job, error = %e, "cannot delete subsumed checkpoints"),
            },
            CoordinatorAction::DiscardIncomplete { before, keep } => {
                discard_incomplete(storage, job, before, &keep)
            }
            other => rest.push(other),
        }
    }
    rest
}

/// Writes `metadata` and, for a savepoint, copies the checkpoint into `savepoint` (before
/// retention can delete what it is copied from).
fn store(
    storage: &CheckpointStorage,
    metadata: &CheckpointMetadata,
    savepoint: Option<&str>,
) -> StoreOutcome {
    if let Err(e) = storage.write_metadata(metadata) {
        return StoreOutcome::MetadataFailed(e.to_string());
    }
    match savepoint.map(|target| storage.export_savepoint(metadata, target)) {
        None => StoreOutcome::Stored { savepoint: None },
        Some(Ok(url)) => StoreOutcome::Stored {
            savepoint: Some(url),
        },
        Some(Err(e)) => StoreOutcome::SavepointFailed(e.to_string()),
    }
}

/// Deletes every checkpoint directory of `job` without metadata, older than `before` and
/// not in `keep`.
fn discard_incomplete(
    storage: &CheckpointStorage,
    job: JobId,
    before: CheckpointId,
    keep: &[CheckpointId],
) {
    let result = storage.incomplete(job).and_then(|incomplete| {
        for id in incomplete {
            if id < before && !keep.contains(&id) {
                storage.discard(job, id)?;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        warn!(job_id = %job, error = %e, "cannot clean up checkpoint storage");
    }
}

/// Counts the shared files of the checkpoints of `job` retained in `storage` (from an
/// earlier run): they stay while a retained checkpoint references them.
pub fn registry(storage: &CheckpointStorage, job: JobId) -> SharedStateRegistry {
    let mut shared = SharedStateRegistry::default();
    for id in storage.completed(job).unwrap_or_default() {
        match storage.read_metadata(job, id) {
            Ok(m) => {
                shared.register(&m);
            }
            Err(e) => {
                warn!(job_id = %job, checkpoint = id, error = %e, "cannot read a retained checkpoint's shared files")
            }
        }
    }
    shared
}
