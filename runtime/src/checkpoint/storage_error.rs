//! The errors of checkpoint storage: each names the URL or file concerned, never a
//! credential.

use crate::types::JobId;
use thiserror::Error;

/// Errors of checkpoint storage; each names the URL or file concerned.
#[derive(Debug, Error)]
pub enum StorageError {
    /// The checkpoint directory URL cannot be used.
    #[error("checkpoint storage URL '{url}': {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed (I/O, permissions, missing file).
    #[error("checkpoint storage {path}: {source}")]
    Store {
        /// The file or directory concerned.
        path: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// A stored file is not what it should be (bad checksum, truncated, wrong version,
    /// or it contradicts its metadata).
    #[error("checkpoint file {path} is unusable: {reason}")]
    Corrupt {
        /// The file concerned.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored file passed its checks (version, checksum, length) but does not hold what
    /// it should: written by an incompatible version of the state's format.
    #[error("checkpoint file {path} cannot be decoded: {reason}")]
    Undecodable {
        /// The file concerned.
        path: String,
        /// The decoder's error.
        reason: String,
    },
    /// A local file (being uploaded, or a download's target) cannot be used.
    #[error("cannot {action} local file {path}: {source}")]
    Local {
        /// The file.
        path: String,
        /// What was being done.
        action: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No retained checkpoint could be read.
    #[error("no usable checkpoint for job {job} in {url}: {reasons}")]
    NoUsableCheckpoint {
        /// The job.
        job: JobId,
        /// The storage URL.
        url: String,
        /// Why each candidate was rejected, newest first (empty when there were none).
        reasons: String,
    },
}
