//! The messages of the control RPC, per connection role.
//!
//! - A **client** (the `weir` CLI, or a TaskManager fetching an artifact) sends typed
//!   requests (see [`super::request`]), each answered by its own reply type.
//! - A **TaskManager** registers, heartbeats and reports its job workers
//!   ([`TaskManagerRequest`]); the JobManager answers the registration and tells it which
//!   workers to start and stop ([`TaskManagerCommand`]).
//! - A **job worker** registers for its job ([`WorkerReport::Register`]) and then carries
//!   the same [`TaskManagerMessage`]s and [`JobManagerMessage`]s as the in-process gateways
//!   of the local mini-cluster.
//!
//! Invariant: an [`ArtifactDigest`] is always 64 lowercase hex digits (it names files).

use crate::config::SavepointRestoreSettings;
use crate::control::{JobManagerMessage, TaskManagerId, TaskManagerMessage};
use crate::graph::JobGraph;
use crate::metrics::TaskMetricsReport;
use crate::types::{CheckpointId, JobId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

/// The variable `weir run` sets when it runs a job program only to get its job graph: the
/// file the graph goes to.
pub const ENV_PLAN_FILE: &str = "WEIR_PLAN_FILE";

/// Largest piece of an artifact in one message.
pub const ARTIFACT_CHUNK_BYTES: usize = 4 << 20;

/// The SHA-256 digest of a job artifact, as 64 lowercase hex digits: its content address.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArtifactDigest(String);

impl ArtifactDigest {
    /// Checks and wraps a digest in hex.
    pub fn parse(hex: &str) -> Result<Self, ArtifactDigestError> {
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(hex.to_string()))
        } else {
            Err(ArtifactDigestError::Malformed {
                input: hex.chars().take(80).collect(),
            })
        }
    }

    /// Returns the digest in hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Returns the digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut h = ArtifactHasher::default();
        h.update(bytes);
        h.finish()
    }
}

/// Computes an [`ArtifactDigest`] over bytes that arrive in pieces.
#[derive(Default)]
pub struct ArtifactHasher(sha2::Sha256);

impl ArtifactHasher {
    /// Adds the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        sha2::Digest::update(&mut self.0, bytes);
    }

    /// Returns the digest of every piece added.
    pub fn finish(self) -> ArtifactDigest {
        let hex: String = sha2::Digest::finalize(self.0)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        ArtifactDigest(hex)
    }
}

/// Why a string is not an [`ArtifactDigest`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactDigestError {
    /// The string is not 64 lowercase hex digits.
    #[error("'{input}' is not an artifact digest (64 lowercase hex digits)")]
    Malformed {
        /// The string (its first 80 characters).
        input: String,
    },
}

impl TryFrom<String> for ArtifactDigest {
    type Error = ArtifactDigestError;
    fn try_from(s: String) -> Result<Self, ArtifactDigestError> {
        Self::parse(&s)
    }
}

impl From<ArtifactDigest> for String {
    fn from(d: ArtifactDigest) -> String {
        d.0
    }
}

impl fmt::Display for ArtifactDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ArtifactDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArtifactDigest({})", self.0)
    }
}

/// A job as `weir run` submits it: the graph its program built, and how to run the program
/// again as a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSubmission {
    /// The stored artifact (the job program's executable).
    pub artifact: ArtifactDigest,
    /// The graph the program built (without code).
    pub graph: JobGraph,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The job configuration keys `weir run` was given (`--parallelism`, `-D`, `weir.toml`,
    /// `WEIR_*`), handed to every worker so that it builds the graph that was planned.
    pub properties: BTreeMap<String, String>,
    /// The savepoint to start from, if any.
    pub savepoint: Option<SavepointRestoreSettings>,
}

/// Where a job is in its life: the states of its JobMaster's state machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Accepted; not yet scheduled.
    Created,
    /// Waiting for enough free slots and for its workers (shown as `WAITING_FOR_SLOTS`).
    Scheduling,
    /// Deploying its subtasks.
    Deploying,
    /// Its subtasks run.
    Running,
    /// A run failed; the job waits to be placed and deployed again.
    Restarting,
    /// Every subtask finished (or the job stopped with a savepoint).
    Finished,
    /// The job failed for good.
    Failed,
    /// The job was cancelled.
    Cancelled,
}

impl JobStatus {
    /// Returns whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Failed | JobStatus::Cancelled
        )
    }

    /// The status in upper case, as tables and JSON show it.
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::Created => "CREATED",
            JobStatus::Scheduling => "WAITING_FOR_SLOTS",
            JobStatus::Deploying => "DEPLOYING",
            JobStatus::Running => "RUNNING",
            JobStatus::Restarting => "RESTARTING",
            JobStatus::Finished => "FINISHED",
            JobStatus::Failed => "FAILED",
            JobStatus::Cancelled => "CANCELLED",
        }
    }
}

/// One job as `weir list` and `weir info` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Its id.
    pub id: JobId,
    /// The name given to `execute`.
    pub name: String,
    /// Where it is.
    pub status: JobStatus,
    /// Slots it needs (its highest parallelism).
    pub slots: u32,
    /// Number of subtasks.
    pub subtasks: u32,
    /// Restarts after failures so far.
    pub restarts: u32,
    /// When it was submitted (milliseconds since the epoch).
    pub submitted_ms: i64,
    /// When it ended, if it did.
    pub ended_ms: Option<i64>,
    /// The TaskManagers its current run uses.
    pub taskmanagers: Vec<TaskManagerId>,
    /// Why it is waiting, failed or restarting, if it is.
    pub message: Option<String>,
    /// The last completed checkpoint.
    pub last_checkpoint: Option<CheckpointId>,
}

/// One completed checkpoint as `weir checkpoints` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    /// Its id.
    pub id: CheckpointId,
    /// Size of its state in bytes.
    pub size: u64,
    /// Bytes it stored itself (less than `size` for incremental checkpoints).
    pub incremental_size: u64,
    /// Trigger to completion, in milliseconds.
    pub duration_ms: u64,
    /// The longest alignment of any task, in milliseconds.
    pub alignment_ms: u64,
}

/// What a TaskManager tells the JobManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TaskManagerRequest {
    /// The first message: offers `slots` slots.
    Register {
        /// Slots offered.
        slots: u32,
    },
    /// Still alive.
    Heartbeat,
    /// A job worker process exited (or could not be started).
    WorkerExited {
        /// The worker's job.
        job: JobId,
        /// [`WorkerSpec::start`] of the worker.
        start: u64,
        /// Why, for the job's failure message.
        reason: String,
    },
}

/// What the JobManager tells a TaskManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum TaskManagerCommand {
    /// The registration was accepted.
    Registered {
        /// The id the TaskManager has in this cluster.
        id: TaskManagerId,
        /// How often to heartbeat, in milliseconds.
        heartbeat_interval_ms: u64,
        /// A JobManager silent this long (no answer to heartbeats) is lost.
        heartbeat_timeout_ms: u64,
    },
    /// The answer to a heartbeat: the JobManager is alive.
    HeartbeatAck,
    /// Start the worker process of a job (unless one runs).
    StartWorker(Box<WorkerSpec>),
    /// Stop the worker process of a job.
    StopWorker {
        /// The job.
        job: JobId,
    },
}

/// How to start a job's worker process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The job.
    pub job: JobId,
    /// The program to run (fetched from the JobManager and cached by digest).
    pub artifact: ArtifactDigest,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The job configuration keys the program was submitted with (set in the worker's
    /// environment as `WEIR_JOB_PROPERTIES`).
    pub properties: BTreeMap<String, String>,
    /// Which start of a worker this is (unique in the cluster): an exit report names it, so
    /// a late report of an earlier worker is not taken for this one's.
    pub start: u64,
}

/// What a job worker tells the JobManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerReport {
    /// The first message: the worker of `job` on TaskManager `taskmanager` serves its data
    /// plane at `data_address` and rebuilt a graph with `fingerprint`.
    Register {
        /// The job.
        job: JobId,
        /// The TaskManager that started it.
        taskmanager: TaskManagerId,
        /// Its data server.
        data_address: SocketAddr,
        /// [`JobGraph::fingerprint`] of the graph it built.
        fingerprint: u64,
    },
    /// A task report, as in the mini-cluster.
    Task(TaskManagerMessage),
    /// The worker is alive: sent every heartbeat interval, so that a frozen worker (whose
    /// connection stays open) is found lost after the heartbeat timeout. It carries the
    /// metrics of the worker's running tasks over the last interval.
    Heartbeat {
        /// One report per running task.
        tasks: Vec<TaskMetricsReport>,
    },
}

/// What the JobManager tells a job worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum WorkerCommand {
    /// The worker may run tasks; it sends a heartbeat every `heartbeat_interval_ms`.
    Registered {
        /// How often to send [`WorkerReport::Heartbeat`].
        heartbeat_interval_ms: u64,
    },
    /// A control message for its tasks, as in the mini-cluster.
    Task(JobManagerMessage),
    /// The registration is refused (unknown job, or a graph other than the submitted one).
    Refused {
        /// Why.
        reason: String,
    },
    /// The worker is no longer wanted (its job ended or moved): exit.
    Exit {
        /// Why, for the worker's log.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_digest_is_64_lowercase_hex_digits_and_nothing_else() {
        let good = "ab".repeat(32);
        assert_eq!(ArtifactDigest::parse(&good).unwrap().as_str(), good);
        for bad in ["", "../../etc/passwd", &"AB".repeat(32), &"a".repeat(63)] {
            assert!(ArtifactDigest::parse(bad).is_err(), "{bad}");
        }
        let encoded = {
            let mut v = Vec::new();
            weir_state_backends::encode_into(&"../x".to_string(), &mut v).unwrap();
            v
        };
        let decoded: Result<(ArtifactDigest, usize), _> =
            weir_state_backends::decode_from(&encoded);
        assert!(decoded.is_err(), "a digest is checked when it is decoded");
    }
}
