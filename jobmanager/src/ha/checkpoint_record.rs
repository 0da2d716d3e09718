//! The checkpoint id counter and the completed-checkpoint pointer of each job (Flink's
//! `CheckpointIDCounter` and `CompletedCheckpointStore`) in ZooKeeper.
//!
//! `checkpoints/<job-id>/counter` holds the next id no leader handed out; a JobMaster
//! reserves every id before it triggers a checkpoint with it, so a later leader never
//! reuses one (the files and sink transactions of a checkpoint are named by its id).
//! `checkpoints/<job-id>/latest` holds the newest checkpoint recorded complete; a
//! checkpoint is complete only once recorded there, before any task is told, so a sink
//! never commits a checkpoint a later leader could restore past or before.
//!
//! Invariant: both are written through fenced multi-ops: a deposed leader can neither
//! hand out an id nor complete a checkpoint.

use super::services::HaServices;
use serde::{Deserialize, Serialize};
use weir_runtime::ha::znode::encode;
use weir_runtime::ha::HaError;
use weir_runtime::{CheckpointId, JobId};

/// The znode under which every job's checkpoint record lives.
pub(crate) const CHECKPOINTS: &str = "/checkpoints";

/// Where a job's checkpoint ids and completed checkpoints are recorded beyond its
/// checkpoint storage, so that a later JobManager leader continues them.
pub trait CheckpointRecord: Send + Sync + std::fmt::Debug {
    /// Records that every id below `below` is handed out: no later leader uses them.
    fn reserve(&self, job: JobId, below: CheckpointId) -> Result<(), HaError>;

    /// Records checkpoint `checkpoint` complete: the newest a later leader restores.
    /// Until this returns it is not complete, and no task is told it is.
    fn completed(&self, job: JobId, checkpoint: CheckpointId) -> Result<(), HaError>;
}

#[derive(Serialize, Deserialize)]
struct Counter {
    next: CheckpointId,
}

#[derive(Serialize, Deserialize)]
struct Latest {
    checkpoint: CheckpointId,
}

fn counter(job: JobId) -> String {
    format!("{CHECKPOINTS}/{job}/counter")
}

fn latest(job: JobId) -> String {
    format!("{CHECKPOINTS}/{job}/latest")
}

impl HaServices {
    /// The next checkpoint id of `job` (1 if it never reserved one) and the newest
    /// checkpoint recorded complete, if any.
    pub fn checkpoint_progress(
        &self,
        job: JobId,
    ) -> Result<(CheckpointId, Option<CheckpointId>), HaError> {
        let next = self.read::<Counter>(&counter(job))?.map_or(1, |c| c.next);
        let latest = self.read::<Latest>(&latest(job))?.map(|l| l.checkpoint);
        Ok((next.max(latest.map_or(1, |l| l + 1)), latest))
    }
}

impl CheckpointRecord for HaServices {
    fn reserve(&self, job: JobId, below: CheckpointId) -> Result<(), HaError> {
        let next = encode(&Counter { next: below });
        self.put("reserve checkpoint ids", &counter(job), next)
    }

    fn completed(&self, job: JobId, checkpoint: CheckpointId) -> Result<(), HaError> {
        let data = encode(&Latest { checkpoint });
        self.put("record a completed checkpoint", &latest(job), data)
    }
}
