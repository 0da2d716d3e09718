//! The JobManager's dispatcher: accepts jobs, starts one [`JobMaster`] per job, and routes
//! every message about a job to its JobMaster's mailbox.
//!
//! It keeps only the map job id → JobMaster handle (and, for the local mini-cluster, the
//! TaskManagers registered with it). Its lock guards that map alone and is never held
//! while a JobMaster works, so one job's slow checkpoint storage or placement never delays
//! another job. A handle outlives its JobMaster: the final snapshot of an ended job stays
//! readable.
//!
//! [`JobMaster`]: crate::job_master

use crate::cluster::ClusterError;
use crate::ha::CheckpointRecord;
use crate::job_master::event::JobEvent;
use crate::job_master::status::{JobSnapshot, Published};
use crate::job_master::{JobMaster, JobMasterSetup, PlacementProgress, Start};
use crate::savepoint_restore::savepoint_restore;
use crate::scheduler::{schedule, ScheduleError};
use crate::{CheckpointCoordinator, JobHandle, SavepointHandle, TriggerRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{info, warn};
use weir_runtime::control::RestoreSpec;
use weir_runtime::control::{
    JobManagerGateway, TaskManagerGateway, TaskManagerId, TaskManagerInfo, TaskManagerMessage,
};
use weir_runtime::{CheckpointId, GraphError, JobGraph, JobId};

/// The longest a caller waits for a JobMaster to answer a request (it answers between two
/// events, so only a checkpoint store that hangs makes this wait long).
const ASK_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The job has ended.
    #[error("job {job} has already ended ({status})")]
    Ended {
        /// The job.
        job: JobId,
        /// How it ended.
        status: &'static str,
    },
    /// The job's JobMaster did not answer in time.
    #[error("the JobMaster of job {0} did not answer within 60 s")]
    Unresponsive(JobId),
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
    #[error("savepoint of job {job}: {source}")]
    SavepointFailed {
        /// The job.
        job: JobId,
        /// Why.
        source: crate::SavepointError,
    },
}

/// The TaskManagers (or job workers) a job runs on, each with its gateway.
pub type Endpoints = Vec<(TaskManagerInfo, Arc<dyn TaskManagerGateway>)>;

/// Finds where a job runs (a standalone cluster: slots on the TaskManagers alive now, and a
/// worker process for the job on each). Without one, a job runs on the TaskManagers
/// registered with the JobManager, and a restart deploys the same placement again.
pub trait Placement: Send + Sync {
    /// Returns the endpoints for run `attempt` of `job`, waiting (bounded) for slots and
    /// workers and telling `progress` what it waits for; an error fails the run.
    fn place(
        &self,
        job: JobId,
        attempt: u32,
        progress: &PlacementProgress,
    ) -> Result<Endpoints, ClusterError>;

    /// Called once the run placed last was deployed, to fail subtasks sent to an endpoint
    /// that was lost in between.
    fn deployed(&self, _job: JobId) {}

    /// Called once the job has ended: its slots and workers are free.
    fn ended(&self, _job: JobId) {}
}

/// How a job's checkpoints continue under high availability: recorded beyond its
/// storage, from where an earlier leader left them.
#[derive(Clone, Debug)]
pub struct CheckpointContinuation {
    /// Where ids are reserved and completions recorded.
    pub record: Arc<dyn CheckpointRecord>,
    /// The first checkpoint id this leader may hand out.
    pub next_id: CheckpointId,
    /// The newest checkpoint recorded complete: the job starts from it.
    pub latest: Option<CheckpointId>,
}

/// One JobMaster as the dispatcher holds it.
struct JobMasterHandle {
    mailbox: UnboundedSender<JobEvent>,
    published: Arc<Published>,
    /// Submission order, for listings.
    seq: u64,
}

#[derive(Default)]
struct Jobs {
    masters: HashMap<JobId, JobMasterHandle>,
    next_seq: u64,
}

/// The JobManager of one cluster.
pub struct JobManager {
    /// Runs the JobMasters, their timers and their placements. `None` once dropped.
    runtime: Option<tokio::runtime::Runtime>,
    taskmanagers: Mutex<Vec<(TaskManagerInfo, Arc<dyn TaskManagerGateway>)>>,
    jobs: Mutex<Jobs>,
}

impl Default for JobManager {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for JobManager {
    fn drop(&mut self) {
        // Never blocks, so a JobManager may be dropped anywhere, even on a runtime.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl JobManager {
    /// Creates a JobManager without TaskManagers.
    pub fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-jobmaster")
            .enable_time()
            .build()
            .expect("cannot start the JobManager's runtime threads");
        Self {
            runtime: Some(runtime),
            taskmanagers: Mutex::new(Vec::new()),
            jobs: Mutex::new(Jobs::default()),
        }
    }

    /// Adds a TaskManager and its gateway.
    pub fn register_taskmanager(
        &self,
        info: TaskManagerInfo,
        gateway: Arc<dyn TaskManagerGateway>,
    ) {
        info!(taskmanager = info.id, slots = info.slots, data_address = %info.data_address, "taskmanager registered");
        self.taskmanagers
            .lock()
            .expect("taskmanagers poisoned")
            .push((info, gateway));
    }

    /// Validates, schedules and deploys `graph` as job `id` on the registered TaskManagers.
    pub fn submit(&self, id: JobId, graph: &JobGraph) -> Result<JobHandle, JobManagerError> {
        let endpoints = self
            .taskmanagers
            .lock()
            .expect("taskmanagers poisoned")
            .clone();
        self.submit_on(id, Arc::new(graph.clone()), endpoints)
    }

    /// Validates, schedules and deploys `graph` as job `id` on `endpoints`; restarts deploy
    /// on the same endpoints.
    pub fn submit_on(
        &self,
        id: JobId,
        graph: Arc<JobGraph>,
        endpoints: Endpoints,
    ) -> Result<JobHandle, JobManagerError> {
        graph.validate()?;
        let infos: Vec<_> = endpoints.iter().map(|(i, _)| i.clone()).collect();
        let deployments = schedule(id, &graph, &infos)?;
        self.start(id, graph, None, Start::Deploy(endpoints, deployments), None)
    }

    /// Validates `graph` and starts job `id`: its JobMaster asks `placement` where each run
    /// goes, the first one included. With `continuation` (high availability) its
    /// checkpoints are recorded there and it starts from the latest one recorded.
    pub fn submit_placed(
        &self,
        id: JobId,
        graph: Arc<JobGraph>,
        placement: Arc<dyn Placement>,
        continuation: Option<CheckpointContinuation>,
    ) -> Result<JobHandle, JobManagerError> {
        graph.validate()?;
        self.start(id, graph, Some(placement), Start::Place, continuation)
    }

    fn start(
        &self,
        id: JobId,
        graph: Arc<JobGraph>,
        placement: Option<Arc<dyn Placement>>,
        start: Start,
        continuation: Option<CheckpointContinuation>,
    ) -> Result<JobHandle, JobManagerError> {
        let recovered = continuation.as_ref().and_then(|c| c.latest);
        let initial_restore = match (recovered, &graph.config.savepoint_restore) {
            (Some(latest), _) => recovered_restore(id, &graph, latest)?,
            (None, Some(settings)) => Some(savepoint_restore(&graph, settings)?),
            (None, None) => None,
        };
        let checkpoints = match &graph.config.checkpointing {
            Some(c) => {
                let storage = weir_runtime::checkpoint::CheckpointStorage::open(&c.dir)?;
                let first_id = initial_restore
                    .as_ref()
                    .map_or(1, |r| r.metadata.checkpoint + 1)
                    .max(continuation.as_ref().map_or(1, |c| c.next_id));
                let subtasks = crate::job_master::subtasks_of(id, &graph);
                let sources = subtasks
                    .iter()
                    .filter(|(s, _)| graph.vertices[s.vertex as usize].is_source)
                    .map(|(s, _)| *s)
                    .collect::<Vec<_>>();
                let tasks = subtasks.into_iter().map(|(s, _)| s);
                let shared = crate::checkpoint_io::registry(&storage, id);
                let coordinator =
                    CheckpointCoordinator::new(id, &graph.name, c.clone(), shared, tasks, first_id)
                        .with_sources(sources);
                Some((coordinator, storage))
            }
            None => None,
        };
        let mut jobs = self.lock_jobs();
        if jobs.masters.contains_key(&id) {
            return Err(JobManagerError::Duplicate(id));
        }
        let runtime = self.runtime().clone();
        let (mailbox, rx) = tokio::sync::mpsc::unbounded_channel();
        let published = Arc::new(Published::new(JobSnapshot::created(&graph.name)));
        let (done, outcome) = crossbeam_channel::bounded(1);
        info!(job_id = %id, job = %graph.name, savepoint = graph.config.savepoint_restore.as_ref().map(|s| s.path.as_str()), "job submitted");
        jobs.next_seq += 1;
        let seq = jobs.next_seq;
        jobs.masters.insert(
            id,
            JobMasterHandle {
                mailbox: mailbox.clone(),
                published: published.clone(),
                seq,
            },
        );
        drop(jobs);
        let setup = JobMasterSetup {
            id,
            graph,
            placement,
            checkpoints,
            recorded: initial_restore
                .as_ref()
                .map(|r| r.metadata.checkpoint)
                .filter(|_| recovered.is_some()),
            initial_restore,
            record: continuation.map(|c| c.record),
            done,
            published,
            mailbox,
            runtime: runtime.clone(),
        };
        JobMaster::spawn(setup, start, rx);
        Ok(JobHandle { id, rx: outcome })
    }

    /// Cancels job `id`; refused once it has ended.
    pub fn cancel(&self, id: JobId) -> Result<(), JobManagerError> {
        self.ask(id, |reply| JobEvent::Cancel { reply })?
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
        let target = target.map(str::to_string);
        self.trigger(
            id,
            if stop {
                TriggerRequest::Stop {
                    target,
                    drain: false,
                }
            } else {
                TriggerRequest::Savepoint { target }
            },
        )
    }

    /// Asks running job `id` for the savepoint or checkpoint of `request`; a checkpoint is
    /// answered with its location. Requests wait for any checkpoint in progress.
    pub fn trigger(
        &self,
        id: JobId,
        request: TriggerRequest,
    ) -> Result<SavepointHandle, JobManagerError> {
        self.ask(id, |reply| JobEvent::Savepoint { request, reply })?
    }

    /// Withdraws the savepoint request of `handle` if it was not triggered yet (it then
    /// never runs, and the handle gets no answer); returns whether it was. One already
    /// triggered runs on and completes or fails within the checkpoint timeout.
    pub fn withdraw_savepoint(&self, handle: &SavepointHandle) -> bool {
        let request = handle.request;
        self.ask(handle.job, |reply| JobEvent::Withdraw { request, reply })
            .unwrap_or(false)
    }

    /// Fails every subtask of job `id`'s current run deployed on TaskManager `tm` that has
    /// not ended (its TaskManager or worker process is gone): the job fails over as after a
    /// task failure.
    pub fn fail_subtasks_on(&self, id: JobId, tm: TaskManagerId, reason: &str) {
        self.tell(
            id,
            JobEvent::TaskManagerLost {
                taskmanager: tm,
                reason: reason.to_string(),
            },
        );
    }

    /// Returns the latest snapshot of job `id` (ended jobs included), or `None` if it was
    /// never submitted.
    pub fn status(&self, id: JobId) -> Option<JobSnapshot> {
        let published = self.lock_jobs().masters.get(&id)?.published.clone();
        Some(published.get())
    }

    /// Waits up to `timeout` for job `id` to end; returns its latest snapshot either way.
    pub fn wait_ended(&self, id: JobId, timeout: Duration) -> Option<JobSnapshot> {
        let published = self.lock_jobs().masters.get(&id)?.published.clone();
        Some(published.wait_terminal(timeout))
    }

    /// Returns every job's id and snapshot, in submission order.
    pub fn list(&self) -> Vec<(JobId, JobSnapshot)> {
        let mut all: Vec<(u64, JobId, Arc<Published>)> = self
            .lock_jobs()
            .masters
            .iter()
            .map(|(id, h)| (h.seq, *id, h.published.clone()))
            .collect();
        all.sort_by_key(|(seq, _, _)| *seq);
        all.into_iter().map(|(_, id, p)| (id, p.get())).collect()
    }

    /// Posts `event` to job `id`'s JobMaster (dropped if the job is unknown or ended).
    fn tell(&self, id: JobId, event: JobEvent) {
        let mailbox = self.lock_jobs().masters.get(&id).map(|h| h.mailbox.clone());
        match mailbox {
            Some(m) => {
                // A JobMaster that ended has no mailbox left: its job needs nothing more.
                let _ = m.send(event);
            }
            None => warn!(job_id = %id, "message for an unknown job"),
        }
    }

    /// Asks job `id`'s JobMaster and waits (bounded) for its answer.
    fn ask<T>(
        &self,
        id: JobId,
        event: impl FnOnce(crossbeam_channel::Sender<T>) -> JobEvent,
    ) -> Result<T, JobManagerError> {
        let (mailbox, published) = {
            let jobs = self.lock_jobs();
            let h = jobs
                .masters
                .get(&id)
                .ok_or(JobManagerError::UnknownJob(id))?;
            (h.mailbox.clone(), h.published.clone())
        };
        let ended = || JobManagerError::Ended {
            job: id,
            status: published.status().name(),
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        if mailbox.send(event(tx)).is_err() {
            return Err(ended());
        }
        match rx.recv_timeout(ASK_TIMEOUT) {
            Ok(answer) => Ok(answer),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(JobManagerError::Unresponsive(id))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => Err(ended()),
        }
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the JobManager")
            .handle()
    }

    fn lock_jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.jobs.lock().expect("jobmanager jobs poisoned")
    }
}

/// The newest usable checkpoint of job `id` up to `latest` (the newest recorded complete
/// by an earlier leader), to start the recovered job from.
fn recovered_restore(
    id: JobId,
    graph: &JobGraph,
    latest: CheckpointId,
) -> Result<Option<RestoreSpec>, JobManagerError> {
    let Some(c) = &graph.config.checkpointing else {
        return Ok(None);
    };
    let storage = weir_runtime::checkpoint::CheckpointStorage::open_existing(&c.dir)?;
    let restore = crate::job_master::checkpoint_restore(&storage, id, latest)?;
    info!(job_id = %id, checkpoint = restore.metadata.checkpoint, recorded = latest, "recovering job from its latest checkpoint");
    Ok(Some(restore))
}

impl JobManagerGateway for JobManager {
    fn send(&self, message: TaskManagerMessage) {
        self.tell(message.subtask().job, JobEvent::Task(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JobOutcome;
    use weir_runtime::control::{ExecutionState, JobManagerMessage};
    use weir_runtime::invokable::{TaskInvokable, TaskSetup};
    use weir_runtime::{FailureCause, FailureKind, JobConfig, JobVertex, TaskError};

    /// A TaskManager that fails every deployment synchronously, from inside `send`, as a
    /// TaskManager without the job's program does.
    struct Refusing(std::sync::Weak<JobManager>, FailureKind);

    impl TaskManagerGateway for Refusing {
        fn send(&self, message: JobManagerMessage) {
            if let (JobManagerMessage::Deploy(d), Some(jm)) = (message, self.0.upgrade()) {
                jm.send(TaskManagerMessage::TaskState {
                    subtask: d.subtask,
                    attempt: d.attempt,
                    state: ExecutionState::Failed,
                    failure: Some(FailureCause::job(self.1, "no program for this job")),
                });
            }
        }
    }

    fn refused_job(kind: FailureKind, config: JobConfig) -> (JobOutcome, JobSnapshot) {
        let jm = Arc::new(JobManager::new());
        jm.register_taskmanager(
            TaskManagerInfo {
                id: 0,
                slots: 1,
                data_address: "127.0.0.1:1".parse().unwrap(),
            },
            Arc::new(Refusing(Arc::downgrade(&jm), kind)),
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
                        Err(TaskError::Configuration("unused".into()))
                    },
                )),
            }],
            edges: vec![],
            config,
        };
        let handle = jm.submit(JobId(9), &graph).unwrap();
        let outcome = handle.wait(Duration::from_secs(30)).expect("the job ends");
        let snapshot = jm.status(JobId(9)).expect("known after its end");
        (outcome, snapshot)
    }

    #[test]
    fn a_taskmanager_reporting_from_inside_a_deploy_does_not_deadlock_the_jobmanager() {
        let (outcome, snapshot) = refused_job(FailureKind::Io, JobConfig::default());
        match outcome {
            JobOutcome::Failed { message } => {
                assert!(message.contains("no program"), "{message}")
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(snapshot.status.name(), "FAILED");
        assert!(snapshot.ended_ms.is_some());
    }

    #[test]
    fn a_failure_restarting_cannot_heal_fails_the_job_without_using_its_restarts() {
        let config = JobConfig {
            restart_strategy: Some(weir_runtime::RestartStrategy::FixedDelay {
                attempts: 1000,
                delay: Duration::from_millis(1),
            }),
            ..JobConfig::default()
        };
        let (outcome, snapshot) = refused_job(FailureKind::Configuration, config.clone());
        let JobOutcome::Failed { message } = outcome else {
            panic!("unexpected {outcome:?}");
        };
        assert!(message.contains("was not restarted"), "{message}");
        assert_eq!(snapshot.attempt, 0, "no restart");
        // The same failure as an I/O error is restarted until the strategy gives up.
        let (outcome, snapshot) = refused_job(FailureKind::Io, config);
        assert!(matches!(outcome, JobOutcome::Failed { .. }));
        assert_eq!(snapshot.attempt, 1000);
    }
}
