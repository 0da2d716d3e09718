//! The asynchronous part of a task's checkpoint: upload the snapshot, then acknowledge.
//!
//! The task snapshots its operators synchronously when the barrier passes, hands the owned
//! snapshot to its [`Uploader`], forwards the barrier and goes on processing. The
//! uploader's thread writes one state file per operator to checkpoint storage and sends
//! the JobManager an `AcknowledgeCheckpoint` with their handles, or a
//! `DeclineCheckpoint` naming what failed.
//!
//! A full snapshot of RocksDB is streamed from its local checkpoint into the operator's
//! state file, one key group in memory at a time.
//!
//! A native (incremental RocksDB) snapshot is uploaded file by file: SST files a
//! completed checkpoint already stored are referenced, new ones are stored once under the
//! job's `shared/` directory with a name unique to (database instance, checkpoint, file),
//! and the small descriptor files go into the operator's state file.
//!
//! Invariants: uploads of one task are written and acknowledged in checkpoint order;
//! dropping the uploader waits until every submitted upload was written and answered, so a
//! task that reports its end leaves no upload behind; a native snapshot's receipt is
//! recorded before the acknowledgement is sent.

use super::snapshot::{
    KeyedOperatorState, KeyedStateData, OperatorSnapshot, StreamedOperatorState,
};
use super::storage::{CheckpointStorage, StorageError};
use crate::config::CheckpointConfig;
use crate::control::{JobManagerGateway, OperatorSubtaskState, TaskManagerMessage};
use crate::error::TaskError;
use crate::types::{CheckpointId, SubtaskId};
use crossbeam_channel::Sender;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;
use tracing::{debug, warn};
use weir_state_backends::SharedStateFile;

/// Why the state of a checkpoint could not be uploaded (the checkpoint is declined).
#[derive(Debug, Error)]
enum UploadError {
    /// Writing a state file or a shared file to checkpoint storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A file of a native snapshot could not be read from local disk.
    #[error("cannot read {} of the snapshot of '{uid}': {source}", path.display())]
    ReadLocal {
        /// The local file.
        path: PathBuf,
        /// The operator's uid.
        uid: String,
        /// The read error.
        source: std::io::Error,
    },
    /// The operator's state could not be encoded.
    #[error(transparent)]
    Encode(#[from] TaskError),
}

struct Upload {
    checkpoint: CheckpointId,
    state: Vec<OperatorSnapshot>,
    alignment: Duration,
    ended: bool,
}

/// Uploads one task's checkpoint snapshots on a thread of its own.
pub struct Uploader {
    tx: Option<Sender<Upload>>,
    thread: Option<JoinHandle<()>>,
    subtask: SubtaskId,
    jobmanager: Arc<dyn JobManagerGateway>,
}

/// The name of a shared file uploaded for `checkpoint`: the state file name of its
/// operator subtask, the database instance and the file's local name. One local file
/// uploaded for two checkpoints (a snapshot taken before the task learnt the earlier one
/// completed) gets two names that differ only in the checkpoint; [`shared_file_key`] is
/// what they have in common.
fn shared_file_name(state_file: &str, instance: u64, checkpoint: u64, local: &str) -> String {
    format!("{state_file}-{instance:016x}-{checkpoint}-{local}")
}

/// The identity of the local file a shared file holds, whichever checkpoint uploaded it:
/// its path without the checkpoint (`None` for a path not named by this uploader).
pub fn shared_file_key(file: &SharedStateFile) -> Option<String> {
    let (dir, name) = file.path.rsplit_once('/').unwrap_or(("", &file.path));
    let rest = name.strip_suffix(file.local.as_str())?.strip_suffix('-')?;
    let (prefix, checkpoint) = rest.rsplit_once('-')?;
    checkpoint.parse::<u64>().ok()?;
    Some(format!("{dir}/{prefix}-{}", file.local))
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
                        Ok(s) => write(s, subtask, parallelism, max_parallelism, &up)
                            .map_err(|e| e.to_string()),
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
                                ended: up.ended,
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

    /// Hands over the snapshot of `checkpoint`, taken after `alignment` of alignment;
    /// `ended`: the task's input had ended before it.
    pub fn submit(
        &self,
        checkpoint: CheckpointId,
        state: Vec<OperatorSnapshot>,
        alignment: Duration,
        ended: bool,
    ) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Upload {
                checkpoint,
                state,
                alignment,
                ended,
            });
        }
    }

    /// Tells the JobManager that this task's input ended.
    pub fn input_ended(&self) {
        self.jobmanager.send(TaskManagerMessage::InputEnded {
            subtask: self.subtask,
        });
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
) -> Result<Vec<OperatorSubtaskState>, UploadError> {
    up.state
        .iter()
        .map(|s| {
            let file = state_file_name(&s.uid, subtask.subtask);
            let (native_bytes, shared) = match &s.native {
                Some((local, timers)) => {
                    let (bytes, shared) =
                        upload_native(storage, subtask, up.checkpoint, &s.uid, local, timers)?;
                    (Some(bytes), shared)
                }
                None => (None, Vec::new()),
            };
            let key_groups = (s.key_groups.start, s.key_groups.end);
            let mut handle = match &s.streamed {
                Some((full, timers)) => {
                    let at = (subtask.job, up.checkpoint);
                    write_streamed(
                        storage,
                        at,
                        (&file, subtask.subtask),
                        key_groups,
                        &s.uid,
                        full,
                        timers.as_ref(),
                    )?
                }
                None => storage.write_state(
                    subtask.job,
                    up.checkpoint,
                    &file,
                    subtask.subtask,
                    key_groups,
                    native_bytes.as_deref().unwrap_or(&s.bytes),
                )?,
            };
            if let Some((local, _)) = &s.native {
                local.record_upload(shared.clone());
            }
            handle.shared = shared;
            Ok(OperatorSubtaskState {
                uid: s.uid.clone(),
                parallelism,
                max_parallelism,
                handle,
            })
        })
        .collect()
}

/// Streams the full snapshot `full` of operator `uid` (with `timers` taken beside it)
/// into its state file `file` of subtask `index`.
fn write_streamed(
    storage: &CheckpointStorage,
    at: (crate::types::JobId, CheckpointId),
    (file, index): (&str, u16),
    key_groups: (u16, u16),
    uid: &str,
    full: &weir_state_backends::LocalFullSnapshot,
    timers: Option<&weir_state_backends::TimerSnapshot>,
) -> Result<crate::checkpoint::SubtaskStateHandle, UploadError> {
    let unreadable = |e: weir_state_backends::StateError| {
        UploadError::Encode(TaskError::Checkpoint(format!(
            "cannot read the snapshot of '{uid}': {e}"
        )))
    };
    let reader = full.open().map_err(unreadable)?;
    let state = StreamedOperatorState::new(&reader, timers);
    let written =
        storage.write_state_streamed(at, file, index, key_groups, &state, full.spool_path());
    // A read error ends the encoding: it is the cause to report.
    if let Some(e) = reader.take_error() {
        return Err(unreadable(e));
    }
    Ok(written?)
}

/// Uploads the native snapshot `local` of operator `uid`: stores its SST files not
/// stored for a completed checkpoint, and returns the operator's encoded state (with the
/// descriptor files) and every shared file it references.
fn upload_native(
    storage: &CheckpointStorage,
    subtask: SubtaskId,
    checkpoint: CheckpointId,
    uid: &str,
    local: &weir_state_backends::LocalSnapshot,
    timers: &Option<weir_state_backends::TimerSnapshot>,
) -> Result<(Vec<u8>, Vec<SharedStateFile>), UploadError> {
    let mut shared = Vec::new();
    let mut private = Vec::new();
    let (mut stored, mut reused) = (0u64, 0u64);
    for f in &local.files {
        let path = local.dir.join(&f.name);
        let read = || {
            std::fs::read(&path).map_err(|source| UploadError::ReadLocal {
                path: path.clone(),
                uid: uid.to_string(),
                source,
            })
        };
        if !f.is_shareable() {
            private.push((f.name.clone(), read()?));
            continue;
        }
        if let Some(known) = local.reusable.get(&f.name) {
            reused += known.size;
            shared.push(known.clone());
            continue;
        }
        let name = shared_file_name(
            &state_file_name(uid, subtask.subtask),
            local.instance,
            checkpoint,
            &f.name,
        );
        // Streamed from the local file in parts, never read whole into memory.
        let stored_at = CheckpointStorage::shared_path(subtask.job, &name);
        let (size, checksum) = storage.upload_file(&stored_at, &path)?;
        stored += size;
        shared.push(SharedStateFile {
            local: f.name.clone(),
            path: stored_at,
            size,
            checksum,
        });
    }
    debug!(
        ?subtask,
        checkpoint,
        uid,
        stored_bytes = stored,
        reused_bytes = reused,
        "native snapshot uploaded"
    );
    let state = KeyedOperatorState {
        keyed: KeyedStateData::Native(weir_state_backends::NativeKeyedState {
            states: local.states.clone(),
            key_group_range: local.key_group_range,
            max_parallelism: local.max_parallelism,
            private,
        }),
        timers: timers.clone(),
    };
    Ok((state.encode(uid)?, shared))
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_uploads_of_one_local_file_share_their_key() {
        let file = |checkpoint| weir_state_backends::SharedStateFile {
            local: "000021.sst".into(),
            path: format!(
                "job/shared/{}",
                super::shared_file_name("count-1a2b3c4d-0", 0xab, checkpoint, "000021.sst")
            ),
            size: 1,
            checksum: 0,
        };
        let key = super::shared_file_key(&file(3)).unwrap();
        assert_eq!(super::shared_file_key(&file(4)).unwrap(), key);
        assert_eq!(
            key,
            "job/shared/count-1a2b3c4d-0-00000000000000ab-000021.sst"
        );
        let mut other = file(3);
        other.local = "000022.sst".into();
        assert_eq!(super::shared_file_key(&other), None, "another local name");
    }

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
