//! Checkpoints: what a completed checkpoint consists of and where it is stored.
//!
//! Storage follows DESIGN.md:
//!
//! ```text
//! <checkpoint-dir>/<job-id>/chk-<n>/_metadata            versioned, written last, atomically
//! <checkpoint-dir>/<job-id>/chk-<n>/<operator>-<subtask>  state of one subtask
//! <savepoint-dir>/savepoint-<job-id>-<n>/                 self-contained, relocatable
//! ```
//!
//! A savepoint is a completed checkpoint copied into its own directory: its metadata names
//! its state files relative to that directory, so it can be moved anywhere and restored
//! from there.

mod aligner;
mod metadata;
mod restore;
mod snapshot;
mod storage;
mod uploader;

pub use aligner::{AlignAction, AlignOutcome, BarrierAligner};
pub use metadata::{CheckpointMetadata, OperatorStateHandles, SubtaskStateHandle};
pub use restore::RestoredState;
pub use snapshot::{KeyedOperatorState, OperatorSnapshot};
pub use storage::{
    checkpoint_dir, location_url, open_savepoint, CheckpointStorage, StorageError, METADATA_FILE,
};
pub use uploader::{state_file_name, Uploader};
