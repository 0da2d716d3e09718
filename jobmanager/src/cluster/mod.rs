//! The standalone JobManager: the dispatcher of [`crate::JobManager`] behind a control RPC
//! port, with TaskManagers that register over the network, job artifacts, one worker
//! process per job and TaskManager, slot allocation and failover across processes.
//!
//! The pieces:
//! - [`artifacts`]: job programs stored by SHA-256 digest;
//! - [`slots`]: which TaskManager slots each job holds (a pure function of the free slots);
//! - this file: the cluster's state (TaskManagers, workers, jobs) and the [`Placement`]
//!   the dispatcher asks on every (re)start;
//! - [`server`]: the RPC endpoint for clients, TaskManagers and workers;
//! - [`rest`]: the read-only REST API, with the JSON shapes of [`json`].
//!
//! Invariants:
//! - a job holds slots only while it is placed or runs; its slots are free again when it
//!   ends or before it is placed anew after a failure;
//! - a TaskManager that misses heartbeats for `heartbeat.timeout`, or whose connection
//!   breaks, is forgotten at once, and every job with subtasks on it fails over;
//! - a worker whose connection breaks fails its job's subtasks on its TaskManager only;
//! - the cluster lock is never held while calling into the dispatcher, and the dispatcher
//!   calls back (placement) without its own lock, so the two never wait on each other.

pub mod artifacts;
pub mod banner;
pub mod json;
pub mod rest;
pub mod server;
pub mod slots;

use crate::dispatcher::{Endpoints, JobManager, Placement};
use crate::JobOutcome;
use artifacts::ArtifactStore;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weir_runtime::control::{
    JobManagerMessage, TaskManagerGateway, TaskManagerId, TaskManagerInfo,
};
use weir_runtime::rpc::messages::{
    CheckpointSummary, JobStatus, JobSubmission, JobSummary, TaskManagerCommand, WorkerCommand,
    WorkerSpec,
};
use weir_runtime::rpc::LinkSender;
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
    commands: LinkSender<TaskManagerCommand>,
    last_heartbeat: Instant,
}

struct WorkerEntry {
    data_address: SocketAddr,
    commands: LinkSender<WorkerCommand>,
    /// Which connection registered it (a later one replaces it).
    connection: u64,
}

struct JobEntry {
    name: String,
    graph: Arc<JobGraph>,
    fingerprint: u64,
    worker: WorkerSpec,
    /// Status as the cluster knows it; while the dispatcher runs the job, its state refines
    /// it (see [`Cluster::summary`]).
    status: JobStatus,
    message: Option<String>,
    submitted_ms: i64,
    ended_ms: Option<i64>,
    /// Slots held per TaskManager.
    allocation: BTreeMap<TaskManagerId, u32>,
    cancel_requested: bool,
    /// The checkpoints and restarts when the job ended.
    final_checkpoints: Vec<CheckpointSummary>,
    final_restarts: u32,
    seq: u64,
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
}

/// The state of a standalone cluster, shared by its connections and job threads.
pub struct Cluster {
    settings: ClusterSettings,
    dispatcher: Arc<JobManager>,
    artifacts: ArtifactStore,
    state: Mutex<State>,
    /// Notified on every change a waiting placement may care about.
    changed: Condvar,
    me: Weak<Cluster>,
}

/// Sends a job's control messages to its worker on one TaskManager.
struct WorkerGateway(LinkSender<WorkerCommand>);

impl TaskManagerGateway for WorkerGateway {
    fn send(&self, message: JobManagerMessage) {
        let _ = self.0.send(WorkerCommand::Task(message));
    }
}

struct ClusterPlacement(Weak<Cluster>);

impl Placement for ClusterPlacement {
    fn place(&self, job: JobId, _attempt: u32) -> Result<Endpoints, String> {
        match self.0.upgrade() {
            Some(c) => c.place(job),
            None => Err("the JobManager is shutting down".into()),
        }
    }

    fn deployed(&self, job: JobId) {
        if let Some(c) = self.0.upgrade() {
            c.check_workers(job);
        }
    }
}

impl Cluster {
    /// Creates the cluster state with its artifact store.
    pub fn new(settings: ClusterSettings) -> Result<Arc<Self>, artifacts::ArtifactError> {
        let artifacts = ArtifactStore::open(&settings.artifacts_dir, settings.artifact_max_bytes)?;
        Ok(Arc::new_cyclic(|me| Self {
            settings,
            dispatcher: Arc::new(JobManager::new()),
            artifacts,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            me: me.clone(),
        }))
    }

    /// The cluster's settings.
    pub fn settings(&self) -> &ClusterSettings {
        &self.settings
    }

    /// The artifact store.
    pub fn artifacts(&self) -> &ArtifactStore {
        &self.artifacts
    }

    /// The dispatcher.
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
        commands: LinkSender<TaskManagerCommand>,
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
        commands: LinkSender<WorkerCommand>,
    ) -> Result<(), String> {
        let mut s = self.lock();
        let Some(entry) = s.jobs.get(&job) else {
            return Err(format!("job {job} is unknown to this JobManager"));
        };
        if !entry.allocation.contains_key(&tm) {
            return Err(format!("job {job} holds no slot on taskmanager {tm}"));
        }
        if entry.fingerprint != fingerprint {
            let why = format!(
                "the program of job '{}' built a different job graph in its worker than at submission; \
                 graph construction must be deterministic (the same arguments must build the same operators, \
                 parallelism and settings)",
                entry.name
            );
            s.worker_failures.insert((job, tm), why.clone());
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

    /// Accepts a job: records it and starts a thread that places, runs and follows it.
    pub fn submit(&self, submission: JobSubmission) -> Result<JobId, String> {
        let JobSubmission {
            artifact,
            mut graph,
            args,
            parallelism,
            savepoint,
        } = submission;
        if !self.artifacts.contains(&artifact) {
            return Err(format!("no artifact {artifact} is stored; upload it first"));
        }
        graph
            .validate()
            .map_err(|e| format!("invalid job graph: {e}"))?;
        if graph.slots_needed() == 0 {
            return Err("the job graph has no vertices".into());
        }
        let fingerprint = graph.fingerprint();
        graph.config.savepoint_restore = savepoint;
        if let Some(settings) = &graph.config.savepoint_restore {
            // Refused now rather than after waiting for slots.
            crate::dispatcher::savepoint_restore(&graph, settings).map_err(|e| e.to_string())?;
        }
        let mut s = self.lock();
        s.next_seq += 1;
        let seq = s.next_seq;
        let id = JobId(weir_runtime::now_ms() as u64 ^ seq.rotate_left(48) ^ fingerprint);
        let name = graph.name.clone();
        s.jobs.insert(
            id,
            JobEntry {
                name: name.clone(),
                graph: Arc::new(graph),
                fingerprint,
                worker: WorkerSpec {
                    job: id,
                    artifact,
                    args,
                    parallelism,
                    start: 0,
                },
                status: JobStatus::WaitingForSlots,
                message: None,
                submitted_ms: weir_runtime::now_ms(),
                ended_ms: None,
                allocation: BTreeMap::new(),
                cancel_requested: false,
                final_checkpoints: Vec::new(),
                final_restarts: 0,
                seq,
            },
        );
        drop(s);
        info!(job_id = %id, job = %name, "job submitted");
        let me = self.me.upgrade().ok_or("the JobManager is shutting down")?;
        std::thread::Builder::new()
            .name(format!("weir-job-{id}"))
            .spawn(move || me.run_job(id))
            .map_err(|e| format!("cannot start the job's thread: {e}"))?;
        Ok(id)
    }

    /// Places job `id`, hands it to the dispatcher, and records how it ended.
    fn run_job(&self, id: JobId) {
        let graph = match self.lock().jobs.get(&id) {
            Some(j) => j.graph.clone(),
            None => return,
        };
        let placement: Arc<dyn Placement> = Arc::new(ClusterPlacement(self.me.clone()));
        let outcome = self.place(id).and_then(|endpoints| {
            let handle = self
                .dispatcher
                .submit_on(id, graph, endpoints, Some(placement))
                .map_err(|e| e.to_string())?;
            let cancelled = match self.lock().jobs.get_mut(&id) {
                Some(j) => {
                    j.status = JobStatus::Running;
                    j.cancel_requested
                }
                None => false,
            };
            if cancelled {
                // Asked while the job was handed over.
                let _ = self.dispatcher.cancel(id);
            }
            self.check_workers(id);
            loop {
                if let Some(outcome) = handle.wait(Duration::from_secs(1)) {
                    return Ok(outcome);
                }
            }
        });
        self.job_ended(id, outcome);
    }

    fn job_ended(&self, id: JobId, outcome: Result<JobOutcome, String>) {
        let mut s = self.lock();
        let Some(job) = s.jobs.get_mut(&id) else {
            return;
        };
        let (status, message) = match outcome {
            Ok(JobOutcome::Finished {
                checkpoints,
                restored_from,
                ..
            }) => {
                job.final_checkpoints = checkpoints.iter().map(summary_of).collect();
                job.final_restarts = restored_from.len() as u32;
                (JobStatus::Finished, None)
            }
            Ok(JobOutcome::Failed { message }) | Err(message) => {
                if job.cancel_requested {
                    (JobStatus::Cancelled, None)
                } else {
                    (JobStatus::Failed, Some(message))
                }
            }
        };
        info!(job_id = %id, status = status.name(), message = message.as_deref(), "job ended");
        job.status = status;
        job.message = message;
        job.ended_ms = Some(weir_runtime::now_ms());
        let allocated: Vec<TaskManagerId> =
            std::mem::take(&mut job.allocation).into_keys().collect();
        self.stop_workers(&mut s, id, |_| true, "the job ended");
        // Workers that never registered (still starting) are stopped by their TaskManager.
        for tm in allocated {
            if let Some(t) = s.taskmanagers.get(&tm) {
                let _ = t.commands.send(TaskManagerCommand::StopWorker { job: id });
            }
        }
        s.worker_failures.retain(|(j, _), _| *j != id);
        s.starts.retain(|(j, _), _| *j != id);
        drop(s);
        self.changed.notify_all();
    }

    /// Fails the subtasks of `job` placed on a TaskManager whose worker is gone: a worker
    /// lost between its placement and its deployment had no subtasks to fail then.
    fn check_workers(&self, job: JobId) {
        let gone: Vec<TaskManagerId> = {
            let s = self.lock();
            let Some(j) = s.jobs.get(&job) else {
                return;
            };
            j.allocation
                .keys()
                .filter(|tm| !s.workers.contains_key(&(job, **tm)))
                .copied()
                .collect()
        };
        for tm in gone {
            let reason = format!(
                "the worker of job {job} on taskmanager {tm} was lost while the job deployed"
            );
            warn!(job_id = %job, taskmanager = tm, "job worker lost while deploying");
            self.dispatcher.fail_subtasks_on(job, tm, &reason);
        }
    }

    /// Stops the workers of `job` on the TaskManagers `which` selects.
    fn stop_workers(
        &self,
        s: &mut State,
        job: JobId,
        which: impl Fn(TaskManagerId) -> bool,
        reason: &str,
    ) {
        let stop: Vec<TaskManagerId> = s
            .workers
            .keys()
            .filter(|(j, tm)| *j == job && which(*tm))
            .map(|(_, tm)| *tm)
            .collect();
        for tm in stop {
            if let Some(w) = s.workers.remove(&(job, tm)) {
                let _ = w.commands.send(WorkerCommand::Exit {
                    reason: reason.to_string(),
                });
            }
            if let Some(t) = s.taskmanagers.get(&tm) {
                let _ = t.commands.send(TaskManagerCommand::StopWorker { job });
            }
        }
    }

    /// Finds slots for job `id` (waiting up to the slot timeout), starts its missing
    /// workers and waits for them to register; returns where its subtasks go.
    fn place(&self, id: JobId) -> Result<Endpoints, String> {
        let deadline = Instant::now() + self.settings.slot_timeout;
        let mut s = self.lock();
        let previous: std::collections::BTreeSet<TaskManagerId> = match s.jobs.get_mut(&id) {
            Some(j) => std::mem::take(&mut j.allocation).into_keys().collect(),
            None => Default::default(),
        };
        let allocation = loop {
            let job = s.jobs.get(&id).ok_or("the job is gone")?;
            if job.cancel_requested {
                return Err("job was cancelled".into());
            }
            let needed = job.graph.slots_needed();
            let free: BTreeMap<TaskManagerId, u32> = s
                .taskmanagers
                .iter()
                .map(|(tm, t)| {
                    let used: u32 = s.jobs.values().filter_map(|j| j.allocation.get(tm)).sum();
                    (*tm, t.slots.saturating_sub(used))
                })
                .collect();
            if let Some(a) = slots::allocate(needed, &free) {
                break a;
            }
            let total_free: u32 = free.values().sum();
            let message = format!(
                "needs {needed} slots; {total_free} free on {} taskmanagers",
                free.len()
            );
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "job '{}' {message} after waiting {} s (slot.request.timeout)",
                    job.name,
                    self.settings.slot_timeout.as_secs()
                ));
            }
            let job = s.jobs.get_mut(&id).expect("checked above");
            if job.status != JobStatus::WaitingForSlots {
                info!(job_id = %id, %message, "job waits for slots");
            }
            job.status = JobStatus::WaitingForSlots;
            job.message = Some(message);
            s = self
                .changed
                .wait_timeout(s, (deadline - now).min(Duration::from_secs(1)))
                .expect("cluster state poisoned")
                .0;
        };
        let job = s.jobs.get_mut(&id).expect("checked in the loop");
        job.status = JobStatus::Deploying;
        job.message = None;
        job.allocation = allocation.clone();
        let spec = job.worker.clone();
        self.stop_workers(
            &mut s,
            id,
            |tm| !allocation.contains_key(&tm),
            "the job was placed on other taskmanagers",
        );
        s.worker_failures.retain(|(j, _), _| *j != id);
        for tm in previous.difference(&allocation.keys().copied().collect()) {
            // A worker there that never registered is stopped by its TaskManager.
            if let Some(t) = s.taskmanagers.get(tm) {
                let _ = t.commands.send(TaskManagerCommand::StopWorker { job: id });
            }
        }
        for tm in allocation.keys() {
            if !s.workers.contains_key(&(id, *tm)) {
                s.next_start += 1;
                let start = s.next_start;
                s.starts.insert((id, *tm), start);
                if let Some(t) = s.taskmanagers.get(tm) {
                    let spec = WorkerSpec {
                        start,
                        ..spec.clone()
                    };
                    let _ = t
                        .commands
                        .send(TaskManagerCommand::StartWorker(Box::new(spec)));
                }
            }
        }
        info!(job_id = %id, ?allocation, "job placed");
        let deadline = Instant::now() + self.settings.worker_timeout;
        loop {
            let mut endpoints: Endpoints = Vec::new();
            for (tm, slots) in &allocation {
                if !s.taskmanagers.contains_key(tm) {
                    return Err(format!(
                        "taskmanager {tm} was lost while the job's worker started"
                    ));
                }
                if let Some(why) = s.worker_failures.get(&(id, *tm)) {
                    return Err(format!("the job's worker on taskmanager {tm}: {why}"));
                }
                if let Some(w) = s.workers.get(&(id, *tm)) {
                    endpoints.push((
                        TaskManagerInfo {
                            id: *tm,
                            slots: *slots,
                            data_address: w.data_address,
                        },
                        Arc::new(WorkerGateway(w.commands.clone())),
                    ));
                }
            }
            if endpoints.len() == allocation.len() {
                return Ok(endpoints);
            }
            if s.jobs.get(&id).is_none_or(|j| j.cancel_requested) {
                return Err("job was cancelled".into());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "the job's workers did not register within {} s",
                    self.settings.worker_timeout.as_secs()
                ));
            }
            s = self
                .changed
                .wait_timeout(s, (deadline - now).min(Duration::from_secs(1)))
                .expect("cluster state poisoned")
                .0;
        }
    }

    /// Cancels job `id`.
    pub fn cancel(&self, id: JobId) -> Result<(), String> {
        let mut s = self.lock();
        let job = s.jobs.get_mut(&id).ok_or(format!("unknown job {id}"))?;
        if job.status.is_terminal() {
            return Err(format!(
                "job {id} has already ended ({})",
                job.status.name()
            ));
        }
        job.cancel_requested = true;
        drop(s);
        self.changed.notify_all();
        info!(job_id = %id, "job cancellation requested");
        // A job not handed to the dispatcher yet ends when its placement sees the request.
        let _ = self.dispatcher.cancel(id);
        Ok(())
    }

    /// Returns the summary of job `id`.
    pub fn summary(&self, id: JobId) -> Option<JobSummary> {
        let s = self.lock();
        let job = s.jobs.get(&id)?;
        let mut summary = JobSummary {
            id,
            name: job.name.clone(),
            status: job.status,
            slots: job.graph.slots_needed(),
            subtasks: job.graph.subtask_count() as u32,
            restarts: job.final_restarts,
            submitted_ms: job.submitted_ms,
            ended_ms: job.ended_ms,
            taskmanagers: job.allocation.keys().copied().collect(),
            message: job.message.clone(),
            last_checkpoint: job.final_checkpoints.last().map(|c| c.id),
        };
        drop(s);
        if summary.status.is_terminal() {
            return Some(summary);
        }
        if let Some(run) = self.dispatcher.status(id) {
            summary.restarts = run.attempt;
            summary.last_checkpoint = run.checkpoints.last().map(|c| c.checkpoint);
            summary.status = if run.restarting {
                if summary.status == JobStatus::WaitingForSlots {
                    JobStatus::WaitingForSlots
                } else {
                    summary.message = run.failure;
                    JobStatus::Restarting
                }
            } else if run.deploying > 0 {
                JobStatus::Deploying
            } else {
                JobStatus::Running
            };
        }
        Some(summary)
    }

    /// Returns every job's summary, in submission order.
    pub fn list(&self) -> Vec<JobSummary> {
        let mut ids: Vec<(u64, JobId)> = self
            .lock()
            .jobs
            .iter()
            .map(|(id, j)| (j.seq, *id))
            .collect();
        ids.sort();
        ids.into_iter()
            .filter_map(|(_, id)| self.summary(id))
            .collect()
    }

    /// Returns the completed checkpoints of job `id`.
    pub fn checkpoints(&self, id: JobId) -> Result<Vec<CheckpointSummary>, String> {
        let ended = {
            let s = self.lock();
            let job = s.jobs.get(&id).ok_or(format!("unknown job {id}"))?;
            job.status
                .is_terminal()
                .then(|| job.final_checkpoints.clone())
        };
        if let Some(done) = ended {
            return Ok(done);
        }
        Ok(self
            .dispatcher
            .status(id)
            .map(|r| r.checkpoints.iter().map(summary_of).collect())
            .unwrap_or_default())
    }

    /// Waits up to `timeout` for job `id` to end; returns its summary either way.
    pub fn wait(&self, id: JobId, timeout: Duration) -> Result<JobSummary, String> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            let job = s.jobs.get(&id).ok_or(format!("unknown job {id}"))?;
            let now = Instant::now();
            if job.status.is_terminal() || now >= deadline {
                break;
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .expect("cluster state poisoned")
                .0;
        }
        drop(s);
        self.summary(id).ok_or(format!("unknown job {id}"))
    }

    /// Returns the ids and slots of the registered TaskManagers.
    pub fn taskmanagers(&self) -> Vec<(TaskManagerId, u32)> {
        self.lock()
            .taskmanagers
            .iter()
            .map(|(id, t)| (*id, t.slots))
            .collect()
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
