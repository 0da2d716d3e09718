//! What the REST API reads of the cluster: its TaskManagers with their free slots, and a
//! job together with its graph and its JobMaster's latest snapshot.
//!
//! Invariant: every view is a copy taken under the cluster lock (and the snapshot's own);
//! nothing here waits for a JobMaster.

use super::Cluster;
use crate::JobSnapshot;
use std::sync::Arc;
use weir_runtime::control::TaskManagerId;
use weir_runtime::rpc::messages::JobSummary;
use weir_runtime::{JobGraph, JobId};

/// One registered TaskManager.
#[derive(Clone, Debug)]
pub struct TaskManagerView {
    /// Its id.
    pub id: TaskManagerId,
    /// The address it connected from.
    pub peer: String,
    /// Its slots.
    pub slots: u32,
    /// Its slots no job holds.
    pub free_slots: u32,
    /// Milliseconds since its last heartbeat.
    pub since_heartbeat_ms: u64,
}

/// A job this JobManager runs or ran, with its graph and latest snapshot.
#[derive(Clone, Debug)]
pub struct JobView {
    /// The job's summary.
    pub summary: JobSummary,
    /// Its graph.
    pub graph: Arc<JobGraph>,
    /// Its JobMaster's latest snapshot.
    pub snapshot: JobSnapshot,
}

impl Cluster {
    /// The registered TaskManagers, by id.
    pub fn taskmanager_views(&self) -> Vec<TaskManagerView> {
        let s = self.lock();
        s.taskmanagers
            .iter()
            .map(|(id, tm)| {
                let held: u32 = s.jobs.values().filter_map(|j| j.allocation.get(id)).sum();
                TaskManagerView {
                    id: *id,
                    peer: tm.peer.clone(),
                    slots: tm.slots,
                    free_slots: tm.slots.saturating_sub(held),
                    since_heartbeat_ms: tm.last_heartbeat.elapsed().as_millis() as u64,
                }
            })
            .collect()
    }

    /// The graph of job `id`, if this JobManager runs or ran it.
    pub fn graph(&self, id: JobId) -> Option<Arc<JobGraph>> {
        self.lock().jobs.get(&id).map(|j| j.graph.clone())
    }

    /// Job `id` with its graph and snapshot; `None` for a job unknown here (or one that
    /// ended under an earlier leader, of which only the summary is left).
    pub fn job_view(&self, id: JobId) -> Option<JobView> {
        let snapshot = self.dispatcher.status(id)?;
        let summary = self.summary_of(id, &snapshot)?;
        let graph = self.lock().jobs.get(&id)?.graph.clone();
        Some(JobView {
            summary,
            graph,
            snapshot,
        })
    }
}
