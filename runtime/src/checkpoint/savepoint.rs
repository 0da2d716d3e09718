//! Savepoints: exporting a completed checkpoint into a self-contained directory, and
//! opening one (or a retained checkpoint directory) given as a URL or a path.
//!
//! A savepoint lives at `<savepoint-dir>/savepoint-<job-id>-<n>/` and holds a copy of
//! every state file of checkpoint `n` plus its own `_metadata`, which names the files
//! relative to that directory, so the directory can be moved anywhere and restored
//! from there.
//!
//! Invariants:
//! - a savepoint holds full snapshots only: a checkpoint with incremental (shared) state
//!   is refused, so a savepoint never depends on files outside its directory;
//! - state files are copied as stored (versioned envelope and checksum included) and
//!   each is checked while copied, so a corrupt checkpoint never becomes a savepoint;
//! - the savepoint's `_metadata` (marked `savepoint: true`) is written last, so a
//!   directory without it is an incomplete export;
//! - [`open_savepoint`] checks the metadata and every state file before returning.

use super::metadata::CheckpointMetadata;
use super::storage::{chk_dir, trim_url, CheckpointStorage, StorageError};
use crate::types::{CheckpointId, JobId};
use object_store::path::Path;

/// Returns the name of the directory a savepoint of checkpoint `checkpoint` of `job` gets
/// inside the savepoint directory.
fn savepoint_dir_name(job: JobId, checkpoint: CheckpointId) -> String {
    format!("savepoint-{job}-{checkpoint}")
}

/// Turns what a user gave as a savepoint or checkpoint location into a storage URL: a URL
/// (`file:///...`, `memory://`) is kept, a file system path (absolute or relative to the
/// working directory) becomes a `file://` URL.
pub fn location_url(location: &str) -> Result<String, StorageError> {
    if location.contains("://") {
        return Ok(trim_url(location));
    }
    let path = std::path::absolute(location).map_err(|e| StorageError::BadUrl {
        url: location.to_string(),
        reason: format!("not a usable path: {e}"),
    })?;
    let text = path.to_str().ok_or_else(|| StorageError::BadUrl {
        url: location.to_string(),
        reason: "the path is not UTF-8".into(),
    })?;
    Ok(format!("file://{}", text.trim_end_matches('/')))
}

impl CheckpointStorage {
    /// Copies the complete checkpoint `metadata` describes into a new self-contained
    /// savepoint directory under `target` (a storage URL) and returns the savepoint's URL.
    /// The state files are copied as stored (checksums included) and checked on the way;
    /// the savepoint's metadata is written last.
    pub fn export_savepoint(
        &self,
        metadata: &CheckpointMetadata,
        target: &str,
    ) -> Result<String, StorageError> {
        let (job, checkpoint) = (metadata.job, metadata.checkpoint);
        let into = CheckpointStorage::open(target)?;
        let dir = Path::from(savepoint_dir_name(job, checkpoint));
        if let Some(op) = metadata
            .operators
            .iter()
            .find(|o| o.subtasks.iter().any(|h| !h.shared.is_empty()))
        {
            return Err(StorageError::Corrupt {
                path: self.name(&chk_dir(job, checkpoint)),
                reason: format!(
                    "operator '{}' has incremental state, but a savepoint holds full snapshots only",
                    op.uid
                ),
            });
        }
        for handle in metadata.operators.iter().flat_map(|o| &o.subtasks) {
            let from = chk_dir(job, checkpoint).join(handle.file.as_str());
            let bytes = self.raw_state(&from, handle)?;
            self.decode_state(&from, &bytes)?;
            into.put(&dir.clone().join(handle.file.as_str()), bytes.to_vec())?;
        }
        let savepoint = CheckpointMetadata {
            savepoint: true,
            ..metadata.clone()
        };
        into.write_metadata_in(&dir, &savepoint)?;
        Ok(into.name(&dir))
    }
}

/// Opens the savepoint (or retained checkpoint directory) at `location`, a URL or a path,
/// and checks its metadata and every state file. Returns the storage URL to restore from
/// (the savepoint's own directory) and its metadata.
pub fn open_savepoint(location: &str) -> Result<(String, CheckpointMetadata), StorageError> {
    let url = location_url(location)?;
    let storage = CheckpointStorage::open_existing(&url)?;
    let metadata = storage.verify_in("")?;
    Ok((url, metadata))
}
