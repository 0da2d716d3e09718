//! The JobManager: knows the TaskManagers, accepts jobs, deploys them and follows them.
//!
//! It reacts to [`TaskManagerMessage`]s (it is itself the TaskManagers'
//! [`JobManagerGateway`]) and reports each job's outcome once, through its [`JobHandle`].
//! The decisions are made by [`crate::schedule`] and [`crate::JobExecution`]; this file is
//! the I/O edge around them.

use crate::checkpoint_coordinator::{CheckpointCoordinator, CoordinatorAction};
use crate::execution::{Decision, JobExecution};
use crate::restart::RestartPolicy;
use crate::scheduler::{schedule, ScheduleError};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::{info, warn};
use weir_runtime::control::{
    ExecutionState, JobManagerGateway, JobManagerMessage, RestoreSpec, TaskDeployment,
    TaskManagerGateway, TaskManagerId, TaskManagerInfo, TaskManagerMessage,
};
use weir_runtime::{GraphError, JobGraph, JobId};

/// Errors of job submission and control.
#[derive(Debug, Error)]
pub enum JobManagerError {
    /// The job graph is invalid.
    #[error("invalid job graph: {0}")]
    Graph(#[from] GraphError),
    /// The job cannot be placed.
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    /// A job with this id already runs.
    #[error("job {0} is already running")]
    Duplicate(JobId),
    /// No job with this id.
    #[error("unknown job {0}")]
    UnknownJob(JobId),
    /// The job's checkpoint storage cannot be used.
    #[error(transparent)]
    CheckpointStorage(#[from] weir_runtime::checkpoint::StorageError),
    /// The savepoint a job should start from cannot be used for it.
    #[error("cannot restore job '{job}' from savepoint {path}: {reason}")]
    Savepoint {
        /// The job's name.
        job: String,
        /// The savepoint as given.
        path: String,
        /// Why.
        reason: String,
    },
    /// A savepoint cannot be taken, or failed.
    #[error("savepoint of job {job}: {reason}")]
    SavepointFailed {
        /// The job.
        job: JobId,
        /// Why.
        reason: String,
    },
}

/// How a job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every subtask finished.
    Finished {
        /// Wall time from deployment to the last subtask's end.
        duration: Duration,
        /// The checkpoints that completed while it ran.
        checkpoints: Vec<crate::CompletedCheckpoint>,
        /// The checkpoint (or savepoint) each restart after a failure restored from, in
        /// order (`None`: the restart started without state).
        restored_from: Vec<Option<weir_runtime::CheckpointId>>,
    },
    /// The job failed or was cancelled; the message names the first failure.
    Failed {
        /// The first failure.
        message: String,
    },
}

/// Waits for the outcome of one submitted job.
pub struct JobHandle {
    /// The job's id.
    pub id: JobId,
    rx: Receiver<JobOutcome>,
}

impl JobHandle {
    /// Waits up to `timeout` for the job to end; `None` if it is still running.
    pub fn wait(&self, timeout: Duration) -> Option<JobOutcome> {
        match self.rx.recv_timeout(timeout) {
            Ok(outcome) => Some(outcome),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Some(JobOutcome::Failed {
                message: format!("job {} was dropped by the JobManager", self.id),
            }),
        }
    }
}

/// Waits for the answer to one savepoint request.
pub struct SavepointHandle {
    job: JobId,
    request: u64,
    rx: Receiver<Result<String, String>>,
}

impl SavepointHandle {
    /// Waits up to `timeout` for the savepoint: its URL, or why it failed; `None` if it is
    /// still in progress.
    pub fn wait(&self, timeout: Duration) -> Option<Result<String, JobManagerError>> {
        let failed = |reason: String| JobManagerError::SavepointFailed {
            job: self.job,
            reason,
        };
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(r.map_err(failed)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Some(Err(failed(
                "the job ended before the savepoint completed".into(),
            ))),
        }
    }
}

/// The TaskManagers (or job workers) a job runs on, each with its gateway.
pub type Endpoints = Vec<(TaskManagerInfo, Arc<dyn TaskManagerGateway>)>;

/// Finds where a job runs after a restart (a standalone cluster: slots on the TaskManagers
/// alive now, and a worker process for the job on each). Without one, a restart deploys the
/// same placement again.
pub trait Placement: Send + Sync {
    /// Returns the endpoints for run `attempt` of `job`, waiting (bounded) for slots and
    /// workers; an error fails the job.
    fn place(&self, job: JobId, attempt: u32) -> Result<Endpoints, String>;

    /// Called once the run placed last was deployed (outside the JobManager's lock), to
    /// fail subtasks sent to an endpoint that was lost in between.
    fn deployed(&self, _job: JobId) {}
}

/// What the JobManager knows about a running job, for status queries.
#[derive(Clone, Debug)]
pub struct JobRunStatus {
    /// The current run (0, then one more per restart).
    pub attempt: u32,
    /// Whether the run ended after a failure and the job waits for its restart.
    pub restarting: bool,
    /// Subtasks in each state: deploying, running, finished.
    pub deploying: usize,
    /// Subtasks running.
    pub running: usize,
    /// Subtasks finished.
    pub finished: usize,
    /// The checkpoints that completed so far, oldest first.
    pub checkpoints: Vec<crate::CompletedCheckpoint>,
    /// The first failure of the current run, if any.
    pub failure: Option<String>,
}

struct RunningJob {
    graph: Arc<JobGraph>,
    /// Where the current run's subtasks are deployed.
    endpoints: Endpoints,
    placement: Option<Arc<dyn Placement>>,
    execution: JobExecution,
    started: Instant,
    done: Sender<JobOutcome>,
    checkpoints: Option<CheckpointCoordinator>,
    /// The current run (0, then one more per restart).
    attempt: u32,
    /// Where each subtask runs; a restart deploys the same placement again.
    deployments: Vec<(TaskManagerId, TaskDeployment)>,
    restart: RestartPolicy,
    /// The savepoint the job started from: restarts use it until a checkpoint completes.
    initial_restore: Option<RestoreSpec>,
    /// What each restart restored from.
    restored_from: Vec<Option<weir_runtime::CheckpointId>>,
    /// Answers owed to savepoint requests, by request id.
    savepoints: HashMap<u64, Sender<Result<String, String>>>,
    /// Cancelled on request: a pending restart ends the job instead.
    cancel_requested: bool,
}

#[derive(Default)]
struct State {
    taskmanagers: Vec<(TaskManagerInfo, Arc<dyn TaskManagerGateway>)>,
    jobs: HashMap<JobId, RunningJob>,
}

/// The JobManager of one cluster.
#[derive(Default)]
pub struct JobManager {
    state: Arc<Mutex<State>>,
}

impl JobManager {
    /// Creates a JobManager without TaskManagers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a TaskManager and its gateway.
    pub fn register_taskmanager(
        &self,
        info: TaskManagerInfo,
        gateway: Arc<dyn TaskManagerGateway>,
    ) {
        info!(taskmanager = info.id, slots = info.slots, data_address = %info.data_address, "taskmanager registered");
        self.lock().taskmanagers.push((info, gateway));
    }

    /// Validates, schedules and deploys `graph` as job `id` on the registered TaskManagers.
    pub fn submit(&self, id: JobId, graph: &JobGraph) -> Result<JobHandle, JobManagerError> {
        let endpoints = self.lock().taskmanagers.clone();
        self.submit_on(id, Arc::new(graph.clone()), endpoints, None)
    }

    /// Validates, schedules and deploys `graph` as job `id` on `endpoints`; restarts ask
    /// `placement` for new endpoints (or deploy on the same ones without it).
    pub fn submit_on(
        &self,
        id: JobId,
        graph: Arc<JobGraph>,
        endpoints: Endpoints,
        placement: Option<Arc<dyn Placement>>,
    ) -> Result<JobHandle, JobManagerError> {
        graph.validate()?;
        let mut state = self.lock();
        if state.jobs.contains_key(&id) {
            return Err(JobManagerError::Duplicate(id));
        }
        let infos: Vec<_> = endpoints.iter().map(|(i, _)| i.clone()).collect();
        let mut deployments = schedule(id, &graph, &infos)?;
        let initial_restore = match &graph.config.savepoint_restore {
            Some(settings) => Some(savepoint_restore(&graph, settings)?),
            None => None,
        };
        for (_, d) in &mut deployments {
            d.restore = initial_restore.clone();
        }
        let first_id = initial_restore
            .as_ref()
            .map_or(1, |r| r.metadata.checkpoint + 1);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let execution =
            JobExecution::new(deployments.iter().map(|(_, d)| (d.subtask, d.name.clone())));
        let checkpoints = match &graph.config.checkpointing {
            Some(c) => {
                let storage = weir_runtime::checkpoint::CheckpointStorage::open(&c.dir)?;
                let tasks = deployments.iter().map(|(_, d)| d.subtask);
                let sources = deployments
                    .iter()
                    .filter(|(_, d)| d.is_source)
                    .map(|(_, d)| d.subtask);
                Some((
                    CheckpointCoordinator::new(
                        id,
                        &graph.name,
                        c.clone(),
                        storage,
                        tasks,
                        first_id,
                    )
                    .with_sources(sources),
                    c.interval,
                ))
            }
            None => None,
        };
        let tick = checkpoints.as_ref().map(|(_, interval)| *interval);
        state.jobs.insert(
            id,
            RunningJob {
                graph: graph.clone(),
                endpoints: endpoints.clone(),
                placement,
                execution,
                started: Instant::now(),
                done: tx,
                checkpoints: checkpoints.map(|(c, _)| c),
                attempt: 0,
                deployments: deployments.clone(),
                restart: RestartPolicy::new(graph.config.effective_restart_strategy()),
                initial_restore,
                restored_from: Vec::new(),
                savepoints: HashMap::new(),
                cancel_requested: false,
            },
        );
        if let Some(interval) = tick {
            start_checkpoint_timer(self.state.clone(), id, interval);
        }
        info!(job_id = %id, job = %graph.name, subtasks = deployments.len(), savepoint = graph.config.savepoint_restore.as_ref().map(|s| s.path.as_str()), "deploying job");
        let sends = deploy_messages(&endpoints, deployments);
        // A gateway may call back into this JobManager (a TaskManager reporting a failed
        // deployment): never send while holding the lock.
        drop(state);
        for (gw, msg) in sends {
            gw.send(msg);
        }
        Ok(JobHandle { id, rx })
    }

    /// Cancels a running job.
    pub fn cancel(&self, id: JobId) -> Result<(), JobManagerError> {
        let mut state = self.lock();
        let job = state
            .jobs
            .get_mut(&id)
            .ok_or(JobManagerError::UnknownJob(id))?;
        job.execution.cancel();
        job.cancel_requested = true;
        let attempt = job.attempt;
        let gateways = job_gateways(&state, id);
        drop(state);
        broadcast_cancel(&gateways, id, attempt);
        Ok(())
    }

    /// Takes a savepoint of running job `id` into `target` (a URL or a path; `None`: the
    /// job's `state.savepoints.dir`), and with `stop` stops the job once it completes
    /// (stop-with-savepoint: sources emit nothing after its barrier, sinks commit it, and
    /// the job finishes without ending its input). The savepoint waits for any checkpoint
    /// in progress. A failed savepoint leaves the job running.
    pub fn trigger_savepoint(
        &self,
        id: JobId,
        target: Option<&str>,
        stop: bool,
    ) -> Result<SavepointHandle, JobManagerError> {
        let refused = |reason: String| JobManagerError::SavepointFailed { job: id, reason };
        let mut state = self.lock();
        let job = state
            .jobs
            .get_mut(&id)
            .ok_or(JobManagerError::UnknownJob(id))?;
        let Some(c) = job.checkpoints.as_mut() else {
            return Err(refused(
                "the job takes no checkpoints; savepoints need its checkpoint storage (set execution.checkpointing.interval and state.checkpoints.dir)".into(),
            ));
        };
        let target = target
            .map(str::to_string)
            .or_else(|| c.savepoint_dir().map(str::to_string))
            .ok_or_else(|| {
                refused("no savepoint directory given and state.savepoints.dir is not set".into())
            })?;
        let target = weir_runtime::checkpoint::location_url(&target)?;
        let request = c
            .request_savepoint(crate::SavepointRequest { target, stop })
            .map_err(refused)?;
        let (tx, rx) = crossbeam_channel::bounded(1);
        job.savepoints.insert(request, tx);
        Ok(SavepointHandle {
            job: id,
            request,
            rx,
        })
    }

    /// Withdraws the savepoint request of `handle` if it was not triggered yet (it then
    /// never runs, and the handle gets no answer); returns whether it was. One already
    /// triggered runs on and completes or fails within the checkpoint timeout.
    pub fn withdraw_savepoint(&self, handle: &SavepointHandle) -> bool {
        let mut state = self.lock();
        let Some(job) = state.jobs.get_mut(&handle.job) else {
            return false;
        };
        let withdrawn = job
            .checkpoints
            .as_mut()
            .is_some_and(|c| c.withdraw(handle.request));
        if withdrawn {
            job.savepoints.remove(&handle.request);
            info!(job_id = %handle.job, request = handle.request, "savepoint request withdrawn");
        }
        withdrawn
    }

    /// Fails every subtask of job `id`'s current run deployed on TaskManager `tm` that has
    /// not ended (its TaskManager or worker process is gone): the job fails over as after a
    /// task failure. Returns how many subtasks it failed.
    pub fn fail_subtasks_on(&self, id: JobId, tm: TaskManagerId, reason: &str) -> usize {
        let (attempt, subtasks) = {
            let state = self.lock();
            let Some(job) = state.jobs.get(&id) else {
                return 0;
            };
            let subtasks: Vec<_> = job
                .deployments
                .iter()
                .filter(|(t, _)| *t == tm)
                .map(|(_, d)| d.subtask)
                .collect();
            (job.attempt, subtasks)
        };
        for subtask in &subtasks {
            self.send(TaskManagerMessage::TaskState {
                subtask: *subtask,
                attempt,
                state: ExecutionState::Failed,
                error: Some(reason.to_string()),
                channel_failure: false,
            });
        }
        subtasks.len()
    }

    /// Returns the status of running job `id`, or `None` once it ended (or was never
    /// submitted).
    pub fn status(&self, id: JobId) -> Option<JobRunStatus> {
        let state = self.lock();
        let job = state.jobs.get(&id)?;
        Some(JobRunStatus {
            attempt: job.attempt,
            restarting: job.execution.all_terminal(),
            deploying: job.execution.count(ExecutionState::Deploying),
            running: job.execution.count(ExecutionState::Running),
            finished: job.execution.count(ExecutionState::Finished),
            checkpoints: job
                .checkpoints
                .as_ref()
                .map(|c| c.completed().to_vec())
                .unwrap_or_default(),
            failure: job.execution.failure().map(str::to_string),
        })
    }

    /// Runs `f` on the checkpoint coordinator of `job` (if it checkpoints) and carries out
    /// its actions.
    fn with_coordinator(
        &self,
        job: JobId,
        f: impl FnOnce(&mut CheckpointCoordinator) -> Vec<CoordinatorAction>,
    ) {
        let mut state = self.lock();
        let Some(c) = state
            .jobs
            .get_mut(&job)
            .and_then(|j| j.checkpoints.as_mut())
        else {
            return;
        };
        let actions = f(c);
        let outbox = coordinator_outbox(&mut state, job, actions);
        drop(state);
        outbox.send();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("jobmanager state poisoned")
    }
}

/// Ticks the checkpoint coordinator of job `id` until the job ends.
fn start_checkpoint_timer(state: Arc<Mutex<State>>, id: JobId, interval: Duration) {
    let period = (interval / 4).clamp(Duration::from_millis(1), Duration::from_millis(20));
    let spawned = std::thread::Builder::new()
        .name(format!("weir-checkpoints-{id}"))
        .spawn(move || loop {
            std::thread::sleep(period);
            let mut s = state.lock().expect("jobmanager state poisoned");
            let Some(job) = s.jobs.get_mut(&id) else {
                return;
            };
            if !job.execution.can_checkpoint() {
                continue;
            }
            let Some(c) = job.checkpoints.as_mut() else {
                return;
            };
            let actions = c.tick(Instant::now(), weir_runtime::now_ms());
            let outbox = coordinator_outbox(&mut s, id, actions);
            drop(s);
            outbox.send();
        });
    if let Err(e) = spawned {
        warn!(job_id = %id, error = %e, "cannot start the checkpoint timer; the job runs without checkpoints");
    }
}

/// Messages to send once the state lock is released (gateways may call back into the
/// JobManager).
#[must_use = "the messages must be sent"]
struct Outbox {
    messages: Vec<JobManagerMessage>,
    gateways: Vec<Arc<dyn TaskManagerGateway>>,
}

impl Outbox {
    fn send(self) {
        for m in self.messages {
            for gw in &self.gateways {
                gw.send(m.clone());
            }
        }
    }
}

/// Carries out the coordinator's actions for job `id`: fails the job if asked to, and
/// returns the messages to send to every TaskManager.
fn coordinator_outbox(state: &mut State, id: JobId, actions: Vec<CoordinatorAction>) -> Outbox {
    let mut messages = Vec::new();
    for a in actions {
        match a {
            CoordinatorAction::Trigger {
                checkpoint,
                timestamp_ms,
                options,
            } => messages.push(JobManagerMessage::TriggerCheckpoint {
                job: id,
                checkpoint,
                timestamp_ms,
                options,
            }),
            CoordinatorAction::NotifyComplete { checkpoint } => {
                messages.push(JobManagerMessage::NotifyCheckpointComplete {
                    job: id,
                    checkpoint,
                })
            }
            CoordinatorAction::NotifyAborted { checkpoint } => {
                messages.push(JobManagerMessage::NotifyCheckpointAborted {
                    job: id,
                    checkpoint,
                })
            }
            CoordinatorAction::SavepointDone { request, result } => {
                if let Some(tx) = state
                    .jobs
                    .get_mut(&id)
                    .and_then(|j| j.savepoints.remove(&request))
                {
                    let _ = tx.send(result);
                }
            }
            CoordinatorAction::FailJob { reason } => {
                if let Some(job) = state.jobs.get_mut(&id) {
                    warn!(job_id = %id, %reason, "failing job");
                    job.execution.fail(reason);
                    messages.push(JobManagerMessage::CancelJob {
                        job: id,
                        attempt: job.attempt,
                    });
                }
            }
        }
    }
    Outbox {
        gateways: if messages.is_empty() {
            Vec::new()
        } else {
            job_gateways(state, id)
        },
        messages,
    }
}

/// The gateways of the endpoints job `id` runs on.
fn job_gateways(state: &State, id: JobId) -> Vec<Arc<dyn TaskManagerGateway>> {
    state.jobs.get(&id).map_or_else(Vec::new, |j| {
        j.endpoints.iter().map(|(_, gw)| gw.clone()).collect()
    })
}

/// Pairs each deployment with the gateway of the endpoint it goes to.
fn deploy_messages(
    endpoints: &Endpoints,
    deployments: Vec<(TaskManagerId, TaskDeployment)>,
) -> Vec<(Arc<dyn TaskManagerGateway>, JobManagerMessage)> {
    deployments
        .into_iter()
        .filter_map(|(tm, d)| {
            let gw = endpoints.iter().find(|(i, _)| i.id == tm)?.1.clone();
            Some((gw, JobManagerMessage::Deploy(Box::new(d))))
        })
        .collect()
}

fn broadcast_cancel(gateways: &[Arc<dyn TaskManagerGateway>], job: JobId, attempt: u32) {
    for gw in gateways {
        gw.send(JobManagerMessage::CancelJob { job, attempt });
    }
}

/// Ends job `id` with failure `message` outside any task report (its restart could not be
/// placed or restored, or it was cancelled while waiting for one): answers what is owed
/// and cleans up its checkpoint storage.
fn end_job(state: &mut State, id: JobId, message: String) -> Outbox {
    warn!(job_id = %id, %message, "job failed");
    let actions = state
        .jobs
        .get_mut(&id)
        .and_then(|j| j.checkpoints.as_mut())
        .map(|c| c.ended(Some(&message)))
        .unwrap_or_default();
    let outbox = coordinator_outbox(state, id, actions);
    if let Some(mut job) = state.jobs.remove(&id) {
        if let Some(c) = job.checkpoints.as_mut() {
            if let Err(e) = c.shutdown() {
                warn!(job_id = %id, error = %e, "cannot clean up checkpoint storage");
            }
        }
        let _ = job.done.send(JobOutcome::Failed { message });
    }
    outbox
}

/// Returns whether run `attempt` of job `id` is still the one to restart; ends the job if
/// it was cancelled while waiting for its restart (`Err` then carries what to send once
/// the lock is released).
fn restart_wanted(state: &mut State, id: JobId, attempt: u32) -> Result<(), Option<Outbox>> {
    let Some(job) = state.jobs.get(&id) else {
        return Err(None);
    };
    if job.attempt != attempt {
        return Err(None);
    }
    if job.cancel_requested {
        return Err(Some(end_job(state, id, "job was cancelled".into())));
    }
    Ok(())
}

/// Sends `outbox`, if any, after releasing `guard`.
fn release_and_send(guard: std::sync::MutexGuard<'_, State>, outbox: Option<Outbox>) {
    drop(guard);
    if let Some(o) = outbox {
        o.send();
    }
}

/// Deploys the subtasks of job `id` again after `delay`, restored from its latest
/// usable checkpoint, unless the job ended meanwhile. A job with a [`Placement`] is
/// placed anew first.
fn schedule_restart(state: Arc<Mutex<State>>, id: JobId, attempt: u32, delay: Duration) {
    let spawned = std::thread::Builder::new()
        .name(format!("weir-restart-{id}"))
        .spawn(move || {
            std::thread::sleep(delay);
            let placement = {
                let mut s = state.lock().expect("jobmanager state poisoned");
                if let Err(outbox) = restart_wanted(&mut s, id, attempt) {
                    return release_and_send(s, outbox);
                }
                s.jobs.get(&id).and_then(|j| j.placement.clone())
            };
            // Placing waits for slots and workers: never under the lock.
            let placed = placement.map(|p| p.place(id, attempt));
            let mut s = state.lock().expect("jobmanager state poisoned");
            if let Err(outbox) = restart_wanted(&mut s, id, attempt) {
                return release_and_send(s, outbox);
            }
            if let Some(placed) = placed {
                let job = s.jobs.get_mut(&id).expect("checked by restart_wanted");
                let scheduled = placed.and_then(|endpoints| {
                    let infos: Vec<_> = endpoints.iter().map(|(i, _)| i.clone()).collect();
                    let deployments =
                        schedule(id, &job.graph, &infos).map_err(|e| e.to_string())?;
                    Ok((endpoints, deployments))
                });
                match scheduled {
                    Ok((endpoints, deployments)) => {
                        job.endpoints = endpoints;
                        job.deployments = deployments;
                    }
                    Err(reason) => {
                        // A failed placement is one more failed run: the restart strategy
                        // decides whether to try again.
                        let job = s.jobs.get_mut(&id).expect("checked by restart_wanted");
                        if let Some(delay) = job.restart.on_failure(Instant::now()) {
                            job.attempt += 1;
                            let next = job.attempt;
                            warn!(job_id = %id, %reason, restart = job.restart.restarts(), "cannot place the restarted job; restarting again");
                            drop(s);
                            return schedule_restart(state.clone(), id, next, delay);
                        }
                        let outbox = end_job(&mut s, id, format!("cannot restart job {id}: {reason}"));
                        return release_and_send(s, Some(outbox));
                    }
                }
            }
            let job = s.jobs.get_mut(&id).expect("checked by restart_wanted");
            // The latest usable checkpoint; before the first one completes (or when none is
            // usable), the savepoint the job started from.
            let restore = match job.checkpoints.as_ref() {
                Some(c) if !c.storage().completed(id).unwrap_or_default().is_empty() => {
                    match c.storage().latest_usable(id) {
                        Ok(metadata) => Some(RestoreSpec {
                            storage: c.storage().url().to_string(),
                            dir: weir_runtime::checkpoint::checkpoint_dir(id, metadata.checkpoint),
                            metadata,
                        }),
                        Err(e) if job.initial_restore.is_some() => {
                            warn!(job_id = %id, error = %e, "no usable checkpoint; restoring from the savepoint the job started from");
                            job.initial_restore.clone()
                        }
                        Err(e) => {
                            let outbox = end_job(&mut s, id, format!("cannot restore job {id}: {e}"));
                            return release_and_send(s, Some(outbox));
                        }
                    }
                }
                _ => job.initial_restore.clone(),
            };
            job.restored_from
                .push(restore.as_ref().map(|r| r.metadata.checkpoint));
            info!(job_id = %id, attempt, checkpoint = restore.as_ref().map(|r| r.metadata.checkpoint), "restarting job");
            job.execution = JobExecution::new(
                job.deployments
                    .iter()
                    .map(|(_, d)| (d.subtask, d.name.clone())),
            );
            if let Some(c) = job.checkpoints.as_mut() {
                c.resume();
            }
            let deployments: Vec<_> = job
                .deployments
                .iter()
                .map(|(tm, d)| {
                    let mut d = d.clone();
                    d.attempt = attempt;
                    d.restore = restore.clone();
                    (*tm, d)
                })
                .collect();
            let sends = deploy_messages(&job.endpoints, deployments);
            let placement = job.placement.clone();
            drop(s);
            for (gw, m) in sends {
                gw.send(m);
            }
            if let Some(p) = placement {
                p.deployed(id);
            }
        });
    if let Err(e) = spawned {
        warn!(job_id = %id, error = %e, "cannot schedule the restart");
    }
}

/// Opens and checks the savepoint `settings` names for `graph`: every operator state in it
/// must belong to an operator of the job (matched by `uid`) unless
/// `allow_non_restored_state`, and keyed state keeps its number of key groups.
pub(crate) fn savepoint_restore(
    graph: &JobGraph,
    settings: &weir_runtime::SavepointRestoreSettings,
) -> Result<RestoreSpec, JobManagerError> {
    let refuse = |reason: String| JobManagerError::Savepoint {
        job: graph.name.clone(),
        path: settings.path.clone(),
        reason,
    };
    let (url, metadata) = weir_runtime::checkpoint::open_savepoint(&settings.path)
        .map_err(|e| refuse(e.to_string()))?;
    let mut unmatched = Vec::new();
    for op in &metadata.operators {
        let Some(v) = graph
            .vertices
            .iter()
            .find(|v| v.operator_uids.contains(&op.uid))
        else {
            unmatched.push(op.uid.as_str());
            continue;
        };
        let keyed = op
            .subtasks
            .iter()
            .any(|h| h.key_group_end > h.key_group_start);
        if keyed && op.max_parallelism != v.max_parallelism {
            return Err(refuse(format!(
                "operator '{}' was snapshotted with max parallelism {} and has {} now; the number of key groups cannot change",
                op.uid, op.max_parallelism, v.max_parallelism
            )));
        }
    }
    if !unmatched.is_empty() {
        let ours: Vec<&str> = graph
            .vertices
            .iter()
            .flat_map(|v| v.operator_uids.iter().map(String::as_str))
            .collect();
        let note = if metadata.job_name == graph.name {
            String::new()
        } else {
            format!(" (it was taken from job '{}')", metadata.job_name)
        };
        if settings.allow_non_restored_state {
            warn!(job = %graph.name, savepoint = %settings.path, operators = ?unmatched, "skipping savepoint state of operators the job does not have (allow_non_restored_state)");
        } else {
            return Err(refuse(format!(
                "it has state for operators this job does not have: {}{note}; this job's operators are: {}; allow non-restored state (--allow-non-restored-state) to skip it",
                unmatched.join(", "),
                ours.join(", ")
            )));
        }
    }
    info!(job = %graph.name, savepoint = %url, checkpoint = metadata.checkpoint, "restoring from savepoint");
    Ok(RestoreSpec {
        storage: url,
        dir: String::new(),
        metadata,
    })
}

impl JobManagerGateway for JobManager {
    fn send(&self, message: TaskManagerMessage) {
        let (subtask, attempt, exec_state, error, channel_failure) = match message {
            TaskManagerMessage::TaskState {
                subtask,
                attempt,
                state,
                error,
                channel_failure,
            } => (subtask, attempt, state, error, channel_failure),
            TaskManagerMessage::AcknowledgeCheckpoint {
                subtask,
                checkpoint,
                state: handles,
                alignment_ms,
            } => {
                return self.with_coordinator(subtask.job, |c| {
                    c.acknowledge(Instant::now(), subtask, checkpoint, handles, alignment_ms)
                })
            }
            TaskManagerMessage::DeclineCheckpoint {
                subtask,
                checkpoint,
                reason,
            } => {
                return self
                    .with_coordinator(subtask.job, |c| c.decline(subtask, checkpoint, &reason))
            }
        };
        let mut state = self.lock();
        let Some(job) = state.jobs.get_mut(&subtask.job) else {
            warn!(job_id = %subtask.job, "state update for unknown job");
            return;
        };
        if attempt != job.attempt {
            // A late report of an earlier run.
            return;
        }
        let mut coordinator_actions = Vec::new();
        if exec_state == ExecutionState::Finished {
            if let Some(c) = job.checkpoints.as_mut() {
                coordinator_actions.extend(c.task_finished(Instant::now(), subtask));
            }
        }
        let mut cancel = false;
        let outcome = match job.execution.update_with_cause(
            subtask,
            exec_state,
            error,
            channel_failure,
        ) {
            Decision::Continue => None,
            Decision::CancelAll => {
                warn!(job_id = %subtask.job, cause = job.execution.failure().unwrap_or(""), "job failing, cancelling its tasks");
                cancel = true;
                None
            }
            Decision::Finished => Some(JobOutcome::Finished {
                duration: job.started.elapsed(),
                checkpoints: job
                    .checkpoints
                    .as_ref()
                    .map(|c| c.completed().to_vec())
                    .unwrap_or_default(),
                restored_from: job.restored_from.clone(),
            }),
            Decision::Ended { failure } => {
                let restart = if job.cancel_requested {
                    None
                } else {
                    job.restart.on_failure(Instant::now())
                };
                if let Some(delay) = restart {
                    job.attempt += 1;
                    if let Some(c) = job.checkpoints.as_mut() {
                        coordinator_actions.extend(c.pause(failure.as_deref().unwrap_or("")));
                    }
                    warn!(job_id = %subtask.job, cause = failure.as_deref().unwrap_or(""), restart = job.restart.restarts(), delay_ms = delay.as_millis() as u64, "job failed; restarting");
                    schedule_restart(self.state.clone(), subtask.job, job.attempt, delay);
                    None
                } else {
                    Some(JobOutcome::Failed {
                        message: failure.unwrap_or_else(|| "job ended".into()),
                    })
                }
            }
        };
        if let (Some(outcome), Some(c)) = (&outcome, job.checkpoints.as_mut()) {
            coordinator_actions.extend(c.ended(match outcome {
                JobOutcome::Finished { .. } => None,
                JobOutcome::Failed { message } => Some(message),
            }));
        }
        // Answers to savepoint requests (and nothing else: no tasks are left to message).
        let outbox = coordinator_outbox(&mut state, subtask.job, coordinator_actions);
        if let Some(outcome) = outcome {
            if let Some(mut job) = state.jobs.remove(&subtask.job) {
                if let Some(c) = job.checkpoints.as_mut() {
                    if let Err(e) = c.shutdown() {
                        warn!(job_id = %subtask.job, error = %e, "cannot clean up checkpoint storage");
                    }
                }
                info!(job_id = %subtask.job, ?outcome, "job ended");
                let _ = job.done.send(outcome);
            }
        }
        let gateways = if cancel {
            job_gateways(&state, subtask.job)
        } else {
            Vec::new()
        };
        drop(state);
        outbox.send();
        broadcast_cancel(&gateways, subtask.job, attempt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::invokable::{TaskInvokable, TaskSetup};
    use weir_runtime::{JobConfig, JobVertex, TaskError};

    /// A TaskManager that fails every deployment synchronously, from inside `send`, as a
    /// TaskManager without the job's program does.
    struct Refusing(std::sync::Weak<JobManager>);

    impl TaskManagerGateway for Refusing {
        fn send(&self, message: JobManagerMessage) {
            if let (JobManagerMessage::Deploy(d), Some(jm)) = (message, self.0.upgrade()) {
                jm.send(TaskManagerMessage::TaskState {
                    subtask: d.subtask,
                    attempt: d.attempt,
                    state: ExecutionState::Failed,
                    error: Some("no program for this job".into()),
                    channel_failure: false,
                });
            }
        }
    }

    #[test]
    fn a_taskmanager_reporting_from_inside_a_deploy_does_not_deadlock_the_jobmanager() {
        let jm = Arc::new(JobManager::new());
        jm.register_taskmanager(
            TaskManagerInfo {
                id: 0,
                slots: 1,
                data_address: "127.0.0.1:1".parse().unwrap(),
            },
            Arc::new(Refusing(Arc::downgrade(&jm))),
        );
        let graph = JobGraph {
            name: "j".into(),
            vertices: vec![JobVertex {
                id: 0,
                name: "v".into(),
                parallelism: 1,
                max_parallelism: 128,
                is_source: true,
                is_sink: true,
                operator_uids: Vec::new(),
                factory: Some(Arc::new(
                    |_s: TaskSetup| -> Result<Box<dyn TaskInvokable>, TaskError> {
                        Err(TaskError::Other("unused".into()))
                    },
                )),
            }],
            edges: vec![],
            config: JobConfig::default(),
        };
        let handle = jm.submit(JobId(9), &graph).unwrap();
        match handle.wait(Duration::from_secs(10)) {
            Some(JobOutcome::Failed { message }) => {
                assert!(message.contains("no program"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
