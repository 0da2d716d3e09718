//! The state a restarting task starts from: a completed checkpoint's files, read on demand
//! by the operators of the task's chain as they are built.
//!
//! Keyed state is matched by operator `uid` and key-group range: an operator takes every
//! state file whose key groups overlap its own and keeps only its key groups, so a restore
//! at another parallelism redistributes key groups. Operator state (a source's position)
//! is matched by `uid` and subtask index and needs the same parallelism.

use super::metadata::CheckpointMetadata;
use super::snapshot::{KeyedOperatorState, OperatorSnapshot};
use super::storage::CheckpointStorage;
use crate::control::RestoreSpec;
use crate::error::TaskError;
use weir_state_backends::KeyGroupRange;

/// A completed checkpoint a task restores from.
pub struct RestoredState {
    storage: CheckpointStorage,
    metadata: CheckpointMetadata,
}

impl RestoredState {
    /// Opens the checkpoint named by `spec`.
    pub fn open(spec: &RestoreSpec) -> Result<Self, TaskError> {
        let storage = CheckpointStorage::open(&spec.storage)
            .map_err(|e| TaskError::Other(format!("cannot restore: {e}")))?;
        Ok(Self {
            storage,
            metadata: spec.metadata.clone(),
        })
    }

    /// Returns the checkpoint restored from.
    pub fn checkpoint(&self) -> crate::types::CheckpointId {
        self.metadata.checkpoint
    }

    /// Returns the keyed state of operator `uid` whose key groups overlap `range` (empty if
    /// the checkpoint has none for it).
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
            .map(|h| {
                let bytes = self
                    .storage
                    .read_state(self.metadata.job, self.metadata.checkpoint, h)
                    .map_err(|e| TaskError::Other(format!("cannot restore '{uid}': {e}")))?;
                OperatorSnapshot::decode_keyed(&bytes)
            })
            .collect()
    }

    /// Returns the operator state of operator `uid` for `subtask` of `parallelism`
    /// subtasks, if the checkpoint has one.
    pub fn operator(
        &self,
        uid: &str,
        subtask: u16,
        parallelism: u16,
    ) -> Result<Option<Vec<u8>>, TaskError> {
        let Some(op) = self.metadata.operators.iter().find(|o| o.uid == uid) else {
            return Ok(None);
        };
        if op.parallelism != parallelism {
            return Err(TaskError::Other(format!(
                "cannot restore the state of '{uid}' taken with parallelism {} at parallelism {parallelism}",
                op.parallelism
            )));
        }
        let Some(h) = op.subtasks.iter().find(|h| h.subtask == subtask) else {
            return Ok(None);
        };
        self.storage
            .read_state(self.metadata.job, self.metadata.checkpoint, h)
            .map(Some)
            .map_err(|e| TaskError::Other(format!("cannot restore '{uid}': {e}")))
    }
}
