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
//!   counter on are deleted, so each record is in exactly one visible part; their uploads
//!   still open (begun after the checkpoint) are aborted, found by their markers.
//! - Without checkpointing every part is completed when it closes. A job that starts
//!   without state numbers its parts from 0, replacing objects of the same names, as the
//!   local sink replaces files.
//! - An upload whose marker is lost with its job (a job never restored, a failed marker
//!   write) costs storage until the bucket's lifecycle rule for incomplete multipart uploads
//!   (`AbortIncompleteMultipartUpload`) removes it: set one on the bucket.
//! - The state names the URL its parts were written under, so a job restored with another
//!   output directory completes the earlier parts where they were written.

use super::file::Formatter;
use super::part_dir::PartDir;
use super::parts_state::{PartsState, PendingUpload};
use super::pending_parts::PendingParts;
use super::{SinkContext, SinkWriter};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::PutPayload;
use weir_runtime::checkpoint::PART_SIZE;
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
    out: PartDir,
    runtime: tokio::runtime::Runtime,
    format: Formatter<T>,
    max_part_size: u64,
    subtask: u16,
    next_part: u64,
    current: Option<OpenUpload>,
    line: String,
    transactional: bool,
    parts: PendingParts<PendingUpload>,
}

impl<T> ObjectFileWriter<T> {
    /// The writer of `ctx`'s subtask into `url`; checks the bucket can be listed.
    pub(super) fn new(
        url: &str,
        format: Formatter<T>,
        max_part_size: u64,
        ctx: &SinkContext,
    ) -> Result<Self, TaskError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TaskError::Io(format!("file sink cannot start its I/O runtime: {e}")))?;
        Ok(Self {
            url: url.trim_end_matches('/').to_string(),
            out: PartDir::open(url, &runtime)?,
            runtime,
            format,
            max_part_size,
            subtask: ctx.subtask,
            next_part: 0,
            current: None,
            line: String::new(),
            transactional: ctx.checkpointing,
            parts: PendingParts::new(),
        })
    }

    fn open_part(&mut self) -> Result<OpenUpload, TaskError> {
        let n = self.next_part;
        let key = self.out.key(self.subtask, n);
        let id = self.out.start(&self.runtime, self.subtask, n)?;
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
            .block_on(
                self.out
                    .client
                    .put_part(&up.key, &up.id, up.parts.len(), data),
            )
            .map_err(|e| self.out.failed("upload a part of", &up.key, e))?;
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
            self.parts.close(done);
            Ok(())
        } else {
            self.out.complete(&self.runtime, self.subtask, &done)
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
        PartsState::Object {
            subtask: self.subtask,
            next_part: self.next_part,
            pending: self.parts.pre_commit(checkpoint),
            url: self.url.clone(),
        }
        .encode()
        .map(Some)
    }

    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        for p in self.parts.ready(checkpoint) {
            self.out.complete(&self.runtime, self.subtask, &p)?;
        }
        Ok(())
    }

    /// A start without restored state (a new job, or a restart before any checkpoint
    /// completed): the uploads an earlier attempt left open are aborted.
    fn start_without_state(&mut self) -> Result<(), TaskError> {
        self.out.abort_from(&self.runtime, self.subtask, 0)
    }

    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let mut own_next = None;
        for bytes in states {
            let legacy = std::path::Path::new(&self.url);
            let (subtask, next_part, pending, url) =
                PartsState::decode(&bytes, legacy)?.into_object(&self.url)?;
            // The parts are where they were written, even if the output location changed.
            let elsewhere = if url == self.url {
                None
            } else {
                Some(PartDir::open(&url, &self.runtime)?)
            };
            let dir = elsewhere.as_ref().unwrap_or(&self.out);
            for p in &pending {
                dir.complete(&self.runtime, subtask, p)?;
            }
            dir.abort_from(&self.runtime, subtask, next_part)?;
            dir.delete_from(&self.runtime, subtask, next_part)?;
            if subtask == self.subtask && url == self.url {
                own_next = Some(next_part);
            }
        }
        // A subtask without state of its own here goes on after the parts its index
        // already has (completed by an earlier run), so none is overwritten.
        self.next_part = match own_next {
            Some(n) => n,
            None => self
                .out
                .parts(&self.runtime, self.subtask)?
                .iter()
                .map(|(n, _)| n + 1)
                .max()
                .unwrap_or(0),
        };
        Ok(())
    }
}
