//! Checkpoints: what a completed checkpoint consists of and where it is stored.
//!
//! Storage follows DESIGN.md:
//!
//! ```text
//! <checkpoint-dir>/<job-id>/chk-<n>/_metadata            versioned, written last, atomically
//! <checkpoint-dir>/<job-id>/chk-<n>/<operator>-<subtask>  state of one subtask
//! <checkpoint-dir>/<job-id>/shared/<file>                 SST files of incremental checkpoints
//! <savepoint-dir>/savepoint-<job-id>-<n>/                 self-contained, relocatable
//! ```
//!
//! Shared files are referenced by every retained checkpoint whose state holds them and
//! deleted by the [`SharedStateRegistry`] when the last of these is subsumed.
//!
//! A savepoint is a completed checkpoint copied into its own directory: its metadata names
//! its state files relative to that directory, so it can be moved anywhere and restored
//! from there.

mod aligner;
pub mod broadcast_state;
pub mod channel_state;
mod files;
mod metadata;
mod restore;
mod s3;
mod savepoint;
mod shared_registry;
mod snapshot;
mod storage;
mod storage_error;
mod transfer;
mod uploader;

pub use aligner::{AlignAction, AlignOutcome, BarrierAligner, HeldBuffer};
pub use metadata::{CheckpointMetadata, OperatorStateHandles, SubtaskStateHandle};
pub use restore::{RestoredKeyed, RestoredState};
pub use s3::{parse_url as split_s3_url, S3Location, S3Settings};
pub use savepoint::{location_url, open_savepoint};
pub use shared_registry::SharedStateRegistry;
pub use snapshot::{KeyedOperatorState, KeyedStateData, OperatorSnapshot};
pub use storage::{
    checkpoint_dir, join_url, CheckpointStorage, StorageError, METADATA_FILE, SHARED_DIR,
};
pub use transfer::{PARTS_IN_FLIGHT, PART_SIZE};
pub use uploader::{shared_file_key, state_file_name, Uploader};
pub use weir_state_backends::SharedStateFile;
