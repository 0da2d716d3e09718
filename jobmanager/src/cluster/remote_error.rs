//! How the JobManager's errors travel to a client: each becomes a [`RemoteError`] whose
//! [`RemoteErrorKind`] is decided here, once, by matching every variant (a new variant
//! must be given a kind), and whose message is the error's own.

use super::artifacts::ArtifactError;
use super::error::ClusterError;
use crate::dispatcher::JobManagerError;
use crate::SavepointError;
use weir_runtime::rpc::{RemoteError, RemoteErrorKind};

impl From<ClusterError> for RemoteError {
    fn from(e: ClusterError) -> Self {
        RemoteError::new(cluster_kind(&e), e)
    }
}

impl From<ArtifactError> for RemoteError {
    fn from(e: ArtifactError) -> Self {
        let kind = match &e {
            ArtifactError::Unknown(_) => RemoteErrorKind::NotFound,
            ArtifactError::TooLarge { .. }
            | ArtifactError::Overflow { .. }
            | ArtifactError::DigestMismatch { .. } => RemoteErrorKind::Invalid,
            ArtifactError::Io { .. } => RemoteErrorKind::Internal,
        };
        RemoteError::new(kind, e)
    }
}

fn cluster_kind(e: &ClusterError) -> RemoteErrorKind {
    use RemoteErrorKind::*;
    match e {
        ClusterError::UnknownJob(_) | ClusterError::MissingArtifact(_) => NotFound,
        ClusterError::InvalidGraph(_)
        | ClusterError::EmptyGraph
        | ClusterError::GraphMismatch(_) => Invalid,
        ClusterError::NotRunning { .. } | ClusterError::Cancelled => Conflict,
        ClusterError::JobManager(e) => jobmanager_kind(e),
        ClusterError::ShuttingDown
        | ClusterError::SlotTimeout { .. }
        | ClusterError::TaskManagerLost(_)
        | ClusterError::WorkersTimedOut(_)
        | ClusterError::SavepointTimedOut { .. }
        | ClusterError::HighAvailability(_) => Unavailable,
        ClusterError::WorkerFailed { .. } | ClusterError::NoSlot { .. } => Internal,
    }
}

fn jobmanager_kind(e: &JobManagerError) -> RemoteErrorKind {
    use RemoteErrorKind::*;
    match e {
        JobManagerError::UnknownJob(_) => NotFound,
        JobManagerError::Graph(_) | JobManagerError::Savepoint { .. } => Invalid,
        JobManagerError::Duplicate(_) | JobManagerError::Ended { .. } => Conflict,
        JobManagerError::Schedule(_) | JobManagerError::Unresponsive(_) => Unavailable,
        JobManagerError::CheckpointStorage(_) => Internal,
        JobManagerError::SavepointFailed { source, .. } => savepoint_kind(source),
    }
}

fn savepoint_kind(e: &SavepointError) -> RemoteErrorKind {
    use RemoteErrorKind::*;
    match e {
        SavepointError::AlreadyStopping
        | SavepointError::TaskFinished
        | SavepointError::JobEnded => Conflict,
        SavepointError::NoCheckpointStorage | SavepointError::NoDirectory => Invalid,
        SavepointError::Failed { .. } | SavepointError::FailedWhileStopping { .. } => Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::JobId;

    #[test]
    fn a_refusal_keeps_its_message_and_gets_the_kind_a_client_acts_on() {
        let unknown = RemoteError::from(ClusterError::UnknownJob(JobId(255)));
        assert_eq!(unknown.kind, RemoteErrorKind::NotFound);
        assert_eq!(
            unknown.message,
            ClusterError::UnknownJob(JobId(255)).to_string()
        );
        let ended = RemoteError::from(ClusterError::JobManager(JobManagerError::Ended {
            job: JobId(1),
            status: "FINISHED",
        }));
        assert_eq!(ended.kind, RemoteErrorKind::Conflict);
        let stopping =
            RemoteError::from(ClusterError::JobManager(JobManagerError::SavepointFailed {
                job: JobId(1),
                source: SavepointError::NoDirectory,
            }));
        assert_eq!(stopping.kind, RemoteErrorKind::Invalid);
        assert_eq!(
            RemoteError::from(ClusterError::ShuttingDown).kind,
            RemoteErrorKind::Unavailable
        );
    }
}
