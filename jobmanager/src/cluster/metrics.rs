//! The JobManager's metrics: the task metrics job workers report with their heartbeats
//! (kept per worker, for the REST API), each job's metrics derived from its JobMaster's
//! snapshot under Flink's names, and the publisher that hands both, with the cluster's
//! slots and TaskManagers, to the `metrics` facade (the Prometheus endpoint).
//!
//! Invariants: a worker's reports replace its previous ones and leave with its connection,
//! so a job's task metrics are those of the workers running it now; job metrics are
//! computed from one snapshot, so they agree with each other and with the REST API's
//! checkpoint statistics.

use super::Cluster;
use crate::JobSnapshot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tracing::warn;
use weir_runtime::control::TaskManagerId;
use weir_runtime::metrics::TaskMetricsReport;
use weir_runtime::rpc::messages::JobStatus;
use weir_runtime::JobId;

/// A worker: its job, its TaskManager and its control connection (a worker that replaces
/// another on the same TaskManager has a connection of its own).
type WorkerKey = (JobId, TaskManagerId, u64);

/// The latest task metrics of every job worker.
#[derive(Debug, Default)]
pub struct TaskMetricsStore {
    by_worker: Mutex<HashMap<WorkerKey, Vec<TaskMetricsReport>>>,
}

impl TaskMetricsStore {
    /// Keeps `reports` as the worker of `job` on `tm`, on control connection `connection`,
    /// sent them (replacing its earlier ones).
    pub fn record(&self, (job, tm, connection): WorkerKey, reports: Vec<TaskMetricsReport>) {
        self.lock().insert((job, tm, connection), reports);
    }

    /// Drops the reports of that worker (its connection ended).
    pub fn forget(&self, worker: WorkerKey) {
        self.lock().remove(&worker);
    }

    /// The reports of every running task of `job` with the TaskManager each runs on, by
    /// vertex and subtask.
    pub fn of_job(&self, job: JobId) -> Vec<(TaskManagerId, TaskMetricsReport)> {
        let mut all: Vec<(TaskManagerId, TaskMetricsReport)> = self
            .lock()
            .iter()
            .filter(|((j, _, _), _)| *j == job)
            .flat_map(|((_, tm, _), reports)| reports.iter().map(|r| (*tm, r.clone())))
            .collect();
        all.sort_by_key(|(_, r)| (r.subtask.vertex, r.subtask.subtask));
        all
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<WorkerKey, Vec<TaskMetricsReport>>> {
        self.by_worker.lock().expect("task metrics poisoned")
    }
}

/// The names of a job's metrics, in the order [`job_metrics`] gives them.
pub const JOB_METRICS: [&str; 6] = [
    "uptime",
    "numRestarts",
    "lastCheckpointDuration",
    "lastCheckpointSize",
    "numberOfCompletedCheckpoints",
    "numberOfFailedCheckpoints",
];

/// A job's metrics from its snapshot, under Flink's names: `uptime` (milliseconds the
/// current run has been running, 0 when not running), `numRestarts`, the duration (ms) and
/// size (bytes) of the latest completed checkpoint (-1 before the first), and the counts
/// of completed and failed checkpoints.
pub fn job_metrics(s: &JobSnapshot, now_ms: i64) -> [(&'static str, i64); 6] {
    let uptime = match (s.status, s.run_started_ms) {
        (JobStatus::Running, Some(started)) => (now_ms - started).max(0),
        _ => 0,
    };
    let last = s.checkpoints.last();
    let values = [
        uptime,
        i64::from(s.attempt),
        last.map_or(-1, |c| c.duration.as_millis() as i64),
        last.map_or(-1, |c| c.size as i64),
        s.history.completed as i64,
        s.history.failed as i64,
    ];
    std::array::from_fn(|i| (JOB_METRICS[i], values[i]))
}

/// Publishes the cluster's and its jobs' metrics to the `metrics` facade every `every`,
/// from a thread of its own, until the cluster is dropped.
pub fn spawn_publisher(cluster: &Arc<Cluster>, every: Duration) {
    let cluster: Weak<Cluster> = Arc::downgrade(cluster);
    let spawned = std::thread::Builder::new()
        .name("weir-jm-metrics".into())
        .spawn(move || {
            while let Some(c) = cluster.upgrade() {
                publish(&c);
                drop(c);
                std::thread::sleep(every);
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start the JobManager's metrics publisher");
    }
}

/// One round of [`spawn_publisher`].
fn publish(c: &Cluster) {
    let tms = c.taskmanager_views();
    let total: u32 = tms.iter().map(|t| t.slots).sum();
    let free: u32 = tms.iter().map(|t| t.free_slots).sum();
    ::metrics::gauge!("weir_jobmanager_numRegisteredTaskManagers").set(tms.len() as f64);
    ::metrics::gauge!("weir_jobmanager_taskSlotsTotal").set(f64::from(total));
    ::metrics::gauge!("weir_jobmanager_taskSlotsAvailable").set(f64::from(free));
    let jobs = c.dispatcher().list();
    let running = jobs.iter().filter(|(_, s)| !s.status.is_terminal()).count();
    ::metrics::gauge!("weir_jobmanager_numRunningJobs").set(running as f64);
    weir_runtime::metrics::prometheus::publish_process_memory("jobmanager", &[]);
    let now = weir_runtime::now_ms();
    for (id, s) in jobs.iter().filter(|(_, s)| !s.status.is_terminal()) {
        let labels = [("job_id", id.to_string()), ("job_name", s.name.clone())];
        for (name, value) in job_metrics(s, now) {
            let key = format!("weir_jobmanager_job_{name}");
            ::metrics::gauge!(key, &labels).set(value as f64);
        }
    }
}
