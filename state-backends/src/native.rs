//! Native snapshots of the RocksDB backend, the unit of incremental checkpoints.
//!
//! A native snapshot is a RocksDB checkpoint: a directory on local disk holding hard
//! links to the database's immutable SST files plus copies of its small descriptor files
//! (`CURRENT`, `MANIFEST-*`, `OPTIONS-*`). The backend takes it in the synchronous
//! phase of a checkpoint; checkpoint storage uploads it in the asynchronous phase.
//!
//! SST files never change once written, so a file already uploaded for a *completed*
//! checkpoint is referenced again instead of uploaded ([`LocalSnapshot::reusable`]).
//! Which uploads a checkpoint made is recorded through [`LocalSnapshot::record_upload`]
//! and becomes reusable only when the backend hears that the checkpoint completed, so a
//! file is never referenced on the strength of an aborted checkpoint (whose new files
//! the coordinator deletes).
//!
//! Invariants:
//! - A [`LocalSnapshot`]'s directory is deleted when it is dropped (after the upload,
//!   or when the checkpoint is abandoned).
//! - Shared files are named by their uploader uniquely per (database instance,
//!   checkpoint, file), so two uploads never write the same stored file.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::key_group::KeyGroupRange;
use crate::state_kind::StateKind;

/// A file uploaded once and referenced by every checkpoint whose database holds it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SharedStateFile {
    /// The file's name in the database (an SST file, e.g. `000012.sst`).
    pub local: String,
    /// Where it is stored, relative to the checkpoint storage's root.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The crc32 of its contents.
    pub checksum: u32,
}

/// One file of a local snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    /// The file name inside the snapshot directory.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

impl LocalFile {
    /// Whether the file is immutable and may be shared between checkpoints (an SST).
    pub fn is_shareable(&self) -> bool {
        self.name.ends_with(".sst")
    }
}

/// Which files an upload stored, filled in by the uploader.
pub(crate) type UploadReceipt = Arc<OnceLock<Vec<SharedStateFile>>>;

/// A native snapshot on local disk, waiting for its upload.
#[derive(Debug)]
pub struct LocalSnapshot {
    /// The snapshot directory.
    pub dir: PathBuf,
    /// Every file in it.
    pub files: Vec<LocalFile>,
    /// Every state (column family) with its kind, sorted by name.
    pub states: Vec<(String, StateKind)>,
    /// The key groups of the snapshotted backend.
    pub key_group_range: KeyGroupRange,
    /// Its total number of key groups.
    pub max_parallelism: u16,
    /// A random number naming the database instance, unique per instance.
    pub instance: u64,
    /// Files of this snapshot uploaded for a completed checkpoint, by local name.
    pub reusable: HashMap<String, SharedStateFile>,
    pub(crate) receipt: UploadReceipt,
}

impl LocalSnapshot {
    /// Records which shared files the upload of this snapshot stored or referenced;
    /// they become reusable once the checkpoint completes.
    pub fn record_upload(&self, shared: Vec<SharedStateFile>) {
        let _ = self.receipt.set(shared);
    }
}

impl Drop for LocalSnapshot {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot delete a local RocksDB snapshot");
            }
        }
    }
}

/// What a native snapshot stores besides its shared files: the states and the small,
/// private descriptor files, by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeKeyedState {
    /// Every state with its kind, sorted by name.
    pub states: Vec<(String, StateKind)>,
    /// The key groups of the snapshotted backend.
    pub key_group_range: KeyGroupRange,
    /// Its total number of key groups.
    pub max_parallelism: u16,
    /// The private files (not shared between checkpoints) with their contents.
    pub private: Vec<(String, Vec<u8>)>,
}

/// A native snapshot downloaded for a restore: a directory holding every file of the
/// snapshot, ready to be opened as a database.
#[derive(Debug)]
pub struct NativeRestore {
    /// The directory (the backend may move or delete it).
    pub dir: PathBuf,
    /// The states and key groups of the snapshot.
    pub state: NativeKeyedState,
    /// Its shared files, as stored.
    pub shared: Vec<SharedStateFile>,
}

/// How a keyed backend snapshots for one checkpoint.
#[derive(Debug)]
pub enum BackendSnapshot {
    /// Every entry, in the backend-independent format (memory backend).
    Full(crate::snapshot::KeyedStateSnapshot),
    /// A RocksDB checkpoint on local disk, uploaded incrementally.
    Native(LocalSnapshot),
    /// A RocksDB checkpoint on local disk, streamed by the upload in the
    /// backend-independent format (savepoints and non-incremental checkpoints of RocksDB).
    Streamed(crate::full_snapshot::LocalFullSnapshot),
}
