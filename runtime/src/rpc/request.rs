//! The requests of a client connection (the `weir` CLI, or a TaskManager fetching an
//! artifact), each with the type of its answer.
//!
//! Every request is a type implementing [`Request`]; on the wire it travels inside the
//! [`ClientRequest`] envelope, and its answer is one frame holding a [`Reply`]: the
//! request's own [`Request::Response`], or a [`RemoteError`]. A client decodes the answer
//! as the reply of the request it sent, so it can never receive an answer of another kind.
//!
//! Two requests are answered differently: the pieces of an artifact upload
//! ([`ArtifactChunk`]) are answered only by the piece that completes it, and a fetch
//! ([`FetchArtifact`]) by one [`ArtifactPiece`] reply per piece, then [`ArtifactPiece::End`].
//!
//! Invariant: an error reply decodes as the reply of any request (`Err` carries no
//! response), so a server may answer a request it could not read with an error.

use super::messages::{ArtifactDigest, CheckpointSummary, JobSubmission, JobSummary};
use crate::graph::JobGraph;
use crate::types::JobId;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A client request and the type of its answer.
pub trait Request: Into<ClientRequest> {
    /// What a successful answer carries.
    type Response: Serialize + DeserializeOwned;
}

/// What kind of refusal or failure a [`RemoteError`] is, so that a client can act on it
/// (an exit status, an HTTP status) without reading the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RemoteErrorKind {
    /// The request names a job or artifact the JobManager does not have.
    NotFound,
    /// The request itself cannot be served as sent (an invalid job graph, an unusable
    /// savepoint, bytes that do not match their digest, a request out of order).
    Invalid,
    /// The job is not in a state that allows the request (not running yet, already ended,
    /// already stopping).
    Conflict,
    /// The JobManager cannot serve the request now (shutting down, no slots in time, a
    /// wait that ran out); the same request may succeed later.
    Unavailable,
    /// The JobManager failed while serving the request (storage, a thread, a worker).
    Internal,
}

/// Why the JobManager refused or failed a request; the message names what is concerned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// What kind of error it is.
    pub kind: RemoteErrorKind,
    /// What went wrong.
    pub message: String,
}

impl RemoteError {
    /// An error of `kind` with `message`.
    pub fn new(kind: RemoteErrorKind, message: impl ToString) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }
}

/// The answer to request `R` as it travels.
pub type Reply<R> = Result<<R as Request>::Response, RemoteError>;

/// Announces an artifact upload; answers whether it is stored already (then send no
/// pieces).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PutArtifact {
    /// Its content address.
    pub digest: ArtifactDigest,
    /// Its size in bytes.
    pub size: u64,
}

/// The next piece of the announced artifact; only the piece that completes it is
/// answered, once the artifact is stored and its digest checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ArtifactChunk(#[serde(with = "serde_bytes")] pub Vec<u8>);

/// Asks for a stored artifact: answered by one [`ArtifactPiece`] per piece, then its end.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FetchArtifact(pub ArtifactDigest);

/// One answer to a [`FetchArtifact`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum ArtifactPiece {
    /// The next bytes.
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The artifact is complete.
    End,
}

/// Submits a job whose artifact is stored; answers its id.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Submit(pub Box<JobSubmission>);

/// Lists every job the JobManager knows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ListJobs;

/// Describes one job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobInfo(pub JobId);

/// Cancels a job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Cancel(pub JobId);

/// Takes a savepoint of a running job (and with `stop` stops it afterwards); answers the
/// savepoint's URL.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriggerSavepoint {
    /// The job.
    pub job: JobId,
    /// Where (a path or URL; `None`: the job's `state.savepoints.dir`).
    pub dir: Option<String>,
    /// Stop the job once the savepoint completed.
    pub stop: bool,
    /// With `stop`: emit the final watermark before the savepoint, so every event-time
    /// window fires (`weir stop --drain`).
    pub drain: bool,
}

/// Triggers a checkpoint of a running job; answers its location once it completed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TriggerCheckpoint(pub JobId);

/// Asks for a job's graph (its plan: vertices, parallelism, exchanges, settings).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobGraphOf(pub JobId);

/// Lists a job's completed checkpoints, oldest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checkpoints(pub JobId);

/// Waits up to `timeout_ms` for a job to end; answers its summary in any case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WaitJob {
    /// The job.
    pub job: JobId,
    /// The longest wait.
    pub timeout_ms: u64,
}

/// Marks an upload stored (the answer to the piece completing it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactStored;

macro_rules! requests {
    ($($variant:ident($request:ty) -> $response:ty;)*) => {
        /// Every client request, as it travels.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum ClientRequest {
            $(
                #[doc = concat!("A [`", stringify!($request), "`].")]
                $variant($request),
            )*
        }

        $(
            impl From<$request> for ClientRequest {
                fn from(r: $request) -> Self {
                    ClientRequest::$variant(r)
                }
            }

            impl Request for $request {
                type Response = $response;
            }
        )*
    };
}

requests! {
    PutArtifact(PutArtifact) -> bool;
    ArtifactChunk(ArtifactChunk) -> ArtifactStored;
    FetchArtifact(FetchArtifact) -> ArtifactPiece;
    Submit(Submit) -> JobId;
    ListJobs(ListJobs) -> Vec<JobSummary>;
    JobInfo(JobInfo) -> JobSummary;
    Cancel(Cancel) -> ();
    Savepoint(TriggerSavepoint) -> String;
    Checkpoints(Checkpoints) -> Vec<CheckpointSummary>;
    WaitJob(WaitJob) -> JobSummary;
    Checkpoint(TriggerCheckpoint) -> String;
    Plan(JobGraphOf) -> JobGraph;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reply_decodes_as_the_reply_of_any_request() {
        let sent: Reply<Cancel> = Err(RemoteError::new(
            RemoteErrorKind::NotFound,
            "unknown job 00000000000000ff",
        ));
        let mut bytes = Vec::new();
        weir_state_backends::encode_into(&sent, &mut bytes).unwrap();
        let (got, _): (Reply<ListJobs>, usize) = weir_state_backends::decode_from(&bytes).unwrap();
        let got = got.unwrap_err();
        assert_eq!(got.kind, RemoteErrorKind::NotFound);
        assert_eq!(got.message, "unknown job 00000000000000ff");
    }

    #[test]
    fn a_request_round_trips_in_its_envelope() {
        let request: ClientRequest = WaitJob {
            job: JobId(7),
            timeout_ms: 9,
        }
        .into();
        let mut bytes = Vec::new();
        weir_state_backends::encode_into(&request, &mut bytes).unwrap();
        let (back, _): (ClientRequest, usize) = weir_state_backends::decode_from(&bytes).unwrap();
        assert!(matches!(
            back,
            ClientRequest::WaitJob(WaitJob {
                job: JobId(7),
                timeout_ms: 9
            })
        ));
    }
}
