//! The JobManager's artifact store: job programs, content-addressed by SHA-256.
//!
//! Invariants: a file under its digest's name is complete and hashes to that digest (an
//! upload goes to a hidden part file and is renamed only after its size and digest were
//! checked); nothing larger than the size limit is ever written; a digest names a file
//! only after [`ArtifactDigest`] checked it is 64 hex digits.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;
use weir_runtime::rpc::messages::{ArtifactDigest, ArtifactHasher};

/// Why an artifact cannot be stored or read.
#[derive(Debug, Error)]
pub enum ArtifactError {
    /// Larger than `jobmanager.artifacts.max-size`.
    #[error("artifact {digest} has {size} bytes, more than the limit of {limit} bytes (jobmanager.artifacts.max-size)")]
    TooLarge {
        /// The artifact.
        digest: ArtifactDigest,
        /// Its announced size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More bytes arrived than announced.
    #[error("artifact {digest}: more bytes arrived than the {size} announced")]
    Overflow {
        /// The artifact.
        digest: ArtifactDigest,
        /// The announced size.
        size: u64,
    },
    /// The bytes do not hash to the announced digest.
    #[error("artifact upload does not match its digest: announced {expected}, received bytes hash to {actual}")]
    DigestMismatch {
        /// The announced digest.
        expected: ArtifactDigest,
        /// What the bytes hash to.
        actual: String,
    },
    /// No artifact with this digest is stored.
    #[error("no artifact {0} is stored")]
    Unknown(ArtifactDigest),
    /// The file system failed.
    #[error("artifact store {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Artifacts stored in one directory.
pub struct ArtifactStore {
    dir: PathBuf,
    max_bytes: u64,
}

/// An upload in progress: a part file and the hash of what it holds.
pub struct Upload {
    digest: ArtifactDigest,
    size: u64,
    written: u64,
    part: PathBuf,
    file: File,
    hasher: ArtifactHasher,
    done: bool,
}

impl ArtifactStore {
    /// Opens (creating) the store in `dir`, accepting artifacts of at most `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, ArtifactError> {
        std::fs::create_dir_all(dir).map_err(|source| ArtifactError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes,
        })
    }

    /// Returns the file of artifact `digest` (which may not exist).
    pub fn path(&self, digest: &ArtifactDigest) -> PathBuf {
        self.dir.join(digest.as_str())
    }

    /// Returns whether artifact `digest` is stored.
    pub fn contains(&self, digest: &ArtifactDigest) -> bool {
        self.path(digest).is_file()
    }

    /// Opens stored artifact `digest` for reading.
    pub fn read(&self, digest: &ArtifactDigest) -> Result<File, ArtifactError> {
        File::open(self.path(digest)).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ArtifactError::Unknown(digest.clone())
            } else {
                ArtifactError::Io {
                    path: self.path(digest),
                    source,
                }
            }
        })
    }

    /// Starts storing artifact `digest` of `size` bytes.
    pub fn begin(&self, digest: ArtifactDigest, size: u64) -> Result<Upload, ArtifactError> {
        if size > self.max_bytes {
            return Err(ArtifactError::TooLarge {
                digest,
                size,
                limit: self.max_bytes,
            });
        }
        static UPLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let part = self.dir.join(format!(
            ".{}.{}-{}.part",
            digest,
            std::process::id(),
            UPLOADS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&part)
            .map_err(|source| ArtifactError::Io {
                path: part.clone(),
                source,
            })?;
        Ok(Upload {
            digest,
            size,
            written: 0,
            part,
            file,
            hasher: ArtifactHasher::default(),
            done: false,
        })
    }

    /// Adds `chunk` to `upload`; returns `true` once the artifact is complete, checked and
    /// stored. After an error the upload is void (its part file is deleted on drop).
    pub fn write(&self, upload: &mut Upload, chunk: &[u8]) -> Result<bool, ArtifactError> {
        if upload.written + chunk.len() as u64 > upload.size {
            return Err(ArtifactError::Overflow {
                digest: upload.digest.clone(),
                size: upload.size,
            });
        }
        let io = |source| ArtifactError::Io {
            path: upload.part.clone(),
            source,
        };
        upload.file.write_all(chunk).map_err(io)?;
        upload.hasher.update(chunk);
        upload.written += chunk.len() as u64;
        if upload.written < upload.size {
            return Ok(false);
        }
        upload.file.sync_all().map_err(io)?;
        let actual = std::mem::take(&mut upload.hasher).finish();
        if actual != upload.digest {
            return Err(ArtifactError::DigestMismatch {
                expected: upload.digest.clone(),
                actual: actual.to_string(),
            });
        }
        std::fs::rename(&upload.part, self.path(&upload.digest)).map_err(io)?;
        upload.done = true;
        Ok(true)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: u64) -> (tempfile::TempDir, ArtifactStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = ArtifactStore::open(dir.path(), max).unwrap();
        (dir, s)
    }

    #[test]
    fn an_artifact_is_stored_under_its_digest_once_every_byte_arrived() {
        let (_d, s) = store(1 << 20);
        let bytes = b"#!/bin/sh\necho job\n".repeat(100);
        let digest = ArtifactDigest::of(&bytes);
        let mut up = s.begin(digest.clone(), bytes.len() as u64).unwrap();
        let (a, b) = bytes.split_at(700);
        assert!(!s.write(&mut up, a).unwrap());
        assert!(!s.contains(&digest), "not visible before it is complete");
        assert!(s.write(&mut up, b).unwrap());
        assert_eq!(std::fs::read(s.path(&digest)).unwrap(), bytes);
    }

    #[test]
    fn an_artifact_over_the_size_limit_is_refused_before_any_byte_is_written() {
        let (d, s) = store(10);
        let err = s.begin(ArtifactDigest::of(b"x"), 11).err().unwrap();
        assert!(
            err.to_string().contains("jobmanager.artifacts.max-size"),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn bytes_that_do_not_hash_to_the_announced_digest_are_discarded() {
        let (d, s) = store(100);
        let digest = ArtifactDigest::of(b"the real program");
        let mut up = s.begin(digest.clone(), 4).unwrap();
        let err = s.write(&mut up, b"evil").unwrap_err();
        assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{err}");
        drop(up);
        assert!(!s.contains(&digest));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn more_bytes_than_announced_are_refused() {
        let (_d, s) = store(100);
        let mut up = s.begin(ArtifactDigest::of(b"ab"), 2).unwrap();
        assert!(matches!(
            s.write(&mut up, b"abc"),
            Err(ArtifactError::Overflow { .. })
        ));
    }
}
