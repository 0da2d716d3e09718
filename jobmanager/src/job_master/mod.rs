//! One JobMaster per job: it owns the job's execution (its subtasks' states), checkpoint
//! coordinator, restart strategy and status, and changes them only in reaction to the
//! events of its mailbox ([`JobEvent`]), one at a time.
//!
//! A JobMaster is a task on the JobManager's runtime. Its timers (the checkpoint interval,
//! restart delays) are the runtime's; placement, which waits for slots and workers, runs on
//! the runtime's blocking pool and answers with an event; checkpoint storage I/O runs on the
//! JobMaster's own task, marked as blocking, so a slow store delays this job only, never
//! another job or a heartbeat.
//!
//! Invariants: the status moves only through [`status::transition`]; reports of an earlier
//! run (`attempt`) are ignored; once the status is terminal the JobMaster answers what it
//! owes (the outcome, pending savepoints), releases its placement and stops.

mod checkpoints;
pub(crate) mod event;
mod restart;
pub(crate) use restart::checkpoint_restore;
pub use restart::PlacementProgress;
pub mod status;

use crate::execution::{Decision, JobExecution};
use crate::ha::CheckpointRecord;
use crate::restart::RestartPolicy;
use crate::{CheckpointCoordinator, Endpoints, JobOutcome, Placement, SavepointError};
use crossbeam_channel::Sender;
use event::JobEvent;
use status::{transition, ExceptionEntry, Published, SubtaskStatus};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{info, warn};
use weir_runtime::checkpoint::CheckpointStorage;
use weir_runtime::control::{
    ExecutionState, JobManagerMessage, RestoreSpec, TaskDeployment, TaskManagerId,
    TaskManagerMessage,
};
use weir_runtime::rpc::messages::JobStatus;
use weir_runtime::{CheckpointId, FailureCause, FailureKind, JobGraph, JobId, SubtaskId};

/// How a JobMaster starts.
pub(crate) enum Start {
    /// Deploy these subtasks on these endpoints now (the local mini-cluster); restarts
    /// deploy the same placement again unless a placement is given.
    Deploy(Endpoints, Vec<(TaskManagerId, TaskDeployment)>),
    /// Ask the placement for endpoints first (a standalone cluster).
    Place,
}

/// Everything a new JobMaster is made of.
pub(crate) struct JobMasterSetup {
    pub id: JobId,
    pub graph: Arc<JobGraph>,
    pub placement: Option<Arc<dyn Placement>>,
    pub checkpoints: Option<(CheckpointCoordinator, CheckpointStorage)>,
    pub initial_restore: Option<RestoreSpec>,
    pub record: Option<Arc<dyn CheckpointRecord>>,
    pub recorded: Option<CheckpointId>,
    pub done: Sender<JobOutcome>,
    pub published: Arc<Published>,
    pub mailbox: UnboundedSender<JobEvent>,
    pub runtime: tokio::runtime::Handle,
}

/// The master of one job.
pub(crate) struct JobMaster {
    id: JobId,
    graph: Arc<JobGraph>,
    status: JobStatus,
    /// Why the job waits, restarts or failed.
    message: Option<String>,
    published: Arc<Published>,
    /// This JobMaster's own mailbox, for timers and placement answers.
    mailbox: UnboundedSender<JobEvent>,
    runtime: tokio::runtime::Handle,
    placement: Option<Arc<dyn Placement>>,
    /// Where the current run's subtasks are deployed.
    endpoints: Endpoints,
    deployments: Vec<(TaskManagerId, TaskDeployment)>,
    execution: JobExecution,
    /// The current run (0, then one more per restart).
    attempt: u32,
    restart: RestartPolicy,
    started: Instant,
    done: Sender<JobOutcome>,
    /// The checkpoint coordinator and the storage its actions go to.
    checkpoints: Option<(CheckpointCoordinator, CheckpointStorage)>,
    /// The savepoint the job started from: restarts use it until a checkpoint completes.
    initial_restore: Option<RestoreSpec>,
    /// What each restart restored from.
    restored_from: Vec<Option<CheckpointId>>,
    /// Answers owed to savepoint requests, by request id.
    savepoints: HashMap<u64, Sender<Result<String, SavepointError>>>,
    /// With high availability: where checkpoint ids are reserved and completions recorded.
    record: Option<Arc<dyn CheckpointRecord>>,
    /// The newest checkpoint recorded complete (restarts restore nothing newer).
    recorded: Option<CheckpointId>,
    /// Every checkpoint id below this one is reserved in the record.
    reserved: CheckpointId,
    /// Whether the last reservation failed (logged once until one succeeds).
    reserve_failed: bool,
    /// The root causes of the latest failed runs (the exception history).
    exceptions: std::collections::VecDeque<ExceptionEntry>,
    /// How many failed runs the exception history saw.
    exception_count: u64,
    /// When the current run was deployed.
    run_started_ms: Option<i64>,
}

impl JobMaster {
    /// Creates the JobMaster and starts it on `setup.runtime`: it deploys or places the
    /// job's first run, then follows its mailbox until the job ends.
    pub(crate) fn spawn(setup: JobMasterSetup, start: Start, rx: UnboundedReceiver<JobEvent>) {
        let strategy = setup.graph.config.effective_restart_strategy();
        let period =
            setup.graph.config.checkpointing.as_ref().map(|c| {
                (c.interval / 4).clamp(Duration::from_millis(1), Duration::from_millis(20))
            });
        let mut master = JobMaster {
            id: setup.id,
            execution: JobExecution::new(subtasks_of(setup.id, &setup.graph)),
            graph: setup.graph,
            status: JobStatus::Created,
            message: None,
            published: setup.published,
            mailbox: setup.mailbox,
            runtime: setup.runtime.clone(),
            placement: setup.placement,
            endpoints: Vec::new(),
            deployments: Vec::new(),
            attempt: 0,
            restart: RestartPolicy::new(strategy),
            started: Instant::now(),
            done: setup.done,
            checkpoints: setup.checkpoints,
            initial_restore: setup.initial_restore,
            restored_from: Vec::new(),
            savepoints: HashMap::new(),
            record: setup.record,
            recorded: setup.recorded,
            reserved: 0,
            reserve_failed: false,
            exceptions: std::collections::VecDeque::new(),
            exception_count: 0,
            run_started_ms: None,
        };
        setup.runtime.spawn(async move {
            tokio::task::block_in_place(|| master.start(start));
            master.run(rx, period).await;
        });
    }

    /// Handles the mailbox until the job ends.
    async fn run(mut self, mut rx: UnboundedReceiver<JobEvent>, period: Option<Duration>) {
        let mut ticker = period.map(|p| {
            let mut t = tokio::time::interval(p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        while !self.status.is_terminal() {
            let event = tokio::select! {
                e = rx.recv() => match e {
                    Some(e) => e,
                    None => return,
                },
                _ = tick(&mut ticker) => JobEvent::Tick,
            };
            // Checkpoint storage and placement hooks block: never on a shared worker.
            tokio::task::block_in_place(|| {
                self.handle(event);
                self.publish();
            });
        }
    }

    fn start(&mut self, start: Start) {
        match start {
            Start::Deploy(endpoints, deployments) => {
                self.endpoints = endpoints;
                self.deployments = deployments;
                let restore = self.initial_restore.clone();
                self.deploy(restore);
            }
            Start::Place => {
                self.set_status(JobStatus::Scheduling);
                self.place();
            }
        }
        self.publish();
    }

    /// A report of one of the job's subtasks.
    fn on_task_message(&mut self, message: TaskManagerMessage) {
        match message {
            TaskManagerMessage::TaskState {
                subtask,
                attempt,
                state,
                failure,
            } => {
                if attempt == self.attempt {
                    self.on_task_state(subtask, state, failure);
                }
            }
            TaskManagerMessage::AcknowledgeCheckpoint {
                subtask,
                checkpoint,
                state,
                alignment_ms,
                ended,
            } => self.with_coordinator(|c| {
                c.acknowledge(subtask, checkpoint, state, alignment_ms, ended)
            }),
            TaskManagerMessage::InputEnded { subtask } => {
                self.with_coordinator(|c| {
                    c.input_ended(subtask);
                    Vec::new()
                });
                self.on_tick();
            }
            TaskManagerMessage::DeclineCheckpoint {
                subtask,
                checkpoint,
                reason,
            } => self.with_coordinator(|c| c.decline(subtask, checkpoint, &reason)),
        }
    }

    fn handle(&mut self, event: JobEvent) {
        match event {
            JobEvent::Task(message) => self.on_task_message(message),
            JobEvent::Tick => self.on_tick(),
            JobEvent::Cancel { reply } => {
                let _ = reply.send(self.on_cancel());
            }
            JobEvent::Savepoint { request, reply } => {
                let _ = reply.send(self.on_savepoint(request));
            }
            JobEvent::Withdraw { request, reply } => {
                let _ = reply.send(self.on_withdraw(request));
            }
            JobEvent::TaskManagerLost {
                taskmanager,
                reason,
            } => self.on_taskmanager_lost(taskmanager, &reason),
            JobEvent::Waiting { attempt, message } => {
                if attempt == self.attempt && self.status == JobStatus::Scheduling {
                    self.message = Some(message);
                }
            }
            JobEvent::Placed { attempt, result } => self.on_placed(attempt, result),
            JobEvent::RestartDue { attempt } => self.on_restart_due(attempt),
        }
    }

    /// Moves to `to` if the state machine allows it (an illegal move is a bug: logged, and
    /// the status stays).
    fn set_status(&mut self, to: JobStatus) {
        if self.status == to {
            return;
        }
        match transition(self.status, to) {
            Ok(to) => {
                info!(job_id = %self.id, from = self.status.name(), to = to.name(), "job status");
                self.status = to;
            }
            Err(e) => warn!(job_id = %self.id, error = %e, "ignored"),
        }
    }

    fn publish(&self) {
        let coordinator = self.checkpoints.as_ref().map(|(c, _)| c);
        let subtasks: Vec<SubtaskStatus> = self
            .deployments
            .iter()
            .filter_map(|(tm, d)| {
                Some(SubtaskStatus {
                    subtask: d.subtask,
                    state: self.execution.state(d.subtask)?,
                    taskmanager: *tm,
                })
            })
            .collect();
        self.published.update(|s| {
            s.status = self.status;
            s.message = self.message.clone();
            s.attempt = self.attempt;
            s.failure = self.execution.failure().cloned();
            s.subtasks = subtasks;
            s.run_started_ms = self.run_started_ms;
            if s.exception_count != self.exception_count {
                s.exceptions = self.exceptions.iter().cloned().collect();
                s.exception_count = self.exception_count;
            }
            if let Some(c) = coordinator {
                if c.completed().len() != s.checkpoints.len() {
                    s.checkpoints = c.completed().to_vec();
                }
                if c.history() != &s.history {
                    s.history = c.history().clone();
                }
            }
            if self.status.is_terminal() && s.ended_ms.is_none() {
                s.ended_ms = Some(weir_runtime::now_ms());
            }
        });
    }

    fn on_task_state(
        &mut self,
        subtask: SubtaskId,
        state: ExecutionState,
        failure: Option<FailureCause>,
    ) {
        if !matches!(self.status, JobStatus::Deploying | JobStatus::Running) {
            return;
        }
        if state == ExecutionState::Finished {
            self.with_coordinator(|c| c.task_finished(subtask));
        }
        match self.execution.update(subtask, state, failure) {
            Decision::Continue => {
                if self.execution.count(ExecutionState::Deploying) == 0 {
                    self.set_status(JobStatus::Running);
                }
            }
            Decision::CancelAll => {
                let cause = self.execution.failure();
                warn!(job_id = %self.id, kind = cause.map(|c| c.kind.name()), cause = %cause.map(FailureCause::to_string).unwrap_or_default(), "job failing, cancelling its tasks");
                self.broadcast(JobManagerMessage::CancelJob {
                    job: self.id,
                    attempt: self.attempt,
                });
            }
            Decision::Finished => self.end(JobOutcome::Finished {
                duration: self.started.elapsed(),
                checkpoints: self
                    .checkpoints
                    .as_ref()
                    .map(|(c, _)| c.completed().to_vec())
                    .unwrap_or_default(),
                restored_from: self.restored_from.clone(),
            }),
            Decision::Ended { failure } => {
                let failure =
                    failure.unwrap_or_else(|| FailureCause::job(FailureKind::Io, "job ended"));
                self.on_run_failed(failure);
            }
        }
    }

    fn on_taskmanager_lost(&mut self, taskmanager: TaskManagerId, reason: &str) {
        let lost: Vec<SubtaskId> = self
            .deployments
            .iter()
            .filter(|(tm, _)| *tm == taskmanager)
            .map(|(_, d)| d.subtask)
            .collect();
        for subtask in lost {
            let cause = FailureCause::job(FailureKind::LostTaskManager, reason);
            self.on_task_state(subtask, ExecutionState::Failed, Some(cause));
        }
    }

    fn on_cancel(&mut self) -> Result<(), crate::JobManagerError> {
        if self.status.is_terminal() {
            return Err(crate::JobManagerError::Ended {
                job: self.id,
                status: self.status.name(),
            });
        }
        info!(job_id = %self.id, status = self.status.name(), "job cancellation requested");
        match self.status {
            JobStatus::Deploying | JobStatus::Running => {
                self.execution.cancel();
                self.broadcast(JobManagerMessage::CancelJob {
                    job: self.id,
                    attempt: self.attempt,
                });
            }
            // No run is deployed: the job ends now.
            _ => self.fail(FailureCause::job(
                FailureKind::Cancelled,
                "job was cancelled",
            )),
        }
        Ok(())
    }

    /// Ends the job with `outcome`: answers what is owed, cleans up its checkpoint storage
    /// and releases its placement.
    fn end(&mut self, outcome: JobOutcome) {
        let (status, failure) = match &outcome {
            JobOutcome::Finished { .. } => (JobStatus::Finished, None),
            JobOutcome::Failed { message } => {
                let cancelled = self
                    .execution
                    .failure()
                    .is_some_and(|f| f.kind == FailureKind::Cancelled);
                let status = if cancelled {
                    JobStatus::Cancelled
                } else {
                    JobStatus::Failed
                };
                (status, Some(message.clone()))
            }
        };
        self.with_coordinator(|c| c.ended(failure.as_deref()));
        self.with_coordinator(CheckpointCoordinator::shutdown);
        self.message = if status == JobStatus::Failed {
            failure
        } else {
            None
        };
        self.set_status(status);
        info!(job_id = %self.id, status = status.name(), ?outcome, "job ended");
        // Readers of the snapshot see the end no later than the submitter.
        self.publish();
        let _ = self.done.send(outcome);
        self.savepoints.clear();
        if let Some(p) = &self.placement {
            p.ended(self.id);
        }
    }

    /// Ends the job with `cause` outside any task report (a placement or restore that
    /// failed, a cancellation while no run is deployed).
    fn fail(&mut self, cause: FailureCause) {
        warn!(job_id = %self.id, kind = cause.kind.name(), cause = %cause, "job failed");
        self.record_exception(&cause);
        let message = cause.to_string();
        if cause.kind == FailureKind::Cancelled {
            self.execution.cancel();
        } else {
            self.execution.fail(cause);
        }
        self.end(JobOutcome::Failed { message });
    }

    /// Adds `cause` to the exception history (a cancellation is no exception).
    fn record_exception(&mut self, cause: &FailureCause) {
        if cause.kind == FailureKind::Cancelled {
            return;
        }
        self.exception_count += 1;
        if self.exceptions.len() == status::EXCEPTION_HISTORY_SIZE {
            self.exceptions.pop_front();
        }
        self.exceptions.push_back(ExceptionEntry {
            timestamp_ms: weir_runtime::now_ms(),
            cause: cause.clone(),
            attempt: self.attempt,
        });
    }

    /// Sends `message` to every endpoint of the current run.
    fn broadcast(&self, message: JobManagerMessage) {
        for (_, gw) in &self.endpoints {
            gw.send(message.clone());
        }
    }
}

/// Every subtask of `graph` as job `id`, with its task's name.
pub(crate) fn subtasks_of(id: JobId, graph: &JobGraph) -> Vec<(SubtaskId, String)> {
    graph
        .vertices
        .iter()
        .flat_map(|v| {
            (0..v.parallelism).map(move |s| {
                (
                    SubtaskId {
                        job: id,
                        vertex: v.id,
                        subtask: s,
                    },
                    v.name.clone(),
                )
            })
        })
        .collect()
}

/// Waits for the next tick of `ticker`, or forever without one.
async fn tick(ticker: &mut Option<tokio::time::Interval>) {
    match ticker {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending::<()>().await,
    }
}
