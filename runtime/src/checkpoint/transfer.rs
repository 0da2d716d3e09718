//! Streaming transfers between local disk and checkpoint storage: a shared state file (a
//! RocksDB SST file) uploads from its local file part by part and downloads into a local
//! file chunk by chunk, a large state file is put as a multipart upload, and a keyed state
//! file is decoded as it streams in, so no file is held whole in memory on its way from the
//! store. On its way to the store, a state file streamed from a RocksDB full snapshot is
//! encoded into a local spool file and uploaded from there (its header, with the
//! checksum, comes first but is known last); other state files are encoded in memory.
//!
//! Invariants:
//! - a file larger than [`PART_SIZE`] is a multipart upload of parts of that size (S3's
//!   minimum is 5 MiB), at most [`PARTS_IN_FLIGHT`] of them uploading at once; a smaller
//!   one is a single put; either way the object appears whole or not at all (a failed
//!   multipart upload is aborted);
//! - a download's size and crc32 are checked against the metadata as it streams, and a
//!   download that does not match is deleted, never used;
//! - a full snapshot's state file is decoded as it streams in, and its value is used only
//!   once version, checksum and size matched.

use super::metadata::SubtaskStateHandle;
use super::storage::{CheckpointStorage, StorageError};
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use std::io::{Read, Write};
use tokio::io::AsyncWriteExt;
use weir_state_backends::SharedStateFile;

/// Size of one part of a multipart upload: 8 MiB.
pub const PART_SIZE: usize = 8 << 20;

/// Parts of one file uploading at once.
pub const PARTS_IN_FLIGHT: usize = 2;

/// Bytes of a streamed state file buffered ahead of its decoder.
const STREAM_BUFFER: usize = 256 * 1024;

/// A local file that cannot be read or written, named.
fn local(action: &str, path: &std::path::Path, e: std::io::Error) -> StorageError {
    StorageError::Local {
        path: path.display().to_string(),
        action: action.to_string(),
        source: e,
    }
}

/// A blocking reader over the chunks of a GET, driven on the storage's runtime; the
/// store's error, if one ends the stream, is kept for the caller.
struct ChunkReader<'a> {
    rt: &'a tokio::runtime::Runtime,
    chunks: futures::stream::BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
    error: Option<object_store::Error>,
    /// The stream ended (it is not polled again).
    done: bool,
}

impl Read for ChunkReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rt.block_on(self.chunks.try_next()) {
                Ok(Some(chunk)) => self.current = chunk,
                Ok(None) => self.done = true,
                Err(e) => {
                    let message = e.to_string();
                    self.error = Some(e);
                    self.done = true;
                    return Err(std::io::Error::other(message));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl CheckpointStorage {
    /// Uploads the local file `from` to `path` (relative to the root) in parts, and returns
    /// its size and crc32.
    pub fn upload_file(
        &self,
        path: &str,
        from: &std::path::Path,
    ) -> Result<(u64, u32), StorageError> {
        self.upload_after(&Path::from(path), Vec::new(), from)
    }

    /// Uploads `head` followed by the local file `from` to `path`, the file in parts, and
    /// returns the size and crc32 of what was uploaded.
    fn upload_after(
        &self,
        path: &Path,
        head: Vec<u8>,
        from: &std::path::Path,
    ) -> Result<(u64, u32), StorageError> {
        let mut file = std::fs::File::open(from).map_err(|e| local("open", from, e))?;
        let mut hasher = crc32fast::Hasher::new();
        let mut size = 0u64;
        let mut head = Some(head);
        self.upload(path, || {
            let mut part = head.take().unwrap_or_default();
            part.reserve(PART_SIZE);
            let n = (&mut file)
                .take(PART_SIZE as u64)
                .read_to_end(&mut part)
                .map_err(|e| local("read", from, e))?;
            hasher.update(&part);
            size += part.len() as u64;
            Ok((n > 0 || !part.is_empty()).then(|| Bytes::from(part)))
        })?;
        Ok((size, hasher.finalize()))
    }

    /// Writes the state file of one subtask (`file` names it inside the checkpoint
    /// directory) from `value`, encoded on its way into the local file `spool` and
    /// uploaded from there in parts, so the encoding is never held in memory; returns its
    /// handle, with the covered key groups. The file reads back like one written by
    /// [`Self::write_state`] with `value`'s encoding. `spool` is deleted afterwards.
    pub fn write_state_streamed<T: serde::Serialize>(
        &self,
        (job, checkpoint): (crate::types::JobId, crate::types::CheckpointId),
        file: &str,
        subtask: u16,
        key_groups: (u16, u16),
        value: &T,
        spool: &std::path::Path,
    ) -> Result<SubtaskStateHandle, StorageError> {
        let path = super::storage::chk_dir(job, checkpoint).join(file);
        let written = std::fs::File::create(spool)
            .map_err(|e| local("create", spool, e))
            .and_then(|out| {
                let out = std::io::BufWriter::with_capacity(STREAM_BUFFER, out);
                weir_state_backends::encode_versioned_nested_to(value, out)
                    .map_err(|e| local("encode the state into", spool, std::io::Error::other(e)))
            })
            .and_then(|head| self.upload_after(&path, head, spool));
        let _ = std::fs::remove_file(spool);
        let (size, _) = written?;
        Ok(SubtaskStateHandle::new(file, subtask, size, key_groups))
    }

    /// Writes `bytes` to `path` as a multipart upload of [`PART_SIZE`] parts.
    pub(super) fn put_in_parts(&self, path: &Path, bytes: Vec<u8>) -> Result<(), StorageError> {
        let mut bytes = Some(Bytes::from(bytes));
        self.upload(path, || Ok(bytes.take()))
    }

    /// Uploads what `next` yields, chunk after chunk until `None`, to `path`: one put when
    /// it all fits in a part, else a multipart upload, aborted if anything fails.
    fn upload(
        &self,
        path: &Path,
        mut next: impl FnMut() -> Result<Option<Bytes>, StorageError>,
    ) -> Result<(), StorageError> {
        let store_err = self.store_err(path);
        self.rt().block_on(async {
            let mut writer =
                BufWriter::with_capacity(self.store().clone(), path.clone(), PART_SIZE)
                    .with_max_concurrency(PARTS_IN_FLIGHT);
            let sent = async {
                while let Some(chunk) = next()? {
                    writer.put(chunk).await.map_err(&store_err)?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = sent {
                // Parts already uploaded are deleted; the object never appears.
                let _ = writer.abort().await;
                return Err(e);
            }
            // A failed shutdown (the last put, or the completion) has aborted its multipart
            // upload itself; the writer cannot be aborted again.
            writer.shutdown().await.map_err(|e| {
                store_err(object_store::Error::Generic {
                    store: "multipart upload",
                    source: Box::new(e),
                })
            })
        })
    }

    /// Reads the state file of `handle` in the snapshot directory `dir` and decodes the
    /// value its state bytes hold as they stream in (version, checksum and size checked),
    /// never holding the file in memory.
    pub fn read_state_streamed<T: serde::de::DeserializeOwned>(
        &self,
        dir: &str,
        handle: &SubtaskStateHandle,
    ) -> Result<T, StorageError> {
        let path = Path::from(dir).join(handle.file.as_str());
        let store_err = self.store_err(&path);
        let got = self
            .rt()
            .block_on(self.store().get(&path))
            .map_err(&store_err)?;
        // A file of another size is refused before any of it reaches the decoder.
        self.check_size(&path, got.meta.size, handle.size)?;
        let mut chunks = ChunkReader {
            rt: self.rt(),
            chunks: got.into_stream(),
            current: Bytes::new(),
            error: None,
            done: false,
        };
        let name = self.name(&path);
        let decoded = weir_state_backends::decode_versioned_nested_from::<T>(
            std::io::BufReader::with_capacity(STREAM_BUFFER, &mut chunks),
            &name,
        );
        if let Some(e) = chunks.error.take() {
            return Err(store_err(e));
        }
        let (value, size) = decoded.map_err(|e| match e {
            weir_state_backends::CodecError::Decode { .. } => StorageError::Undecodable {
                path: name.clone(),
                reason: e.to_string(),
            },
            other => StorageError::Corrupt {
                path: name.clone(),
                reason: other.to_string(),
            },
        })?;
        self.check_size(&path, size, handle.size)?;
        Ok(value)
    }

    /// Downloads shared file `file` into the local file `to` chunk by chunk, checking its
    /// size and crc32; a download that does not match is deleted and reported.
    pub fn download_shared(
        &self,
        file: &SharedStateFile,
        to: &std::path::Path,
    ) -> Result<(), StorageError> {
        let source = Path::from(file.path.as_str());
        let mut out = std::fs::File::create(to).map_err(|e| local("create", to, e))?;
        let mut hasher = crc32fast::Hasher::new();
        let mut size = 0u64;
        let store_err = self.store_err(&source);
        let received = self.rt().block_on(async {
            let mut chunks = self
                .store()
                .get(&source)
                .await
                .map_err(&store_err)?
                .into_stream();
            while let Some(chunk) = chunks.try_next().await.map_err(&store_err)? {
                hasher.update(&chunk);
                size += chunk.len() as u64;
                out.write_all(&chunk).map_err(|e| local("write", to, e))?;
            }
            out.sync_all().map_err(|e| local("sync", to, e))
        });
        let checked = received.and_then(|()| {
            self.check_size(&source, size, file.size)?;
            let checksum = hasher.finalize();
            if checksum == file.checksum {
                return Ok(());
            }
            Err(StorageError::Corrupt {
                path: self.name(&source),
                reason: format!(
                    "crc32 {checksum:#010x}, but the metadata says {:#010x}",
                    file.checksum
                ),
            })
        });
        if checked.is_err() {
            let _ = std::fs::remove_file(to);
        }
        checked
    }
}
