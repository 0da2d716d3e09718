//! What a transactional [`super::FileSink`] subtask stores in a checkpoint: its part
//! counter and the parts pre-committed but not yet visible, with where they were written
//! (a local directory, or an `s3://` URL with each part's multipart upload), so that a
//! restore commits them there even when the output location changed.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use weir_runtime::TaskError;

/// A part on S3 closed but not yet visible: an uncompleted multipart upload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct PendingUpload {
    /// The part number.
    pub n: u64,
    /// The upload id.
    pub id: String,
    /// The ids (entity tags) of its parts, in order.
    pub parts: Vec<String>,
}

/// One subtask's file sink state.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum PartsState {
    /// Parts in a local directory.
    Local {
        /// The subtask whose part files these are.
        subtask: u16,
        /// The next part number.
        next_part: u64,
        /// Parts pre-committed and not yet visible.
        pending: Vec<u64>,
        /// The directory the parts are in, absolute.
        dir: PathBuf,
    },
    /// Parts on S3.
    Object {
        /// The subtask whose parts these are.
        subtask: u16,
        /// The next part number.
        next_part: u64,
        /// Uploads pre-committed and not yet completed.
        pending: Vec<PendingUpload>,
        /// The output URL (`s3://bucket/dir`) the parts are under.
        url: String,
    },
}

impl PartsState {
    /// Encodes the state for a checkpoint.
    pub fn encode(&self) -> Result<Vec<u8>, TaskError> {
        let mut out = Vec::new();
        weir_state_backends::encode_into(self, &mut out).map_err(|e| {
            TaskError::Checkpoint(format!("file sink cannot encode its state: {e}"))
        })?;
        Ok(out)
    }

    /// Where the parts were written, for messages.
    fn written_to(&self) -> String {
        match self {
            Self::Local { dir, .. } => format!("the local directory {}", dir.display()),
            Self::Object { url, .. } => url.clone(),
        }
    }

    fn mismatch(&self, into: &str) -> TaskError {
        TaskError::RestoredState(format!(
            "file sink into {into}: the restored state's parts were written to {}; a file sink restores only into the same kind of storage",
            self.written_to()
        ))
    }

    /// The fields of a local state (subtask, next part, pending parts, directory); a state
    /// of parts on S3 is an error naming `into`, the sink's output.
    pub fn into_local(self, into: &str) -> Result<(u16, u64, Vec<u64>, PathBuf), TaskError> {
        match self {
            Self::Local {
                subtask,
                next_part,
                pending,
                dir,
            } => Ok((subtask, next_part, pending, dir)),
            other => Err(other.mismatch(into)),
        }
    }

    /// The fields of a state of parts on S3 (subtask, next part, pending uploads, URL); a
    /// local state is an error naming `into`, the sink's output.
    pub fn into_object(
        self,
        into: &str,
    ) -> Result<(u16, u64, Vec<PendingUpload>, String), TaskError> {
        match self {
            Self::Object {
                subtask,
                next_part,
                pending,
                url,
            } => Ok((subtask, next_part, pending, url)),
            other => Err(other.mismatch(into)),
        }
    }

    /// Decodes a restored state.
    pub fn decode(bytes: &[u8]) -> Result<Self, TaskError> {
        let (state, _): (Self, usize) = weir_state_backends::decode_from(bytes).map_err(|e| {
            TaskError::RestoredState(format!("file sink cannot decode its state: {e}"))
        })?;
        Ok(state)
    }
}
