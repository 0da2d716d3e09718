//! The state a task starts from: a completed checkpoint's or a savepoint's files, read on
//! demand by the operators of the task's chain as they are built.
//!
//! Keyed state is matched by operator `uid` and key-group range: an operator takes every
//! state file whose key groups overlap its own and keeps only its key groups, so a restore
//! at another parallelism redistributes key groups. Operator state is list state matched by
//! `uid`: at the same parallelism each subtask gets its own list back; at another, the
//! lists of all old subtasks are concatenated in subtask order and entry `i` goes to new
//! subtask `i mod parallelism` (round-robin, as Flink's operator list state).

use super::metadata::CheckpointMetadata;
use super::snapshot::{KeyedOperatorState, OperatorSnapshot};
use super::storage::CheckpointStorage;
use crate::control::RestoreSpec;
use crate::error::TaskError;
use weir_state_backends::KeyGroupRange;

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
            .map_err(|e| TaskError::Other(format!("cannot restore: {e}")))?;
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
            .map_err(|e| TaskError::Other(format!("cannot restore '{uid}': {e}")))
    }

    /// Returns the keyed state of operator `uid` whose key groups overlap `range` (empty if
    /// the snapshot has none for it).
    pub fn keyed(
        &self,
        uid: &str,
        range: KeyGroupRange,
    ) -> Result<Vec<KeyedOperatorState>, TaskError> {
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(Vec::new());
        };
        op.subtasks
            .iter()
            .filter(|h| h.key_group_start < range.end && range.start < h.key_group_end)
            .map(|h| OperatorSnapshot::decode_keyed(&self.read(uid, h)?))
            .collect()
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
        let mut all = Vec::new();
        for h in &op.subtasks {
            all.extend(OperatorSnapshot::decode_list(&self.read(uid, h)?)?);
        }
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
