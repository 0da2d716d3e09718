//! The standalone JobManager: the dispatcher of [`crate::JobManager`] behind a control RPC
//! port, with TaskManagers that register over the network, job artifacts, one worker
//! process per job and TaskManager, slot allocation and failover across processes.
//!
//! The pieces:
//! - [`artifacts`]: job programs stored by SHA-256 digest;
//! - [`slots`]: which TaskManager slots each job holds (a pure function of the free slots);
//! - this file: the cluster's TaskManagers, workers and slot allocations, and the requests
//!   about jobs, answered from their JobMasters' snapshots;
//! - `placement`: the [`crate::Placement`] every JobMaster asks on each (re)start;
//! - [`server`]: the RPC endpoint for clients, TaskManagers and workers, with the client
//!   requests answered by `client_api`;
//! - [`rest`]: the REST API, Flink's routes and actions, reading [`views`] of the cluster;
//! - [`json`]: the JSON shapes `weir --output json` shares with the REST API.
//!
//! Invariants:
//! - a job's status lives in its JobMaster alone; the cluster keeps TaskManagers, workers
//!   and which slots each job holds;
//! - a job holds slots only while it is placed or runs; its slots are free again when it
//!   ends or before it is placed anew after a failure;
//! - a TaskManager that misses heartbeats for `heartbeat.timeout`, or whose connection
//!   breaks, is forgotten at once, and every job with subtasks on it fails over;
//! - a worker whose connection breaks fails its job's subtasks on its TaskManager only;
//! - the cluster lock is never held while calling into the dispatcher in a way that waits
//!   for a JobMaster, and JobMasters call back (placement) without locks of their own, so
//!   the two never wait on each other.

pub mod artifacts;
pub mod banner;
mod client_api;
pub mod error;
pub mod json;
pub mod metrics;
mod placement;
mod recovery;
mod remote_error;
pub mod rest;
pub mod server;
pub mod slots;
pub mod views;

use crate::dispatcher::JobManager;
use crate::ha::HaServices;
use artifacts::ArtifactStore;
pub use error::ClusterError;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weir_runtime::control::TaskManagerId;
use weir_runtime::rpc::messages::{
    CheckpointSummary, JobSubmission, JobSummary, TaskManagerCommand, WorkerCommand, WorkerSpec,
};
use weir_runtime::rpc::FencedSender;
use weir_runtime::{JobGraph, JobId};

/// Settings of a standalone JobManager.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// Where the control RPC listens.
    pub rpc_address: SocketAddr,
    /// The secret every control connection must present (`cluster.secret`).
    pub secret: Option<weir_runtime::Secret>,
    /// How often TaskManagers heartbeat.
    pub heartbeat_interval: Duration,
    /// A TaskManager silent this long is lost.
    pub heartbeat_timeout: Duration,
    /// How long a job waits for enough free slots.
    pub slot_timeout: Duration,
    /// How long a job's workers may take to start and register.
    pub worker_timeout: Duration,
    /// Where artifacts are stored.
    pub artifacts_dir: PathBuf,
    /// The largest artifact accepted, in bytes.
    pub artifact_max_bytes: u64,
}

struct TaskManagerEntry {
    slots: u32,
    peer: String,
    commands: FencedSender<TaskManagerCommand>,
    last_heartbeat: Instant,
}

struct WorkerEntry {
    data_address: SocketAddr,
    commands: FencedSender<WorkerCommand>,
    /// Which connection registered it (a later one replaces it).
    connection: u64,
}

/// What the cluster keeps of a job: where it may run and which slots it holds. Its status
/// is its JobMaster's.
struct JobEntry {
    graph: Arc<JobGraph>,
    fingerprint: u64,
    worker: WorkerSpec,
    /// Slots held per TaskManager.
    allocation: BTreeMap<TaskManagerId, u32>,
}

#[derive(Default)]
struct State {
    taskmanagers: BTreeMap<TaskManagerId, TaskManagerEntry>,
    next_taskmanager: TaskManagerId,
    workers: HashMap<(JobId, TaskManagerId), WorkerEntry>,
    /// Why a job's worker on a TaskManager exited or was refused, until the job is placed
    /// again.
    worker_failures: HashMap<(JobId, TaskManagerId), String>,
    /// The start number of the worker last started per job and TaskManager.
    starts: HashMap<(JobId, TaskManagerId), u64>,
    next_start: u64,
    jobs: HashMap<JobId, JobEntry>,
    next_seq: u64,
    /// With high availability: how jobs that ended under earlier leaders ended.
    results: HashMap<JobId, JobSummary>,
}

/// The state of a standalone cluster, shared by its connections and the JobMasters'
/// placements.
pub struct Cluster {
    settings: ClusterSettings,
    dispatcher: Arc<JobManager>,
    artifacts: ArtifactStore,
    /// The high-availability services, if the cluster has them.
    ha: Option<Arc<HaServices>>,
    state: Mutex<State>,
    /// The task metrics job workers report.
    task_metrics: metrics::TaskMetricsStore,
    /// Notified on every change a waiting placement may care about.
    changed: Condvar,
    me: Weak<Cluster>,
}

impl Cluster {
    /// Creates the cluster state with its artifact store and, with high availability,
    /// the services that persist its jobs.
    pub fn new(
        settings: ClusterSettings,
        ha: Option<Arc<HaServices>>,
    ) -> Result<Arc<Self>, artifacts::ArtifactError> {
        let artifacts = ArtifactStore::open(&settings.artifacts_dir, settings.artifact_max_bytes)?;
        Ok(Arc::new_cyclic(|me| Self {
            settings,
            dispatcher: Arc::new(JobManager::new()),
            artifacts,
            ha,
            state: Mutex::new(State::default()),
            task_metrics: metrics::TaskMetricsStore::default(),
            changed: Condvar::new(),
            me: me.clone(),
        }))
    }

    /// The cluster's settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The epoch stamped on every command to TaskManagers and workers: the leader epoch
    /// with high availability, 0 without.
    pub fn epoch(&self) -> u64 {
        self.ha.as_ref().map_or(0, |h| h.epoch())
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The task metrics the job workers report.
    pub fn task_metrics(&self) -> &metrics::TaskMetricsStore {
        &self.task_metrics
    }

    /// The JobManager (dispatcher) whose jobs this cluster runs.
    pub fn dispatcher(&self) -> &Arc<JobManager> {
        &self.dispatcher
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("cluster state poisoned")
    }

    /// Registers a TaskManager offering `slots`, answers its registration on `commands`
    /// (before any job can send it work), and returns its id. `commands` is the link's only
    /// sender: forgetting the TaskManager closes its connection.
    pub fn register_taskmanager(
        &self,
        slots: u32,
        peer: String,
        commands: FencedSender<TaskManagerCommand>,
    ) -> TaskManagerId {
        let mut s = self.lock();
        let id = s.next_taskmanager;
        s.next_taskmanager += 1;
        info!(taskmanager = id, slots, %peer, "taskmanager registered");
        let _ = commands.send(TaskManagerCommand::Registered {
            id,
            heartbeat_interval_ms: self.settings.heartbeat_interval.as_millis() as u64,
            heartbeat_timeout_ms: self.settings.heartbeat_timeout.as_millis() as u64,
        });
        s.taskmanagers.insert(
            id,
            TaskManagerEntry {
                slots,
                peer,
                commands,
                last_heartbeat: Instant::now(),
            },
        );
        drop(s);
        self.changed.notify_all();
        id
    }

    /// Records a heartbeat of TaskManager `id` and answers it.
    pub fn heartbeat(&self, id: TaskManagerId) {
        if let Some(tm) = self.lock().taskmanagers.get_mut(&id) {
            tm.last_heartbeat = Instant::now();
            let _ = tm.commands.send(TaskManagerCommand::HeartbeatAck);
        }
    }

    /// Forgets TaskManager `id` (its connection broke or its heartbeats stopped) and fails
    /// over every job that has subtasks on it.
    pub fn taskmanager_lost(&self, id: TaskManagerId, reason: &str) {
        let mut s = self.lock();
        let Some(tm) = s.taskmanagers.remove(&id) else {
            return;
        };
        warn!(taskmanager = id, peer = %tm.peer, %reason, "taskmanager lost");
        let jobs: Vec<JobId> = s
            .jobs
            .iter()
            .filter(|(_, j)| j.allocation.contains_key(&id))
            .map(|(id, _)| *id)
            .collect();
        let workers: Vec<(JobId, TaskManagerId)> = s
            .workers
            .keys()
            .filter(|(_, t)| *t == id)
            .copied()
            .collect();
        for w in workers {
            if let Some(w) = s.workers.remove(&w) {
                let _ = w.commands.send(WorkerCommand::Exit {
                    reason: format!("taskmanager {id} was lost"),
                });
            }
        }
        drop(s);
        self.changed.notify_all();
        let why = format!("taskmanager {id} ({}) was lost: {reason}", tm.peer);
        for job in jobs {
            self.dispatcher.fail_subtasks_on(job, id, &why);
        }
    }

    /// Forgets the TaskManagers whose last heartbeat is older than the timeout.
    pub fn check_heartbeats(&self) {
        let timeout = self.settings.heartbeat_timeout;
        let silent: Vec<TaskManagerId> = self
            .lock()
            .taskmanagers
            .iter()
            .filter(|(_, t)| t.last_heartbeat.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in silent {
            self.taskmanager_lost(
                id,
                &format!(
                    "no heartbeat for {} ms (heartbeat.timeout)",
                    timeout.as_millis()
                ),
            );
        }
    }

    /// Records that start `start` of the worker of `job` on TaskManager `tm` exited or
    /// could not start (a report of an earlier start is ignored).
    pub fn worker_exited(&self, job: JobId, tm: TaskManagerId, start: u64, reason: String) {
        let mut s = self.lock();
        if s.starts.get(&(job, tm)) != Some(&start) || s.workers.contains_key(&(job, tm)) {
            // A registered worker's broken connection reports it.
            return;
        }
        if s.jobs
            .get(&job)
            .is_some_and(|j| j.allocation.contains_key(&tm))
        {
            s.worker_failures.insert((job, tm), reason);
            drop(s);
            self.changed.notify_all();
        }
    }

    /// Checks and records a worker's registration; returns why it is refused.
    pub fn register_worker(
        &self,
        job: JobId,
        tm: TaskManagerId,
        data_address: SocketAddr,
        fingerprint: u64,
        connection: u64,
        commands: FencedSender<WorkerCommand>,
    ) -> Result<(), ClusterError> {
        let mut s = self.lock();
        let Some(entry) = s.jobs.get(&job) else {
            return Err(ClusterError::UnknownJob(job));
        };
        if !entry.allocation.contains_key(&tm) {
            return Err(ClusterError::NoSlot {
                job,
                taskmanager: tm,
            });
        }
        if entry.fingerprint != fingerprint {
            let why = ClusterError::GraphMismatch(entry.graph.name.clone());
            s.worker_failures.insert((job, tm), why.to_string());
            drop(s);
            self.changed.notify_all();
            return Err(why);
        }
        info!(job_id = %job, taskmanager = tm, %data_address, "job worker registered");
        s.workers.insert(
            (job, tm),
            WorkerEntry {
                data_address,
                commands,
                connection,
            },
        );
        drop(s);
        self.changed.notify_all();
        Ok(())
    }

    /// Forgets the worker of `job` on `tm` registered by `connection` (its connection
    /// ended) and fails its subtasks.
    pub fn worker_lost(&self, job: JobId, tm: TaskManagerId, connection: u64, reason: &str) {
        let mut s = self.lock();
        match s.workers.get(&(job, tm)) {
            Some(w) if w.connection == connection => {}
            _ => return,
        }
        s.workers.remove(&(job, tm));
        let placed = s
            .jobs
            .get(&job)
            .is_some_and(|j| j.allocation.contains_key(&tm));
        if placed {
            s.worker_failures.insert((job, tm), reason.to_string());
        }
        drop(s);
        self.changed.notify_all();
        if placed {
            warn!(job_id = %job, taskmanager = tm, %reason, "job worker lost");
            self.dispatcher.fail_subtasks_on(job, tm, reason);
        }
    }
    /// Accepts a job: persists it (with high availability), records it and hands it to
    /// the dispatcher, whose JobMaster places, runs and follows it.
    pub fn submit(&self, submission: JobSubmission) -> Result<JobId, ClusterError> {
        if !self.artifacts.contains(&submission.artifact) {
            return Err(ClusterError::MissingArtifact(submission.artifact));
        }
        submission.graph.validate()?;
        if submission.graph.slots_needed() == 0 {
            return Err(ClusterError::EmptyGraph);
        }
        let fingerprint = submission.graph.fingerprint();
        let seq = {
            let mut s = self.lock();
            s.next_seq += 1;
            s.next_seq
        };
        let id = JobId(weir_runtime::now_ms() as u64 ^ seq.rotate_left(48) ^ fingerprint);
        if let Some(ha) = &self.ha {
            // Persisted before it is acknowledged: a later leader recovers it.
            ha.put_job(id, &submission)?;
        }
        self.start_job(id, submission, fingerprint, None)?;
        Ok(id)
    }

    /// Records job `id` (whose graph has `fingerprint`) and starts its JobMaster
    /// (continuing its checkpoints as `continuation` says after a leader change).
    fn start_job(
        &self,
        id: JobId,
        submission: JobSubmission,
        fingerprint: u64,
        continuation: Option<crate::CheckpointContinuation>,
    ) -> Result<(), ClusterError> {
        let JobSubmission {
            artifact,
            mut graph,
            args,
            properties,
            savepoint,
        } = submission;
        graph.config.savepoint_restore = savepoint;
        let graph = Arc::new(graph);
        self.lock().jobs.insert(
            id,
            JobEntry {
                graph: graph.clone(),
                fingerprint,
                worker: WorkerSpec {
                    job: id,
                    artifact,
                    args,
                    properties,
                    start: 0,
                },
                allocation: BTreeMap::new(),
            },
        );
        let continuation = continuation.or_else(|| {
            self.ha.clone().map(|ha| crate::CheckpointContinuation {
                record: ha,
                next_id: 1,
                latest: None,
            })
        });
        let placement = Arc::new(placement::ClusterPlacement(self.me.clone()));
        if let Err(e) = self
            .dispatcher
            .submit_placed(id, graph, placement, continuation)
        {
            self.lock().jobs.remove(&id);
            return Err(e.into());
        }
        Ok(())
    }

    /// Cancels job `id`.
    pub fn cancel(&self, id: JobId) -> Result<(), ClusterError> {
        self.dispatcher.cancel(id)?;
        // A placement waiting for slots or workers sees the job ended.
        self.changed.notify_all();
        Ok(())
    }

    /// Returns the summary of job `id`.
    pub fn summary(&self, id: JobId) -> Option<JobSummary> {
        match self.dispatcher.status(id) {
            Some(snapshot) => self.summary_of(id, &snapshot),
            None => self.result(id),
        }
    }

    /// The summary of job `id` whose JobMaster published `snapshot`.
    fn summary_of(&self, id: JobId, snapshot: &crate::JobSnapshot) -> Option<JobSummary> {
        let s = self.lock();
        let job = s.jobs.get(&id)?;
        Some(JobSummary {
            id,
            name: snapshot.name.clone(),
            status: snapshot.status,
            slots: job.graph.slots_needed(),
            subtasks: job.graph.subtask_count() as u32,
            restarts: snapshot.attempt,
            submitted_ms: snapshot.submitted_ms,
            ended_ms: snapshot.ended_ms,
            taskmanagers: job.allocation.keys().copied().collect(),
            message: snapshot.message.clone(),
            last_checkpoint: snapshot.checkpoints.last().map(|c| c.checkpoint),
        })
    }

    /// Returns every job's summary, in submission order.
    pub fn list(&self) -> Vec<JobSummary> {
        let mut all = self.results();
        all.extend(
            self.dispatcher
                .list()
                .into_iter()
                .filter_map(|(id, snapshot)| self.summary_of(id, &snapshot)),
        );
        all
    }

    /// Returns the completed checkpoints of job `id`.
    pub fn checkpoints(&self, id: JobId) -> Result<Vec<CheckpointSummary>, ClusterError> {
        let snapshot = self
            .dispatcher
            .status(id)
            .ok_or(ClusterError::UnknownJob(id))?;
        Ok(snapshot.checkpoints.iter().map(summary_of).collect())
    }

    /// Waits up to `timeout` for job `id` to end; returns its summary either way.
    pub fn wait(&self, id: JobId, timeout: Duration) -> Result<JobSummary, ClusterError> {
        let Some(snapshot) = self.dispatcher.wait_ended(id, timeout) else {
            return self.result(id).ok_or(ClusterError::UnknownJob(id));
        };
        self.summary_of(id, &snapshot)
            .ok_or(ClusterError::UnknownJob(id))
    }
}

fn summary_of(c: &crate::CompletedCheckpoint) -> CheckpointSummary {
    CheckpointSummary {
        id: c.checkpoint,
        size: c.size,
        incremental_size: c.incremental_size,
        duration_ms: c.duration.as_millis() as u64,
        alignment_ms: c.max_alignment_ms,
    }
}
