//! What a completed checkpoint or savepoint consists of: its `_metadata` file.
//!
//! The metadata lists, per operator (matched by `uid` on restore), the state file of every
//! subtask with its size and checksum, and the key groups that file covers. File names are
//! relative to the checkpoint's directory, so a savepoint can be moved or copied anywhere
//! and still be restored.
//!
//! State uploaded incrementally (native RocksDB snapshots) also references shared files:
//! immutable files under the job's `shared/` directory that several checkpoints use. Their
//! paths are relative to the storage's root; they are deleted by the coordinator's
//! shared-state registry when no retained checkpoint references them.
//!
//! Invariant: the metadata is written last, after every state file it names, so a
//! checkpoint directory without a readable `_metadata` is never taken for a complete one.

use crate::types::{CheckpointId, JobId};
use serde::{Deserialize, Serialize};
use weir_state_backends::SharedStateFile;

/// The state of one subtask in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubtaskStateHandle {
    /// The subtask's index.
    pub subtask: u16,
    /// The state file, relative to the checkpoint's directory.
    pub file: String,
    /// Size of the state file in bytes.
    pub size: u64,
    /// First key group the file covers (inclusive).
    pub key_group_start: u16,
    /// One past the last key group the file covers.
    pub key_group_end: u16,
    /// The shared files the state references (native snapshots only).
    pub shared: Vec<SharedStateFile>,
}

impl SubtaskStateHandle {
    /// The handle of state file `file` of `subtask`, `size` bytes, covering `key_groups`
    /// (start inclusive, end exclusive), referencing no shared file.
    pub fn new(file: &str, subtask: u16, size: u64, key_groups: (u16, u16)) -> Self {
        Self {
            subtask,
            file: file.to_string(),
            size,
            key_group_start: key_groups.0,
            key_group_end: key_groups.1,
            shared: Vec::new(),
        }
    }
}

/// The state of one operator in a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorStateHandles {
    /// The operator's `uid` (its name when it has none).
    pub uid: String,
    /// The parallelism the state was written with.
    pub parallelism: u16,
    /// The operator's number of key groups.
    pub max_parallelism: u16,
    /// One handle per subtask that had state.
    pub subtasks: Vec<SubtaskStateHandle>,
}

/// The `_metadata` of a completed checkpoint or savepoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// The job that took it.
    pub job: JobId,
    /// The job's name (a savepoint is checked against it on restore).
    pub job_name: String,
    /// The checkpoint's id.
    pub checkpoint: CheckpointId,
    /// When it was triggered (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// Whether it is a savepoint (self-contained, kept until deleted by hand).
    pub savepoint: bool,
    /// The state of every operator that has any.
    pub operators: Vec<OperatorStateHandles>,
}

impl CheckpointMetadata {
    /// Returns the total size of the state, its own files and the shared files it
    /// references, in bytes.
    pub fn state_size(&self) -> u64 {
        self.operators
            .iter()
            .flat_map(|o| &o.subtasks)
            .map(|s| s.size + s.shared.iter().map(|f| f.size).sum::<u64>())
            .sum()
    }

    /// Returns the bytes of the data in flight an unaligned checkpoint stored (see
    /// [`super::channel_state`]).
    pub fn in_flight_size(&self) -> u64 {
        self.operators
            .iter()
            .filter(|o| {
                o.uid
                    .starts_with(super::channel_state::CHANNEL_STATE_PREFIX)
            })
            .flat_map(|o| &o.subtasks)
            .map(|s| s.size)
            .sum()
    }

    /// Returns every shared file the checkpoint references (a file referenced by several
    /// subtasks would be listed once per subtask; files are not shared between subtasks).
    pub fn shared_files(&self) -> impl Iterator<Item = &SharedStateFile> {
        self.operators
            .iter()
            .flat_map(|o| &o.subtasks)
            .flat_map(|s| &s.shared)
    }
}
