//! The JobManager's side of a client connection: each typed request gets the reply of its
//! own type ([`weir_runtime::rpc::Reply`]).
//!
//! Invariants: an artifact upload is one [`PutArtifact`] followed only by its pieces (any
//! other request interrupts and discards it); a request that panics or is refused is
//! answered with a [`RemoteError`], never left unanswered; requests that wait (a savepoint,
//! a job's end) run on blocking threads.

use super::artifacts::Upload;
use super::{Cluster, ClusterError};
use crate::{JobManagerError, TriggerRequest};
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use weir_runtime::rpc::messages::{ArtifactDigest, JobStatus, ARTIFACT_CHUNK_BYTES};
use weir_runtime::rpc::request::{
    ArtifactChunk, ArtifactPiece, ArtifactStored, Cancel, Checkpoints, FetchArtifact, JobGraphOf,
    JobInfo, ListJobs, PutArtifact, Submit, TriggerCheckpoint, TriggerSavepoint, WaitJob,
};
use weir_runtime::rpc::ControlStream;
use weir_runtime::rpc::{
    read_message, write_message, ClientRequest, RemoteError, RemoteErrorKind, Reply, RpcError,
};
use weir_runtime::JobId;

/// The longest a savepoint request waits for its answer.
const SAVEPOINT_WAIT: Duration = Duration::from_secs(600);

/// The reply to any request, written as the reply of that request alone.
#[derive(Serialize)]
#[serde(untagged)]
enum AnyReply {
    Put(Reply<PutArtifact>),
    Stored(Reply<ArtifactChunk>),
    Submitted(Reply<Submit>),
    Jobs(Reply<ListJobs>),
    Job(Reply<JobInfo>),
    Cancelled(Reply<Cancel>),
    Savepoint(Reply<TriggerSavepoint>),
    Checkpoints(Reply<Checkpoints>),
    Checkpoint(Reply<TriggerCheckpoint>),
    Plan(Box<Reply<JobGraphOf>>),
    Error(Result<(), RemoteError>),
}

fn error(e: impl Into<RemoteError>) -> AnyReply {
    AnyReply::Error(Err(e.into()))
}

/// A request that cannot be served as sent.
fn invalid(message: &str) -> RemoteError {
    RemoteError::new(RemoteErrorKind::Invalid, message)
}

/// Serves one client: a request, then its answer, until it hangs up.
pub(super) async fn serve(
    mut stream: ControlStream,
    peer: &str,
    cluster: Arc<Cluster>,
) -> Result<(), RpcError> {
    let upload: Arc<Mutex<Option<Upload>>> = Arc::default();
    loop {
        let request: ClientRequest = match read_message(&mut stream, peer).await {
            Ok(r) => r,
            Err(RpcError::Closed { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let ClientRequest::FetchArtifact(FetchArtifact(digest)) = &request {
            send_artifact(&mut stream, peer, &cluster, digest).await?;
            continue;
        }
        let c = cluster.clone();
        let up = upload.clone();
        let answer = tokio::task::spawn_blocking(move || answer(&c, &up, request))
            .await
            .unwrap_or_else(|e| {
                let failed =
                    RemoteError::new(RemoteErrorKind::Internal, format!("request failed: {e}"));
                Some(error(failed))
            });
        if let Some(answer) = answer {
            write_message(&mut stream, peer, &answer).await?;
        }
    }
}

/// Streams a stored artifact in pieces, then its end (or an error).
async fn send_artifact(
    stream: &mut ControlStream,
    peer: &str,
    cluster: &Cluster,
    digest: &ArtifactDigest,
) -> Result<(), RpcError> {
    let piece = |p: ArtifactPiece| -> Reply<FetchArtifact> { Ok(p) };
    let failed = |e: RemoteError| -> Reply<FetchArtifact> { Err(e) };
    let file = match cluster.artifacts().read(digest) {
        Ok(f) => f,
        Err(e) => return write_message(stream, peer, &failed(e.into())).await,
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut buf = vec![0u8; ARTIFACT_CHUNK_BYTES];
    loop {
        let n = match file.read(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                let why = format!("cannot read artifact {digest}: {e}");
                let why = RemoteError::new(RemoteErrorKind::Internal, why);
                return write_message(stream, peer, &failed(why)).await;
            }
        };
        if n == 0 {
            return write_message(stream, peer, &piece(ArtifactPiece::End)).await;
        }
        let data = piece(ArtifactPiece::Data(buf[..n].to_vec()));
        write_message(stream, peer, &data).await?;
    }
}

/// Answers one client request (`None`: a piece of an upload that is not the last).
fn answer(
    cluster: &Cluster,
    upload: &Mutex<Option<Upload>>,
    request: ClientRequest,
) -> Option<AnyReply> {
    let mut upload = upload.lock().expect("upload poisoned");
    if upload.is_some() && !matches!(request, ClientRequest::ArtifactChunk(_)) {
        *upload = None;
        return Some(error(invalid(
            "an artifact upload was interrupted by another request",
        )));
    }
    let reply = match request {
        ClientRequest::PutArtifact(put) => AnyReply::Put(put_artifact(cluster, &mut upload, put)),
        ClientRequest::ArtifactChunk(ArtifactChunk(bytes)) => {
            let Some(u) = upload.as_mut() else {
                return Some(error(invalid(
                    "an artifact piece arrived without an upload announced",
                )));
            };
            match cluster.artifacts().write(u, &bytes) {
                Ok(false) => return None,
                Ok(true) => {
                    *upload = None;
                    AnyReply::Stored(Ok(ArtifactStored))
                }
                Err(e) => {
                    *upload = None;
                    error(e)
                }
            }
        }
        ClientRequest::FetchArtifact(_) => error(invalid("fetches are streamed")),
        ClientRequest::Submit(Submit(s)) => AnyReply::Submitted(remote(cluster.submit(*s))),
        ClientRequest::ListJobs(ListJobs) => AnyReply::Jobs(Ok(cluster.list())),
        ClientRequest::JobInfo(JobInfo(id)) => AnyReply::Job(
            cluster
                .summary(id)
                .ok_or_else(|| ClusterError::UnknownJob(id).into()),
        ),
        ClientRequest::Cancel(Cancel(id)) => AnyReply::Cancelled(remote(cluster.cancel(id))),
        ClientRequest::Savepoint(TriggerSavepoint {
            job,
            dir,
            stop,
            drain,
        }) => {
            let request = match stop {
                true => TriggerRequest::Stop { target: dir, drain },
                false => TriggerRequest::Savepoint { target: dir },
            };
            AnyReply::Savepoint(remote(trigger(cluster, job, request)))
        }
        ClientRequest::Checkpoint(TriggerCheckpoint(job)) => {
            AnyReply::Checkpoint(remote(trigger(cluster, job, TriggerRequest::Checkpoint)))
        }
        ClientRequest::Plan(JobGraphOf(job)) => AnyReply::Plan(Box::new(
            cluster
                .graph(job)
                .map(|g| (*g).clone())
                .ok_or_else(|| ClusterError::UnknownJob(job).into()),
        )),
        ClientRequest::Checkpoints(Checkpoints(id)) => {
            AnyReply::Checkpoints(remote(cluster.checkpoints(id)))
        }
        ClientRequest::WaitJob(WaitJob { job, timeout_ms }) => {
            let timeout = Duration::from_millis(timeout_ms.min(600_000));
            AnyReply::Job(remote(cluster.wait(job, timeout)))
        }
    };
    Some(reply)
}

fn remote<T>(r: Result<T, ClusterError>) -> Result<T, RemoteError> {
    r.map_err(RemoteError::from)
}

/// Starts an artifact upload, unless the artifact is stored already.
fn put_artifact(
    cluster: &Cluster,
    upload: &mut Option<Upload>,
    PutArtifact { digest, size }: PutArtifact,
) -> Reply<PutArtifact> {
    if cluster.artifacts().contains(&digest) {
        return Ok(true);
    }
    let mut u = cluster
        .artifacts()
        .begin(digest, size)
        .map_err(RemoteError::from)?;
    if size == 0 {
        cluster
            .artifacts()
            .write(&mut u, &[])
            .map_err(RemoteError::from)?;
        return Ok(true);
    }
    *upload = Some(u);
    Ok(false)
}

/// Takes a savepoint (or checkpoint) of a running job and waits (bounded) for it.
fn trigger(cluster: &Cluster, job: JobId, request: TriggerRequest) -> Result<String, ClusterError> {
    let summary = cluster.summary(job).ok_or(ClusterError::UnknownJob(job))?;
    let status = summary.status.name();
    if summary.status.is_terminal() {
        return Err(JobManagerError::Ended { job, status }.into());
    }
    if matches!(summary.status, JobStatus::Created | JobStatus::Scheduling) {
        return Err(ClusterError::NotRunning { job, status });
    }
    let handle = cluster.dispatcher().trigger(job, request)?;
    match handle.wait(SAVEPOINT_WAIT) {
        Some(answer) => Ok(answer?),
        None => {
            cluster.dispatcher().withdraw_savepoint(&handle);
            Err(ClusterError::SavepointTimedOut {
                job,
                waited_s: SAVEPOINT_WAIT.as_secs(),
            })
        }
    }
}
