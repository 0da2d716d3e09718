//! The state a task starts from: a completed checkpoint's or a savepoint's files, read on
//! demand by the operators of the task's chain as they are built.
//!
//! Keyed state is matched by operator `uid` and key-group range: an operator takes every
//! state file whose key groups overlap its own and keeps only its key groups, so a restore
//! at another parallelism redistributes key groups. Operator state is list state matched by
//! `uid`: at the same parallelism each subtask gets its own list back; at another, the
//! lists of all old subtasks are concatenated in subtask order and entry `i` goes to new
//! subtask `i mod parallelism` (round-robin, as Flink's operator list state).
//!
//! Native (incremental RocksDB) state is downloaded, descriptor files and shared files,
//! into a directory of the restoring backend's working directory, each shared file
//! checked by size and crc32; the backend then opens it.

use super::metadata::{CheckpointMetadata, SubtaskStateHandle};
use super::snapshot::{KeyedOperatorState, KeyedStateData, OperatorSnapshot};
use super::storage::{CheckpointStorage, StorageError};
use crate::control::RestoreSpec;
use crate::error::TaskError;
use std::path::Path;
use weir_state_backends::{
    KeyGroupRange, KeyedStateSnapshot, NativeKeyedState, NativeRestore, TimerSnapshot,
};

/// The keyed state and timers a checkpoint holds for one operator's key groups.
#[derive(Debug, Default)]
pub struct RestoredKeyed {
    /// State in the backend-independent format.
    pub full: Vec<KeyedStateSnapshot>,
    /// Native snapshots, downloaded.
    pub native: Vec<NativeRestore>,
    /// Timers.
    pub timers: Vec<TimerSnapshot>,
}

impl RestoredKeyed {
    /// Whether the checkpoint holds no keyed state for the operator.
    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.native.is_empty() && self.timers.is_empty()
    }
}

/// Whether `name` is a plain file name (no directory parts), as a snapshot's files are.
fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// A completed checkpoint or savepoint a task restores from.
pub struct RestoredState {
    storage: CheckpointStorage,
    dir: String,
    metadata: CheckpointMetadata,
}

impl RestoredState {
    /// Opens the snapshot named by `spec`.
    pub fn open(spec: &RestoreSpec) -> Result<Self, TaskError> {
        let storage = CheckpointStorage::open_existing(&spec.storage)
            .map_err(|e| TaskError::Io(format!("cannot restore: {e}")))?;
        Ok(Self {
            storage,
            dir: spec.dir.clone(),
            metadata: spec.metadata.clone(),
        })
    }

    /// Returns the checkpoint restored from.
    pub fn checkpoint(&self) -> crate::types::CheckpointId {
        self.metadata.checkpoint
    }

    fn read(&self, uid: &str, h: &super::SubtaskStateHandle) -> Result<Vec<u8>, TaskError> {
        self.storage
            .read_state_in(&self.dir, h)
            .map_err(|e| TaskError::Io(format!("cannot restore '{uid}': {e}")))
    }

    /// Returns the keyed state of operator `uid` whose key groups overlap `range` (empty if
    /// the snapshot has none for it). Native snapshots are downloaded into `local_dir`, the
    /// restoring backend's working directory (`None`: it has none, and cannot restore
    /// them).
    pub fn keyed(
        &self,
        uid: &str,
        range: KeyGroupRange,
        local_dir: Option<&Path>,
    ) -> Result<RestoredKeyed, TaskError> {
        let mut restored = RestoredKeyed::default();
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(restored);
        };
        for h in op
            .subtasks
            .iter()
            .filter(|h| h.key_group_start < range.end && range.start < h.key_group_end)
        {
            // Decoded as it streams in: the file is never whole in memory.
            let state: KeyedOperatorState = self
                .storage
                .read_state_streamed(&self.dir, h)
                .map_err(|e| match e {
                    StorageError::Undecodable { .. } => {
                        TaskError::RestoredState(format!("cannot restore '{uid}': {e}"))
                    }
                    e => TaskError::Io(format!("cannot restore '{uid}': {e}")),
                })?;
            restored.timers.extend(state.timers);
            match state.keyed {
                KeyedStateData::Full(full) => restored.full.push(full),
                KeyedStateData::Native(native) => {
                    let Some(local_dir) = local_dir else {
                        return Err(TaskError::RestoredState(format!(
                            "cannot restore '{uid}': checkpoint {} holds an incremental RocksDB snapshot of it, \
                             which only the rocksdb state backend restores (a savepoint restores into any backend)",
                            self.checkpoint()
                        )));
                    };
                    restored
                        .native
                        .push(self.download(uid, h, native, local_dir)?);
                }
            }
        }
        Ok(restored)
    }

    /// Writes the files of native snapshot `state` (of handle `h`) into a new directory of
    /// `local_dir`.
    fn download(
        &self,
        uid: &str,
        h: &SubtaskStateHandle,
        mut state: NativeKeyedState,
        local_dir: &Path,
    ) -> Result<NativeRestore, TaskError> {
        let dir = local_dir.join(format!("restore-{}-{}", self.checkpoint(), h.subtask));
        let failed = |what: &str, e: &dyn std::fmt::Display| {
            TaskError::Io(format!(
                "cannot restore '{uid}' into {}: {what}: {e}",
                dir.display()
            ))
        };
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| failed("deleting a stale download", &e))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| failed("creating the directory", &e))?;
        let bad = state
            .private
            .iter()
            .map(|(name, _)| name.as_str())
            .chain(h.shared.iter().map(|f| f.local.as_str()))
            .find(|name| !plain_file_name(name));
        if let Some(name) = bad {
            return Err(TaskError::RestoredState(format!(
                "cannot restore '{uid}': checkpoint {} names a snapshot file '{name}', which is not a plain file name",
                self.checkpoint()
            )));
        }
        for (name, bytes) in std::mem::take(&mut state.private) {
            std::fs::write(dir.join(&name), bytes).map_err(|e| failed(&name, &e))?;
        }
        for file in &h.shared {
            // Streamed into the local file, checked by size and crc32 on the way.
            self.storage
                .download_shared(file, &dir.join(&file.local))
                .map_err(|e| TaskError::Io(format!("cannot restore '{uid}': {e}")))?;
        }
        Ok(NativeRestore {
            dir,
            state,
            shared: h.shared.clone(),
        })
    }

    /// Returns the operator list state of operator `uid` of every subtask, concatenated in
    /// subtask order (Flink's union redistribution), or `None` if the snapshot has no state
    /// for `uid`.
    pub fn union_list(&self, uid: &str) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(None);
        };
        let mut handles: Vec<_> = op.subtasks.iter().collect();
        handles.sort_by_key(|h| h.subtask);
        let mut all = Vec::new();
        for h in handles {
            all.extend(OperatorSnapshot::decode_list(&self.read(uid, h)?)?);
        }
        Ok(Some(all))
    }

    /// Returns the operator list state `uid` that old subtask `subtask mod old parallelism`
    /// stored, for `subtask` (`None` if the snapshot has no state for `uid`): every old
    /// subtask stored a whole copy (broadcast state), so any one serves. A copy missing
    /// from the snapshot is an error naming the state.
    pub fn copy_of(&self, uid: &str, subtask: u16) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(None);
        };
        let from = subtask % op.parallelism.max(1);
        match op.subtasks.iter().find(|h| h.subtask == from) {
            Some(h) => OperatorSnapshot::decode_list(&self.read(uid, h)?).map(Some),
            None => Err(TaskError::RestoredState(format!(
                "checkpoint {} has no copy of '{uid}' from subtask {from}",
                self.metadata.checkpoint
            ))),
        }
    }

    /// Returns the in-flight data stored under `uid` (see [`super::channel_state`]) for
    /// `subtask` of `parallelism` subtasks (`None` if there is none). In-flight data is
    /// tied to its channels: stored at another parallelism, it is refused.
    pub fn channel_data(
        &self,
        uid: &str,
        subtask: u16,
        parallelism: u16,
    ) -> Result<Option<super::channel_state::ChannelData>, TaskError> {
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(None);
        };
        if op.parallelism != parallelism {
            let mut stored = 0;
            for h in &op.subtasks {
                let data = OperatorSnapshot::decode_channels(&self.read(uid, h)?)?;
                stored += data.iter().map(|(_, b)| b.len()).sum::<usize>();
            }
            if stored == 0 {
                return Ok(None);
            }
            return Err(TaskError::RestoredState(format!(
                "checkpoint {} holds {stored} buffers in flight of an unaligned checkpoint ('{uid}') taken at parallelism {}; in-flight data cannot be restored at parallelism {parallelism}: restore at parallelism {} or from a savepoint (savepoints are aligned)",
                self.metadata.checkpoint, op.parallelism, op.parallelism
            )));
        }
        match op.subtasks.iter().find(|h| h.subtask == subtask) {
            Some(h) => OperatorSnapshot::decode_channels(&self.read(uid, h)?).map(Some),
            None => Ok(None),
        }
    }

    /// Returns the operator list state of operator `uid` for `subtask` of `parallelism`
    /// subtasks (`None` if the snapshot has no state for `uid`; an empty list if it has,
    /// but none for this subtask).
    pub fn operator_list(
        &self,
        uid: &str,
        subtask: u16,
        parallelism: u16,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(None);
        };
        if op.parallelism == parallelism {
            return match op.subtasks.iter().find(|h| h.subtask == subtask) {
                Some(h) => OperatorSnapshot::decode_list(&self.read(uid, h)?).map(Some),
                None => Ok(Some(Vec::new())),
            };
        }
        let all = self.union_list(uid)?.unwrap_or_default();
        let p = usize::from(parallelism.max(1));
        Ok(Some(
            all.into_iter()
                .enumerate()
                .filter(|(i, _)| i % p == usize::from(subtask))
                .map(|(_, e)| e)
                .collect(),
        ))
    }
}
