//! The asynchronous part of a task's checkpoint: upload the snapshot, then acknowledge.
//!
//! The task snapshots its operators synchronously when the barrier passes, hands the owned
//! snapshot to its [`Uploader`], forwards the barrier and goes on processing. The
//! uploader's thread writes one state file per operator to checkpoint storage and sends
//! the JobManager an `AcknowledgeCheckpoint` with their handles, or a
//! `DeclineCheckpoint` naming what failed.
//!
//! Invariants: uploads of one task are written and acknowledged in checkpoint order;
//! dropping the uploader waits until every submitted upload was written and answered, so a
//! task that reports its end leaves no upload behind.

use super::snapshot::OperatorSnapshot;
use super::storage::CheckpointStorage;
use crate::config::CheckpointConfig;
use crate::control::{JobManagerGateway, OperatorSubtaskState, TaskManagerMessage};
use crate::types::{CheckpointId, SubtaskId};
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, warn};

struct Upload {
    checkpoint: CheckpointId,
    state: Vec<OperatorSnapshot>,
    alignment: Duration,
}

/// Uploads one task's checkpoint snapshots on a thread of its own.
pub struct Uploader {
    tx: Option<Sender<Upload>>,
    thread: Option<JoinHandle<()>>,
    subtask: SubtaskId,
    jobmanager: Arc<dyn JobManagerGateway>,
}

/// Returns the state file name of operator `uid` of `subtask`: readable, unique per uid
/// (a hash of the uid disambiguates names that sanitize alike), safe in any object store.
pub fn state_file_name(uid: &str, subtask: u16) -> String {
    let clean: String = uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let hash = weir_state_backends::key_hash(&uid) as u32;
    format!("{clean}-{hash:08x}-{subtask}")
}

impl Uploader {
    /// Starts the uploader of `subtask` (with the given parallelism and key groups) for
    /// checkpoints stored as `config` says.
    pub fn start(
        config: &CheckpointConfig,
        subtask: SubtaskId,
        parallelism: u16,
        max_parallelism: u16,
        jobmanager: Arc<dyn JobManagerGateway>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = crossbeam_channel::unbounded::<Upload>();
        let jm = jobmanager.clone();
        let url = config.dir.clone();
        let thread = std::thread::Builder::new()
            .name(format!("weir-upload-{}-{}", subtask.vertex, subtask.subtask))
            .spawn(move || {
                let storage = CheckpointStorage::open(&url).map_err(|e| e.to_string());
                for up in rx {
                    let result = match &storage {
                        Ok(s) => write(s, subtask, parallelism, max_parallelism, &up),
                        Err(e) => Err(e.clone()),
                    };
                    let message = match result {
                        Ok(state) => {
                            debug!(?subtask, checkpoint = up.checkpoint, files = state.len(), "checkpoint state uploaded");
                            TaskManagerMessage::AcknowledgeCheckpoint {
                                subtask,
                                checkpoint: up.checkpoint,
                                state,
                                alignment_ms: up.alignment.as_millis() as u64,
                            }
                        }
                        Err(reason) => {
                            warn!(?subtask, checkpoint = up.checkpoint, %reason, "checkpoint upload failed");
                            TaskManagerMessage::DeclineCheckpoint {
                                subtask,
                                checkpoint: up.checkpoint,
                                reason,
                            }
                        }
                    };
                    jm.send(message);
                }
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            subtask,
            jobmanager,
        })
    }

    /// Hands over the snapshot of `checkpoint`, taken after `alignment` of alignment.
    pub fn submit(
        &self,
        checkpoint: CheckpointId,
        state: Vec<OperatorSnapshot>,
        alignment: Duration,
    ) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Upload {
                checkpoint,
                state,
                alignment,
            });
        }
    }

    /// Tells the JobManager that this task cannot take part in `checkpoint`.
    pub fn decline(&self, checkpoint: CheckpointId, reason: &str) {
        self.jobmanager.send(TaskManagerMessage::DeclineCheckpoint {
            subtask: self.subtask,
            checkpoint,
            reason: reason.to_string(),
        });
    }
}

impl Drop for Uploader {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write(
    storage: &CheckpointStorage,
    subtask: SubtaskId,
    parallelism: u16,
    max_parallelism: u16,
    up: &Upload,
) -> Result<Vec<OperatorSubtaskState>, String> {
    up.state
        .iter()
        .map(|s| {
            let handle = storage
                .write_state(
                    subtask.job,
                    up.checkpoint,
                    &state_file_name(&s.uid, subtask.subtask),
                    subtask.subtask,
                    (s.key_groups.start, s.key_groups.end),
                    &s.bytes,
                )
                .map_err(|e| e.to_string())?;
            Ok(OperatorSubtaskState {
                uid: s.uid.clone(),
                parallelism,
                max_parallelism,
                handle,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_names_are_safe_and_distinct_for_uids_that_sanitize_alike() {
        let a = state_file_name("Keyed Reduce#3", 1);
        let b = state_file_name("Keyed_Reduce_3", 1);
        assert!(a.starts_with("Keyed_Reduce_3-") && a.ends_with("-1"), "{a}");
        assert_ne!(a, b);
        assert!(state_file_name("a/b\\c", 0)
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
