//! Checkpoint storage on an `object_store` URL (`state.checkpoints.dir`).
//!
//! `file:///absolute/dir` (the default kind), `s3://bucket/path` (settings in [`super::s3`])
//! and `memory://` are supported; every access goes through `object_store` paths, so
//! nothing here assumes a POSIX file system. The
//! store's calls are asynchronous; a small private runtime drives them so that the
//! JobManager and task threads can call in synchronously.
//!
//! Invariants:
//! - every stored file (state files and `_metadata`) is written with the codec's
//!   versioned, checksummed envelope, and every read checks version, length and checksum,
//!   so a corrupt, truncated or foreign file is an error naming it, never wrong state;
//! - `_metadata` is written last, in one `put` (atomic on every `object_store` backend:
//!   the local file system writes a staging file and renames it), so a directory without
//!   it is an incomplete checkpoint; on the local file system every file written (and the
//!   directory entry that publishes it) is fsynced before the write returns, so `_metadata`
//!   never names a file that a machine crash could take back;
//! - [`CheckpointStorage::retain`] deletes completed checkpoints beyond the newest `n`,
//!   and incomplete ones older than the newest complete one, so a run leaves no orphans;
//! - shared files (`<job>/shared/`, referenced by incremental checkpoints) are stored
//!   as the state backend wrote them and checked by size and crc32 on every read; only
//!   the coordinator's shared-state registry deletes them.
//!
//! Exporting and opening savepoints is in [`super::savepoint`].

use super::metadata::{CheckpointMetadata, SubtaskStateHandle};
use crate::types::{CheckpointId, JobId};
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::{debug, warn};
use weir_state_backends::SharedStateFile;

pub use super::storage_error::StorageError;

/// Name of a checkpoint's metadata file.
pub const METADATA_FILE: &str = "_metadata";

/// The directory of a job's shared files (those incremental checkpoints reference).
pub const SHARED_DIR: &str = "shared";

/// Where a job's checkpoints live.
pub struct CheckpointStorage {
    store: Arc<dyn ObjectStore>,
    url: String,
    /// The root directory when the store is the local file system, whose directories
    /// outlive the objects in them.
    local_root: Option<std::path::PathBuf>,
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for CheckpointStorage {
    /// The storage may be dropped inside another runtime's task (a JobMaster's), where
    /// dropping a runtime would block: shut its own down without waiting.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl std::fmt::Debug for CheckpointStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointStorage({})", self.url)
    }
}

pub(super) fn chk_dir(job: JobId, checkpoint: CheckpointId) -> Path {
    Path::from(checkpoint_dir(job, checkpoint))
}

/// Returns the directory of checkpoint `checkpoint` of `job` inside its storage.
pub fn checkpoint_dir(job: JobId, checkpoint: CheckpointId) -> String {
    format!("{job}/chk-{checkpoint}")
}

/// Drops trailing slashes, but not those of a bare scheme (`memory://`).
pub(super) fn trim_url(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    if trimmed.ends_with(':') {
        url.to_string()
    } else {
        trimmed.to_string()
    }
}

/// `path` inside the storage at `url` (a bare scheme such as `memory://` keeps its slashes).
pub fn join_url(url: &str, path: &str) -> String {
    if url.ends_with('/') {
        format!("{url}{path}")
    } else {
        format!("{url}/{path}")
    }
}

impl CheckpointStorage {
    /// Opens the storage at `url`: `file:///absolute/dir` (created if missing),
    /// `s3://bucket/path` (the bucket must exist) or `memory://` (in this process only, for
    /// tests).
    pub fn open(url: &str) -> Result<Self, StorageError> {
        Self::open_with(url, true)
    }

    /// Opens the storage at `url`, which must exist (a savepoint or checkpoint to read).
    pub fn open_existing(url: &str) -> Result<Self, StorageError> {
        Self::open_with(url, false)
    }

    fn open_with(url: &str, create: bool) -> Result<Self, StorageError> {
        let bad = |reason: String| StorageError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| bad(format!("cannot start its I/O runtime: {e}")))?;
        let mut local_root = None;
        let store: Arc<dyn ObjectStore> = if let Some(dir) = url.strip_prefix("file://") {
            if !dir.starts_with('/') {
                return Err(bad("a file URL needs an absolute path (file:///dir)".into()));
            }
            if create {
                std::fs::create_dir_all(dir).map_err(|e| bad(format!("cannot create it: {e}")))?;
            } else if !std::path::Path::new(dir).is_dir() {
                return Err(bad("no such directory".into()));
            }
            local_root = Some(std::path::PathBuf::from(dir));
            Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| bad(e.to_string()))?
                    // A completed checkpoint must survive the machine, not only the process.
                    .with_fsync(true),
            )
        } else if url.starts_with("s3://") {
            super::s3::open(url, !create, &runtime)?
        } else if url == "memory://" {
            Arc::new(InMemory::new())
        } else {
            return Err(bad(
                "unsupported scheme (supported: file:///dir, s3://bucket/path, memory://)".into(),
            ));
        };
        Ok(Self {
            store,
            url: trim_url(url),
            local_root,
            runtime: Some(runtime),
        })
    }

    /// The store itself.
    pub(super) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub(super) fn rt(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives until the storage is dropped")
    }

    /// Returns the storage URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The root directory when the storage is the local file system (`file://`).
    pub fn local_root(&self) -> Option<&std::path::Path> {
        self.local_root.as_deref()
    }

    /// Returns the URL of `path`, for error messages and savepoint locations.
    pub(super) fn name(&self, path: &Path) -> String {
        join_url(&self.url, path.as_ref())
    }

    pub(super) fn store_err(
        &self,
        path: &Path,
    ) -> impl Fn(object_store::Error) -> StorageError + '_ {
        let name = self.name(path);
        move |source| StorageError::Store {
            path: name.clone(),
            source,
        }
    }

    /// Writes `bytes` to `path`: one put, or a multipart upload when larger than a part.
    pub(super) fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<(), StorageError> {
        if bytes.len() > super::transfer::PART_SIZE {
            return self.put_in_parts(path, bytes);
        }
        self.rt()
            .block_on(self.store.put(path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(self.store_err(path))
    }

    fn get(&self, path: &Path) -> Result<bytes::Bytes, StorageError> {
        self.rt()
            .block_on(async { self.store.get(path).await?.bytes().await })
            .map_err(self.store_err(path))
    }

    /// Writes `value` to `path` in the codec's versioned, checksummed envelope.
    pub(super) fn put_versioned<T: Serialize + ?Sized>(
        &self,
        path: &Path,
        value: &T,
    ) -> Result<u64, StorageError> {
        let bytes =
            weir_state_backends::encode_versioned(value).map_err(|e| StorageError::Corrupt {
                path: self.name(path),
                reason: e.to_string(),
            })?;
        let size = bytes.len() as u64;
        self.put(path, bytes)?;
        Ok(size)
    }

    /// Reads `path`, written by [`Self::put_versioned`], checking version and checksum.
    pub(super) fn get_versioned<T: DeserializeOwned>(
        &self,
        path: &Path,
    ) -> Result<T, StorageError> {
        let bytes = self.get(path)?;
        let name = self.name(path);
        weir_state_backends::decode_versioned(&bytes, &name).map_err(|e| StorageError::Corrupt {
            path: name,
            reason: e.to_string(),
        })
    }

    /// Writes the state of one subtask (`file` names it inside the checkpoint directory)
    /// and returns its handle, with the covered key groups.
    pub fn write_state(
        &self,
        job: JobId,
        checkpoint: CheckpointId,
        file: &str,
        subtask: u16,
        key_groups: (u16, u16),
        state: &[u8],
    ) -> Result<SubtaskStateHandle, StorageError> {
        let path = chk_dir(job, checkpoint).join(file);
        let bytes = weir_state_backends::codec::encode_versioned_bytes(state).map_err(|e| {
            StorageError::Corrupt {
                path: self.name(&path),
                reason: e.to_string(),
            }
        })?;
        let size = bytes.len() as u64;
        self.put(&path, bytes)?;
        Ok(SubtaskStateHandle::new(file, subtask, size, key_groups))
    }

    /// Returns where shared file `name` of `job` is stored, relative to the root.
    pub fn shared_path(job: JobId, name: &str) -> String {
        format!("{job}/{SHARED_DIR}/{name}")
    }

    /// Stores the contents of a shared file at `path` (relative to the root) as they are:
    /// shared files are immutable files of a state backend, checked by size and crc32.
    pub fn write_shared(&self, path: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.put(&Path::from(path), bytes)
    }

    /// Reads shared file `file`, checking its size and crc32.
    pub fn read_shared(&self, file: &SharedStateFile) -> Result<bytes::Bytes, StorageError> {
        let path = Path::from(file.path.as_str());
        let bytes = self.get(&path)?;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: self.name(&path),
            reason,
        };
        self.check_size(&path, bytes.len() as u64, file.size)?;
        let checksum = crc32fast::hash(&bytes);
        if checksum != file.checksum {
            return Err(corrupt(format!(
                "crc32 {checksum:#010x}, but the metadata says {:#010x}",
                file.checksum
            )));
        }
        Ok(bytes)
    }

    /// Checks that the file at `path` has the `expected` size its metadata gives.
    pub(super) fn check_size(
        &self,
        path: &Path,
        actual: u64,
        expected: u64,
    ) -> Result<(), StorageError> {
        if actual == expected {
            return Ok(());
        }
        Err(StorageError::Corrupt {
            path: self.name(path),
            reason: format!("{actual} bytes, but the metadata says {expected}"),
        })
    }

    /// Checks that shared file `file` exists with the size the metadata gives (its
    /// contents are checked when it is read).
    fn check_shared(&self, file: &SharedStateFile) -> Result<(), StorageError> {
        let path = Path::from(file.path.as_str());
        let meta = self
            .rt()
            .block_on(self.store.head(&path))
            .map_err(self.store_err(&path))?;
        self.check_size(&path, meta.size, file.size)
    }

    /// Deletes the file at `path` (relative to the root: a shared file, or one written by
    /// [`Self::write_file`]); one already gone is
    /// not an error.
    pub fn delete_file(&self, path: &str) -> Result<(), StorageError> {
        let path = Path::from(path);
        match self.rt().block_on(self.store.delete(&path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_err(&path)(e)),
        }
    }

    /// Reads the state file of `handle` in checkpoint `checkpoint`, checking its size,
    /// version and checksum.
    pub fn read_state(
        &self,
        job: JobId,
        checkpoint: CheckpointId,
        handle: &SubtaskStateHandle,
    ) -> Result<Vec<u8>, StorageError> {
        self.read_state_in(&checkpoint_dir(job, checkpoint), handle)
    }

    /// Reads the state file of `handle` in the snapshot directory `dir` (empty: the
    /// storage's root), checking its size, version and checksum.
    pub fn read_state_in(
        &self,
        dir: &str,
        handle: &SubtaskStateHandle,
    ) -> Result<Vec<u8>, StorageError> {
        let path = Path::from(dir).join(handle.file.as_str());
        let bytes = self.raw_state(&path, handle)?;
        self.decode_state(&path, &bytes)
    }

    /// Checks the version and checksum of the state file at `path` and returns its
    /// contents.
    pub(super) fn decode_state(&self, path: &Path, bytes: &[u8]) -> Result<Vec<u8>, StorageError> {
        let name = self.name(path);
        weir_state_backends::codec::decode_versioned_bytes(bytes, &name).map_err(|e| {
            StorageError::Corrupt {
                path: name,
                reason: e.to_string(),
            }
        })
    }

    /// Reads a state file's bytes as stored, checking only their size against `handle`.
    pub(super) fn raw_state(
        &self,
        path: &Path,
        handle: &SubtaskStateHandle,
    ) -> Result<bytes::Bytes, StorageError> {
        let bytes = self.get(path)?;
        self.check_size(path, bytes.len() as u64, handle.size)?;
        Ok(bytes)
    }

    /// Writes the metadata of a checkpoint whose state files are all written, which makes
    /// it complete.
    pub fn write_metadata(&self, metadata: &CheckpointMetadata) -> Result<(), StorageError> {
        self.write_metadata_in(&chk_dir(metadata.job, metadata.checkpoint), metadata)
    }

    /// Writes `metadata` into the snapshot directory `dir`.
    pub(super) fn write_metadata_in(
        &self,
        dir: &Path,
        metadata: &CheckpointMetadata,
    ) -> Result<(), StorageError> {
        self.put_versioned(&dir.clone().join(METADATA_FILE), metadata)
            .map(|_| ())
    }

    /// Reads the metadata of checkpoint `checkpoint` of `job`.
    pub fn read_metadata(
        &self,
        job: JobId,
        checkpoint: CheckpointId,
    ) -> Result<CheckpointMetadata, StorageError> {
        let dir = checkpoint_dir(job, checkpoint);
        let metadata = self.read_metadata_in(&dir)?;
        let name = self.name(&Path::from(dir).join(METADATA_FILE));
        if metadata.job != job || metadata.checkpoint != checkpoint {
            return Err(StorageError::Corrupt {
                path: name,
                reason: format!(
                    "it describes checkpoint {} of job {}",
                    metadata.checkpoint, metadata.job
                ),
            });
        }
        Ok(metadata)
    }

    /// Reads the metadata in the snapshot directory `dir` (empty: the storage's root).
    pub fn read_metadata_in(&self, dir: &str) -> Result<CheckpointMetadata, StorageError> {
        self.get_versioned(&Path::from(dir).join(METADATA_FILE))
    }

    /// Reads the metadata in the snapshot directory `dir` and checks every state file it
    /// names.
    pub fn verify_in(&self, dir: &str) -> Result<CheckpointMetadata, StorageError> {
        let m = self.read_metadata_in(dir)?;
        self.check_files(dir, &m)?;
        Ok(m)
    }

    /// Checks every state file `m` names in the snapshot directory `dir`.
    fn check_files(&self, dir: &str, m: &CheckpointMetadata) -> Result<(), StorageError> {
        for handle in m.operators.iter().flat_map(|o| &o.subtasks) {
            self.read_state_in(dir, handle)?;
            for file in &handle.shared {
                self.check_shared(file)?;
            }
        }
        Ok(())
    }

    /// Returns the ids of `job`'s checkpoint directories, and which of them have metadata
    /// (are complete), both ascending.
    fn scan(
        &self,
        job: JobId,
    ) -> Result<(Vec<CheckpointId>, BTreeSet<CheckpointId>), StorageError> {
        let prefix = Path::from(job.to_string());
        let objects: Vec<_> = self
            .rt()
            .block_on(self.store.list(Some(&prefix)).try_collect())
            .map_err(self.store_err(&prefix))?;
        let mut all = BTreeSet::new();
        let mut complete = BTreeSet::new();
        for o in objects {
            let mut parts = o.location.parts().skip(1);
            let Some(dir) = parts.next() else { continue };
            let Some(id) = dir
                .as_ref()
                .strip_prefix("chk-")
                .and_then(|n| n.parse::<CheckpointId>().ok())
            else {
                continue;
            };
            all.insert(id);
            if parts.next().is_some_and(|f| f.as_ref() == METADATA_FILE) {
                complete.insert(id);
            }
        }
        // A local directory may hold checkpoint directories without files, which no object
        // listing shows (an upload that failed on a full disk after creating its
        // directory): they are incomplete checkpoints too.
        if let Some(root) = &self.local_root {
            if let Ok(entries) = std::fs::read_dir(root.join(prefix.as_ref())) {
                let names = entries.filter_map(|e| e.ok()?.file_name().into_string().ok());
                all.extend(
                    names.filter_map(|n| n.strip_prefix("chk-")?.parse::<CheckpointId>().ok()),
                );
            }
        }
        Ok((all.into_iter().collect(), complete))
    }

    /// Returns the ids of every checkpoint directory of `job`, complete or not, ascending.
    pub fn checkpoints(&self, job: JobId) -> Result<Vec<CheckpointId>, StorageError> {
        Ok(self.scan(job)?.0)
    }

    /// Returns the ids of `job`'s complete checkpoints (those with metadata), ascending.
    pub fn completed(&self, job: JobId) -> Result<Vec<CheckpointId>, StorageError> {
        Ok(self.scan(job)?.1.into_iter().collect())
    }

    /// Returns the ids of `job`'s checkpoint directories without metadata, ascending (one
    /// listing of the job's files).
    pub fn incomplete(&self, job: JobId) -> Result<Vec<CheckpointId>, StorageError> {
        let (all, complete) = self.scan(job)?;
        Ok(all
            .into_iter()
            .filter(|id| !complete.contains(id))
            .collect())
    }

    /// Deletes every file of checkpoint `checkpoint` of `job`.
    pub fn discard(&self, job: JobId, checkpoint: CheckpointId) -> Result<(), StorageError> {
        let dir = chk_dir(job, checkpoint);
        let objects: Vec<_> = self
            .rt()
            .block_on(self.store.list(Some(&dir)).try_collect())
            .map_err(self.store_err(&dir))?;
        // Metadata first: a half-deleted checkpoint must never look complete.
        let mut paths: Vec<Path> = objects.into_iter().map(|o| o.location).collect();
        paths.sort_by_key(|p| p.filename() != Some(METADATA_FILE));
        for p in paths {
            match self.rt().block_on(self.store.delete(&p)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.store_err(&p)(e)),
            }
        }
        if let Some(root) = &self.local_root {
            // What is left of it is the directory and what no listing shows: the hidden
            // staging file of an upload killed while it wrote.
            let _ = std::fs::remove_dir_all(root.join(dir.as_ref()));
        }
        debug!(url = %self.url, %job, checkpoint, "checkpoint discarded");
        Ok(())
    }

    /// Keeps the newest `retained` complete checkpoints of `job` and deletes the older
    /// ones, and incomplete checkpoints older than the newest complete one. Returns the
    /// ids deleted.
    pub fn retain(&self, job: JobId, retained: usize) -> Result<Vec<CheckpointId>, StorageError> {
        let (all, complete) = self.scan(job)?;
        let keep: BTreeSet<CheckpointId> = complete.iter().rev().take(retained).copied().collect();
        let newest_complete = complete.iter().next_back().copied();
        let mut deleted = Vec::new();
        for id in all {
            let subsumed = newest_complete.is_some_and(|n| id < n);
            if !keep.contains(&id) && (complete.contains(&id) || subsumed) {
                self.discard(job, id)?;
                deleted.push(id);
            }
        }
        Ok(deleted)
    }

    /// Returns the metadata of the newest complete checkpoint of `job` whose metadata and
    /// state files all read back intact. A newer unusable checkpoint is skipped with a
    /// warning saying why; if none is usable the error lists every reason.
    pub fn latest_usable(&self, job: JobId) -> Result<CheckpointMetadata, StorageError> {
        self.latest_usable_up_to(job, CheckpointId::MAX)
    }

    /// As [`Self::latest_usable`], among the checkpoints up to `newest` only (with high
    /// availability: the newest one recorded complete in ZooKeeper).
    pub fn latest_usable_up_to(
        &self,
        job: JobId,
        newest: CheckpointId,
    ) -> Result<CheckpointMetadata, StorageError> {
        let mut reasons = Vec::new();
        let completed = self.completed(job)?;
        for id in completed.into_iter().rev().filter(|id| *id <= newest) {
            match self.verify(job, id) {
                Ok(m) => return Ok(m),
                Err(e) => {
                    warn!(url = %self.url, %job, checkpoint = id, error = %e, "skipping unusable checkpoint");
                    reasons.push(format!("chk-{id}: {e}"));
                }
            }
        }
        Err(StorageError::NoUsableCheckpoint {
            job,
            url: self.url.clone(),
            reasons: if reasons.is_empty() {
                "no complete checkpoint".into()
            } else {
                reasons.join("; ")
            },
        })
    }

    /// Reads checkpoint `checkpoint`'s metadata and checks every state file it names.
    pub fn verify(
        &self,
        job: JobId,
        checkpoint: CheckpointId,
    ) -> Result<CheckpointMetadata, StorageError> {
        let m = self.read_metadata(job, checkpoint)?;
        self.check_files(&checkpoint_dir(job, checkpoint), &m)?;
        Ok(m)
    }
}
