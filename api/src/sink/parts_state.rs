//! What a transactional [`super::FileSink`] subtask stores in a checkpoint: its part
//! counter and the parts pre-committed but not yet visible, with where they were written
//! (a local directory, or an `s3://` URL with each part's multipart upload), so that a
//! restore commits them there even when the output location changed.
//!
//! Invariant: the state starts with [`MARK`] and a format version; a state without the
//! mark is the earlier format (a local sink's counter and pending parts, no directory),
//! which no state with the mark can be mistaken for: the earlier format starts with a
//! subtask index, and bincode never encodes a `u16` with that first byte.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use weir_runtime::TaskError;

/// The first byte of the state: bincode's marker of a `u64` varint, which cannot begin the
/// `u16` that the earlier format starts with.
const MARK: u8 = 0xfd;

/// The format of the state after [`MARK`].
const VERSION: u8 = 1;

/// The earlier local state, without the directory.
#[derive(Deserialize)]
struct Earlier {
    subtask: u16,
    next_part: u64,
    pending: Vec<u64>,
}

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
        let mut out = vec![MARK, VERSION];
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

    /// Decodes a restored state; one of the earlier format is a local state of parts in
    /// `earlier_dir` (the sink's own directory).
    pub fn decode(bytes: &[u8], earlier_dir: &Path) -> Result<Self, TaskError> {
        let bad = |e: &dyn std::fmt::Display| {
            TaskError::RestoredState(format!("file sink cannot decode its state: {e}"))
        };
        match bytes {
            [MARK, VERSION, rest @ ..] => {
                let (state, _): (Self, usize) =
                    weir_state_backends::decode_from(rest).map_err(|e| bad(&e))?;
                Ok(state)
            }
            [MARK, v, ..] => Err(bad(&format!(
                "format version {v}, but this Weir reads version {VERSION}"
            ))),
            _ => {
                let (e, _): (Earlier, usize) =
                    weir_state_backends::decode_from(bytes).map_err(|e| bad(&e))?;
                Ok(Self::Local {
                    subtask: e.subtask,
                    next_part: e.next_part,
                    pending: e.pending,
                    dir: earlier_dir.to_path_buf(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct EarlierOut {
        subtask: u16,
        next_part: u64,
        pending: Vec<u64>,
    }

    #[test]
    fn a_state_of_the_earlier_format_decodes_as_parts_in_the_sinks_directory() {
        for subtask in [0u16, 7, 250, 251, 300, u16::MAX] {
            let mut bytes = Vec::new();
            let earlier = EarlierOut {
                subtask,
                next_part: 9,
                pending: vec![7, 8],
            };
            weir_state_backends::encode_into(&earlier, &mut bytes).unwrap();
            assert_ne!(bytes[0], MARK);
            let state = PartsState::decode(&bytes, Path::new("/out")).unwrap();
            let (s, next, pending, dir) = state.into_local("/out").unwrap();
            assert_eq!(
                (s, next, pending, dir),
                (subtask, 9, vec![7, 8], "/out".into())
            );
        }
    }

    #[test]
    fn a_state_round_trips_and_another_kind_or_version_is_refused_naming_it() {
        let state = PartsState::Object {
            subtask: 1,
            next_part: 3,
            pending: vec![PendingUpload {
                n: 2,
                id: "upload".into(),
                parts: vec!["\"e1\"".into()],
            }],
            url: "s3://weir/out".into(),
        };
        let bytes = state.encode().unwrap();
        let back = PartsState::decode(&bytes, Path::new("/x")).unwrap();
        let e = back.into_local("/x").unwrap_err().to_string();
        assert!(e.contains("s3://weir/out") && e.contains("/x"), "{e}");
        let mut future = bytes.clone();
        future[1] = 9;
        let e = PartsState::decode(&future, Path::new("/x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("format version 9"), "{e}");
    }
}
