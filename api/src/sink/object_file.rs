//! The [`super::FileSink`] on S3 (`s3://bucket/dir`): part files as multipart uploads that
//! become visible only when their checkpoint completes, as Flink's recoverable writer on
//! S3 does. No rename is needed: an object exists once its upload is completed.
//!
//! Invariants:
//! - Subtask `s` writes the objects `dir/part-<s>-0`, `dir/part-<s>-1`, ...; a part is one
//!   multipart upload, its lines sent in parts of [`PART_SIZE`] as they fill (S3's minimum
//!   is 5 MiB; the last part may be smaller), so at most one part of a subtask's output is
//!   in memory.
//! - With checkpointing, a part closed by size or by a barrier stays an uncompleted upload
//!   (invisible) whose key, upload id and part ids are in the checkpoint; the checkpoint's
//!   completion completes it. After a restart the restored pending uploads are completed
//!   (one already completed counts as done), and visible parts numbered from the restored
//!   counter on are deleted, so each record is in exactly one visible part. An upload begun
//!   after the restored checkpoint is never completed: it stays invisible until the
//!   bucket's lifecycle rule for incomplete multipart uploads removes it.
//! - Without checkpointing every part is completed when it closes.
//! - The state names the URL its parts were written under, so a job restored with another
//!   output directory completes the earlier parts where they were written.

use super::file::Formatter;
use super::parts_state::{PartsState, PendingUpload};
use super::{SinkContext, SinkWriter};
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;
use weir_runtime::checkpoint::{S3Location, PART_SIZE};
use weir_runtime::{CheckpointId, TaskError, Timestamp};

/// The upload a subtask is writing.
struct OpenUpload {
    n: u64,
    key: Path,
    id: String,
    parts: Vec<PartId>,
    /// Lines not yet sent (less than a part).
    buffer: Vec<u8>,
    written: u64,
}

pub(super) struct ObjectFileWriter<T> {
    url: String,
    bucket: String,
    client: Arc<AmazonS3>,
    /// The path of the output directory inside the bucket.
    dir: String,
    runtime: tokio::runtime::Runtime,
    format: Formatter<T>,
    max_part_size: u64,
    subtask: u16,
    next_part: u64,
    current: Option<OpenUpload>,
    line: String,
    transactional: bool,
    closed: Vec<PendingUpload>,
    pending: Vec<(CheckpointId, PendingUpload)>,
}

fn key(dir: &str, subtask: u16, n: u64) -> Path {
    Path::from(format!("{dir}/part-{subtask}-{n}"))
}

/// The part number of object `name` (a file name) of `subtask`.
fn part_number(name: &str, subtask: u16) -> Option<u64> {
    name.strip_prefix(&format!("part-{subtask}-"))?.parse().ok()
}

impl<T> ObjectFileWriter<T> {
    /// The writer of `ctx`'s subtask into `url`; checks the bucket can be listed.
    pub(super) fn new(
        url: &str,
        format: Formatter<T>,
        max_part_size: u64,
        ctx: &SinkContext,
    ) -> Result<Self, TaskError> {
        let io = |e: weir_runtime::checkpoint::StorageError| {
            TaskError::Io(format!("file sink cannot write to {url}: {e}"))
        };
        let location = S3Location::new(url).map_err(io)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TaskError::Io(format!("file sink cannot start its I/O runtime: {e}")))?;
        location.check(url, false, &runtime).map_err(io)?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            bucket: location.bucket,
            client: location.client,
            dir: location.path,
            runtime,
            format,
            max_part_size,
            subtask: ctx.subtask,
            next_part: 0,
            current: None,
            line: String::new(),
            transactional: ctx.checkpointing,
            closed: Vec::new(),
            pending: Vec::new(),
        })
    }

    fn failed(&self, action: &str, key: &Path, e: object_store::Error) -> TaskError {
        TaskError::Io(format!(
            "file sink cannot {action} s3://{}/{key}: {e}",
            self.bucket
        ))
    }

    fn open_part(&mut self) -> Result<OpenUpload, TaskError> {
        let n = self.next_part;
        let key = key(&self.dir, self.subtask, n);
        let id = self
            .runtime
            .block_on(self.client.create_multipart(&key))
            .map_err(|e| self.failed("start an upload of", &key, e))?;
        self.next_part += 1;
        Ok(OpenUpload {
            n,
            key,
            id,
            parts: Vec::new(),
            buffer: Vec::with_capacity(PART_SIZE),
            written: 0,
        })
    }

    /// Sends the buffered lines of `up` as its next part.
    fn send(&self, up: &mut OpenUpload) -> Result<(), TaskError> {
        let data = PutPayload::from(std::mem::replace(
            &mut up.buffer,
            Vec::with_capacity(PART_SIZE),
        ));
        let part = self
            .runtime
            .block_on(self.client.put_part(&up.key, &up.id, up.parts.len(), data))
            .map_err(|e| self.failed("upload a part of", &up.key, e))?;
        up.parts.push(part);
        Ok(())
    }

    /// Sends what is left of the current part; it is pending when transactional, else
    /// completed at once.
    fn close_part(&mut self) -> Result<(), TaskError> {
        let Some(mut up) = self.current.take() else {
            return Ok(());
        };
        if !up.buffer.is_empty() || up.parts.is_empty() {
            self.send(&mut up)?;
        }
        let done = PendingUpload {
            n: up.n,
            id: up.id,
            parts: up.parts.into_iter().map(|p| p.content_id).collect(),
        };
        if self.transactional {
            self.closed.push(done);
            Ok(())
        } else {
            self.complete(&self.dir, self.subtask, &done)
        }
    }
}

impl<T> SinkWriter<T> for ObjectFileWriter<T> {
    fn write(&mut self, value: T, _ts: Timestamp) -> Result<(), TaskError> {
        self.line.clear();
        (self.format)(&value, &mut self.line);
        self.line.push('\n');
        if self.current.is_none() {
            self.current = Some(self.open_part()?);
        }
        let mut up = self.current.take().expect("an upload is open");
        up.buffer.extend_from_slice(self.line.as_bytes());
        up.written += self.line.len() as u64;
        if up.buffer.len() >= PART_SIZE {
            self.send(&mut up)?;
        }
        let full = up.written >= self.max_part_size;
        self.current = Some(up);
        if full {
            self.close_part()?;
        }
        Ok(())
    }

    /// Closes the last part: without checkpointing that completes it; with, the job's
    /// final checkpoint covers it and its completion completes it.
    fn finish(&mut self) -> Result<(), TaskError> {
        self.close_part()
    }

    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        if !self.transactional {
            return Ok(None);
        }
        self.close_part()?;
        for p in std::mem::take(&mut self.closed) {
            self.pending.push((checkpoint, p));
        }
        PartsState::Object {
            subtask: self.subtask,
            next_part: self.next_part,
            pending: self.pending.iter().map(|(_, p)| p.clone()).collect(),
            url: self.url.clone(),
        }
        .encode()
        .map(Some)
    }

    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(c, _)| *c <= checkpoint);
        self.pending = waiting;
        for (_, p) in ready {
            self.complete(&self.dir, self.subtask, &p)?;
        }
        Ok(())
    }

    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let mut own_next = None;
        for bytes in states {
            let (subtask, next_part, pending, url) =
                PartsState::decode(&bytes)?.into_object(&self.url)?;
            let dir = weir_runtime::checkpoint::split_s3_url(&url)
                .map(|(_, d)| d.to_string())
                .unwrap_or_default();
            for p in &pending {
                self.complete(&dir, subtask, p)?;
            }
            self.delete_from(&dir, subtask, next_part)?;
            if subtask == self.subtask && url == self.url {
                own_next = Some(next_part);
            }
        }
        self.next_part = match own_next {
            Some(n) => n,
            None => self
                .parts(&self.dir, self.subtask)?
                .iter()
                .map(|(n, _)| n + 1)
                .max()
                .unwrap_or(0),
        };
        Ok(())
    }
}

impl<T> ObjectFileWriter<T> {
    /// Completes pending upload `p` of `subtask` in `dir` (an object already there counts
    /// as done: its upload was completed before).
    fn complete(&self, dir: &str, subtask: u16, p: &PendingUpload) -> Result<(), TaskError> {
        let key = key(dir, subtask, p.n);
        let parts = p
            .parts
            .iter()
            .map(|c| PartId {
                content_id: c.clone(),
            })
            .collect();
        let completed = self
            .runtime
            .block_on(self.client.complete_multipart(&key, &p.id, parts));
        let Err(e) = completed else { return Ok(()) };
        if self.runtime.block_on(self.client.head(&key)).is_ok() {
            return Ok(());
        }
        Err(TaskError::RestoredState(format!(
            "file sink cannot commit part s3://{}/{key}: its upload can no longer be completed and the object does not exist (was the upload aborted or the output removed?): {e}",
            self.bucket
        )))
    }

    /// The visible parts of `subtask` in `dir`: number and key.
    fn parts(&self, dir: &str, subtask: u16) -> Result<Vec<(u64, Path)>, TaskError> {
        use futures::TryStreamExt;
        let prefix = Path::from(dir);
        let objects: Vec<_> = self
            .runtime
            .block_on(self.client.list(Some(&prefix)).try_collect())
            .map_err(|e| self.failed("list", &prefix, e))?;
        Ok(objects
            .into_iter()
            .filter_map(|o| {
                let n = part_number(o.location.filename()?, subtask)?;
                Some((n, o.location))
            })
            .collect())
    }

    /// Deletes the visible parts of `subtask` in `dir` numbered `from` on: written after
    /// the restored checkpoint, their records are replayed.
    fn delete_from(&self, dir: &str, subtask: u16, from: u64) -> Result<(), TaskError> {
        for (n, key) in self.parts(dir, subtask)? {
            if n < from {
                continue;
            }
            match self.runtime.block_on(self.client.delete(&key)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.failed("delete", &key, e)),
            }
        }
        Ok(())
    }
}
