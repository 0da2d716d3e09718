//! A directory of part objects on S3 (`s3://bucket/dir`): the file sink's parts there,
//! completed, listed and deleted.
//!
//! Invariants: only the objects directly in the directory named `part-<subtask>-<n>` are
//! parts (nothing in subdirectories, which another job may own); while a part's upload is
//! open, a hidden marker `.part-<subtask>-<n>.upload` holds its upload id, so a restore finds
//! and aborts the uploads begun after the restored checkpoint; an upload is completed
//! at most once, and one already completed (the object there carries its upload's part
//! count in its entity tag) counts as done; failures that a restart may heal (the server
//! unreachable, a timeout) are I/O errors, while an upload that is gone with no object in
//! its place is a restored-state error, as no restart brings it back.

use super::parts_state::PendingUpload;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use std::sync::Arc;
use tokio::runtime::Runtime;
use weir_runtime::checkpoint::S3Location;
use weir_runtime::TaskError;

/// A directory of parts on S3.
pub(super) struct PartDir {
    pub client: Arc<AmazonS3>,
    bucket: String,
    /// The directory's path inside the bucket.
    dir: String,
}

impl PartDir {
    /// The directory `url` names (`s3://bucket/dir`), its bucket checked by a listing.
    pub fn open(url: &str, rt: &Runtime) -> Result<Self, TaskError> {
        let io = |e: weir_runtime::checkpoint::StorageError| {
            TaskError::Io(format!("file sink cannot write to {url}: {e}"))
        };
        let location = S3Location::new(url).map_err(io)?;
        location.check(url, false, rt).map_err(io)?;
        Ok(Self {
            client: location.client,
            bucket: location.bucket,
            dir: location.path,
        })
    }

    /// The key of part `n` of `subtask`.
    pub fn key(&self, subtask: u16, n: u64) -> Path {
        Path::from(format!("{}/part-{subtask}-{n}", self.dir))
    }

    /// The key of the marker of part `n`'s open upload.
    fn marker(&self, subtask: u16, n: u64) -> Path {
        Path::from(format!("{}/.part-{subtask}-{n}.upload", self.dir))
    }

    /// Starts the upload of part `n` of `subtask` and records its id in the part's marker.
    pub fn start(&self, rt: &Runtime, subtask: u16, n: u64) -> Result<String, TaskError> {
        let key = self.key(subtask, n);
        let id = rt
            .block_on(self.client.create_multipart(&key))
            .map_err(|e| self.failed("start an upload of", &key, e))?;
        let marker = self.marker(subtask, n);
        if let Err(e) = rt.block_on(self.client.put(&marker, id.clone().into())) {
            // Without its marker no restore would find the upload: abort it now.
            let _ = rt.block_on(self.client.abort_multipart(&key, &id));
            return Err(self.failed("write", &marker, e));
        }
        Ok(id)
    }

    /// Aborts the open uploads of `subtask` numbered `from` on, as their markers name them
    /// (begun after the restored checkpoint), and drops the markers of parts before it.
    pub fn abort_from(&self, rt: &Runtime, subtask: u16, from: u64) -> Result<(), TaskError> {
        let prefix = Path::from(self.dir.as_str());
        let listed = rt
            .block_on(self.client.list_with_delimiter(Some(&prefix)))
            .map_err(|e| self.failed("list", &prefix, e))?;
        let mine = format!(".part-{subtask}-");
        for o in listed.objects {
            let Some(n) = o.location.filename().and_then(|f| {
                f.strip_prefix(&mine)?
                    .strip_suffix(".upload")?
                    .parse::<u64>()
                    .ok()
            }) else {
                continue;
            };
            if n >= from {
                let id = match rt
                    .block_on(async { self.client.get(&o.location).await?.bytes().await })
                {
                    Ok(id) => id,
                    // Gone since the listing: its upload was completed or aborted.
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(self.failed("read", &o.location, e)),
                };
                let id = String::from_utf8_lossy(&id).into_owned();
                let key = self.key(subtask, n);
                match rt.block_on(self.client.abort_multipart(&key, &id)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.failed("abort the upload of", &key, e)),
                }
            }
            self.forget(rt, &o.location)?;
        }
        Ok(())
    }

    /// Deletes the marker at `marker` (one already gone is fine).
    fn forget(&self, rt: &Runtime, marker: &Path) -> Result<(), TaskError> {
        match rt.block_on(self.client.delete(marker)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("delete", marker, e)),
        }
    }

    /// An I/O error of `action` on `key`, naming its URL.
    pub fn failed(&self, action: &str, key: &Path, e: object_store::Error) -> TaskError {
        TaskError::Io(format!(
            "file sink cannot {action} s3://{}/{key}: {e}",
            self.bucket
        ))
    }

    /// Completes pending upload `p` of `subtask`.
    pub fn complete(&self, rt: &Runtime, subtask: u16, p: &PendingUpload) -> Result<(), TaskError> {
        let key = self.key(subtask, p.n);
        let parts = p
            .parts
            .iter()
            .map(|c| PartId {
                content_id: c.clone(),
            })
            .collect();
        match rt.block_on(self.client.complete_multipart(&key, &p.id, parts)) {
            Ok(_) => return self.forget(rt, &self.marker(subtask, p.n)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.failed("complete the upload of", &key, e)),
        }
        // The upload is gone: done if it was completed before (a multipart object's entity
        // tag ends in `-<parts>`), lost otherwise.
        let suffix = format!("-{}", p.parts.len());
        match rt.block_on(self.client.head(&key)) {
            Ok(meta)
                if meta
                    .e_tag
                    .as_deref()
                    .is_some_and(|t| t.trim_matches('"').ends_with(&suffix)) =>
            {
                self.forget(rt, &self.marker(subtask, p.n))
            }
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                Err(TaskError::RestoredState(format!(
                    "file sink cannot commit part s3://{}/{key}: its upload {} no longer exists and the object there is not its result (was the upload aborted, or the output removed or overwritten?)",
                    self.bucket, p.id
                )))
            }
            Err(e) => Err(self.failed("check", &key, e)),
        }
    }

    /// The parts of `subtask` directly in the directory: number and key.
    pub fn parts(&self, rt: &Runtime, subtask: u16) -> Result<Vec<(u64, Path)>, TaskError> {
        let prefix = Path::from(self.dir.as_str());
        let listed = rt
            .block_on(self.client.list_with_delimiter(Some(&prefix)))
            .map_err(|e| self.failed("list", &prefix, e))?;
        let mine = format!("part-{subtask}-");
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|o| {
                let n = o.location.filename()?.strip_prefix(&mine)?.parse().ok()?;
                Some((n, o.location))
            })
            .collect())
    }

    /// Deletes the parts of `subtask` numbered `from` on: written after the restored
    /// checkpoint, their records are replayed.
    pub fn delete_from(&self, rt: &Runtime, subtask: u16, from: u64) -> Result<(), TaskError> {
        for (n, key) in self.parts(rt, subtask)? {
            if n < from {
                continue;
            }
            match rt.block_on(self.client.delete(&key)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("delete", &key, e)),
            }
        }
        Ok(())
    }
}
