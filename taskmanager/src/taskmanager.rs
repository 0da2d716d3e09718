//! The TaskManager proper.
//!
//! Invariants: every deployed subtask reports `Running` and then exactly one terminal state;
//! a deployment that arrives after its job was cancelled reports `Cancelled` without
//! starting (deployments and cancellations may cross); a failing or panicking subtask never
//! takes the TaskManager down; dropping the TaskManager cancels its subtasks and joins their
//! threads (bounded by their loops' wait).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tracing::{error, info};
use weir_runtime::control::{
    ExecutionState, JobManagerGateway, JobManagerMessage, TaskDeployment, TaskManagerGateway,
    TaskManagerId, TaskManagerInfo, TaskManagerMessage,
};
use weir_runtime::exchange::{ConnectionManager, DataServer, GateRegistry, NetworkBufferPool};
use weir_runtime::metrics::MetricRegistry;
use weir_runtime::task::{run_task, TaskCommand, TaskEnvironment};
use weir_runtime::{
    FailureCause, FailureKind, JobGraph, JobId, SubtaskId, TaskError, TaskManagerConfig,
};

struct RunningTask {
    cancel: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    commands: crossbeam_channel::Sender<TaskCommand>,
    is_source: bool,
}

/// The subtasks of this TaskManager and the jobs it was told to cancel (one lock, so a
/// deployment and a cancellation of the same job are ordered).
#[derive(Default)]
struct Tasks {
    /// Subtasks by id and run of their job.
    running: HashMap<(SubtaskId, u32), RunningTask>,
    /// Runs of jobs told to cancel.
    cancelled_jobs: HashSet<(JobId, u32)>,
}

struct Inner {
    id: TaskManagerId,
    slots: u32,
    env: Arc<TaskEnvironment>,
    jobmanager: Arc<dyn JobManagerGateway>,
    programs: Mutex<HashMap<JobId, Arc<JobGraph>>>,
    tasks: Mutex<Tasks>,
}

/// A running TaskManager.
pub struct TaskManager {
    inner: Arc<Inner>,
    // Dropped last: keeps accepting until the tasks are gone.
    _server: DataServer,
}

impl TaskManager {
    /// Starts a TaskManager with `slots` slots whose data server binds `bind`, with the
    /// default configuration.
    pub fn start(
        id: TaskManagerId,
        slots: u32,
        bind: SocketAddr,
        jobmanager: Arc<dyn JobManagerGateway>,
    ) -> std::io::Result<Self> {
        Self::start_with_config(id, slots, bind, jobmanager, &TaskManagerConfig::default())
    }

    /// Starts a TaskManager with `slots` slots whose data server binds `bind`.
    pub fn start_with_config(
        id: TaskManagerId,
        slots: u32,
        bind: SocketAddr,
        jobmanager: Arc<dyn JobManagerGateway>,
        config: &TaskManagerConfig,
    ) -> std::io::Result<Self> {
        let registry = Arc::new(GateRegistry::new());
        let secret = config.cluster_secret.as_ref().map(|s| s.expose());
        let tls = config.internal_tls.clone();
        let server = DataServer::start_secured(bind, registry.clone(), secret, tls.clone())?;
        let env = Arc::new(TaskEnvironment {
            registry,
            taskmanager: id,
            data_address: server.local_addr(),
            metrics: Arc::new(MetricRegistry::new()),
            network: NetworkBufferPool::new(config.network_buffers),
            connections: Arc::new(ConnectionManager::secured(secret, tls)),
            jobmanager: jobmanager.clone(),
        });
        info!(taskmanager = id, slots, network_buffers = config.network_buffers, data_address = %server.local_addr(), data_tls = config.internal_tls.is_some(), "taskmanager started");
        Ok(Self {
            inner: Arc::new(Inner {
                id,
                slots,
                env,
                jobmanager,
                programs: Mutex::new(HashMap::new()),
                tasks: Mutex::new(Tasks::default()),
            }),
            _server: server,
        })
    }

    /// Returns what the JobManager needs to know about this TaskManager.
    pub fn info(&self) -> TaskManagerInfo {
        TaskManagerInfo {
            id: self.inner.id,
            slots: self.inner.slots,
            data_address: self.inner.env.data_address,
        }
    }

    /// Makes the code of job `id` available to deployments.
    pub fn register_program(&self, id: JobId, graph: Arc<JobGraph>) {
        self.inner
            .programs
            .lock()
            .expect("programs poisoned")
            .insert(id, graph);
    }

    /// Returns the metrics of the tasks this TaskManager ran or runs.
    pub fn metrics(&self) -> Arc<MetricRegistry> {
        self.inner.env.metrics.clone()
    }

    /// Returns `(buffers reserved, pool size)` of the network buffer pool.
    pub fn network_buffers(&self) -> (usize, usize) {
        let n = &self.inner.env.network;
        (n.reserved(), n.total())
    }

    /// Returns the gateway the JobManager uses to reach this TaskManager.
    pub fn gateway(&self) -> Arc<dyn TaskManagerGateway> {
        Arc::new(Gateway(self.inner.clone()))
    }

    /// Returns the number of subtasks whose threads are still running.
    pub fn task_count(&self) -> usize {
        let mut tasks = self.inner.tasks.lock().expect("tasks poisoned");
        reap_finished(&mut tasks.running);
        tasks.running.len()
    }
}

impl Drop for TaskManager {
    fn drop(&mut self) {
        let tasks: Vec<RunningTask> = {
            let mut t = self.inner.tasks.lock().expect("tasks poisoned");
            t.running.drain().map(|(_, v)| v).collect()
        };
        for t in &tasks {
            t.cancel.store(true, Ordering::Relaxed);
        }
        for mut t in tasks {
            if let Some(h) = t.thread.take() {
                let _ = h.join();
            }
        }
    }
}

/// Joins and forgets the threads of subtasks that have ended.
fn reap_finished(tasks: &mut HashMap<(SubtaskId, u32), RunningTask>) {
    tasks.retain(|_, t| match &t.thread {
        Some(h) if h.is_finished() => {
            if let Some(h) = t.thread.take() {
                let _ = h.join();
            }
            false
        }
        _ => true,
    });
}

struct Gateway(Arc<Inner>);

impl TaskManagerGateway for Gateway {
    fn send(&self, message: JobManagerMessage) {
        match message {
            JobManagerMessage::Deploy(d) => deploy(&self.0, *d),
            JobManagerMessage::TriggerCheckpoint {
                job,
                checkpoint,
                options,
                ..
            } => {
                // Only sources start a checkpoint; the others join when its barriers
                // reach them, and learn of one whose barriers may overtake, to time it.
                let everyone = options.timeout && !options.unaligned;
                let tasks = self.0.tasks.lock().expect("tasks poisoned");
                for ((id, _), t) in tasks.running.iter() {
                    if id.job == job && (t.is_source || everyone) {
                        let _ = t.commands.send(TaskCommand::TriggerCheckpoint {
                            checkpoint,
                            options,
                        });
                    }
                }
            }
            JobManagerMessage::NotifyCheckpointComplete {
                job,
                checkpoint,
                last,
            } => {
                let tasks = self.0.tasks.lock().expect("tasks poisoned");
                for ((id, _), t) in tasks.running.iter() {
                    if id.job == job {
                        let _ = t
                            .commands
                            .send(TaskCommand::CheckpointComplete { checkpoint, last });
                    }
                }
            }
            JobManagerMessage::NotifyCheckpointAborted { job, checkpoint } => {
                let tasks = self.0.tasks.lock().expect("tasks poisoned");
                for ((id, _), t) in tasks.running.iter() {
                    if id.job == job {
                        let _ = t.commands.send(TaskCommand::CheckpointAborted(checkpoint));
                    }
                }
            }
            JobManagerMessage::CancelJob { job, attempt } => {
                let mut tasks = self.0.tasks.lock().expect("tasks poisoned");
                tasks.cancelled_jobs.insert((job, attempt));
                for ((id, a), t) in tasks.running.iter() {
                    if id.job == job && *a == attempt {
                        t.cancel.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}

fn report(inner: &Inner, subtask: SubtaskId, attempt: u32, state: ExecutionState) {
    report_failure(inner, subtask, attempt, state, None);
}

fn report_failure(
    inner: &Inner,
    subtask: SubtaskId,
    attempt: u32,
    state: ExecutionState,
    failure: Option<FailureCause>,
) {
    inner.jobmanager.send(TaskManagerMessage::TaskState {
        subtask,
        attempt,
        state,
        failure,
    });
}

/// Starts deployment `d` on its own thread, unless its job has no program here or the run
/// it belongs to was already cancelled; reports every outcome to the JobManager.
fn deploy(inner: &Arc<Inner>, d: TaskDeployment) {
    let subtask = d.subtask;
    let attempt = d.attempt;
    let Some(graph) = program_of(inner, subtask.job) else {
        let message = format!(
            "taskmanager {} has no program for job {}",
            inner.id, subtask.job
        );
        report_start_failure(inner, &d.name, subtask, attempt, message);
        return;
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let (commands, commands_rx) = crossbeam_channel::unbounded();
    let is_source = d.is_source;
    let inner2 = inner.clone();
    let cancel2 = cancel.clone();
    let name = d.name.clone();
    let thread_name = format!("{} ({}/{})", d.name, subtask.subtask + 1, d.parallelism);
    let mut tasks = inner.tasks.lock().expect("tasks poisoned");
    reap_finished(&mut tasks.running);
    if tasks.cancelled_jobs.contains(&(subtask.job, attempt)) {
        drop(tasks);
        report(inner, subtask, attempt, ExecutionState::Cancelled);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name(thread_name.chars().take(60).collect())
        .spawn(move || run_subtask(&inner2, &graph, &d, &cancel2, &commands_rx));
    match spawned {
        Ok(h) => {
            tasks.running.insert(
                (subtask, attempt),
                RunningTask {
                    cancel,
                    thread: Some(h),
                    commands,
                    is_source,
                },
            );
        }
        Err(e) => {
            drop(tasks);
            let message = format!("cannot start task thread: {e}");
            report_start_failure(inner, &name, subtask, attempt, message)
        }
    }
}

/// Reports that subtask `subtask` (of task `name`) failed before it could start.
fn report_start_failure(
    inner: &Inner,
    name: &str,
    subtask: SubtaskId,
    attempt: u32,
    message: String,
) {
    let failure = FailureCause::task(FailureKind::Io, name, subtask.subtask, message);
    report_failure(
        inner,
        subtask,
        attempt,
        ExecutionState::Failed,
        Some(failure),
    );
}

/// Returns the registered program of `job`, if any.
fn program_of(inner: &Inner, job: JobId) -> Option<Arc<JobGraph>> {
    inner
        .programs
        .lock()
        .expect("programs poisoned")
        .get(&job)
        .cloned()
}

/// Runs deployment `d` on the calling thread: reports `Running`, then exactly one terminal
/// state.
fn run_subtask(
    inner: &Inner,
    graph: &JobGraph,
    d: &TaskDeployment,
    cancel: &Arc<AtomicBool>,
    commands: &crossbeam_channel::Receiver<TaskCommand>,
) {
    let subtask = d.subtask;
    let attempt = d.attempt;
    report(inner, subtask, attempt, ExecutionState::Running);
    match run_catching_panics(inner, graph, d, cancel, commands) {
        Ok(()) => report(inner, subtask, attempt, ExecutionState::Finished),
        Err(TaskError::Cancelled) => report(inner, subtask, attempt, ExecutionState::Cancelled),
        Err(e) => {
            error!(task = %d.name, subtask = subtask.subtask, kind = %e.kind(), error = %e, "task failed");
            let failure = e.into_cause(&d.name, subtask.subtask);
            report_failure(
                inner,
                subtask,
                attempt,
                ExecutionState::Failed,
                Some(failure),
            )
        }
    }
}

/// Returns the result of running deployment `d` with its vertex's code, turning a panic into
/// [`TaskError::Panic`] so that it never takes the TaskManager down.
fn run_catching_panics(
    inner: &Inner,
    graph: &JobGraph,
    d: &TaskDeployment,
    cancel: &Arc<AtomicBool>,
    commands: &crossbeam_channel::Receiver<TaskCommand>,
) -> Result<(), TaskError> {
    let subtask = d.subtask;
    let body = std::panic::AssertUnwindSafe(|| {
        let Some(factory) = graph
            .vertices
            .get(subtask.vertex as usize)
            .and_then(|v| v.factory.as_deref())
        else {
            return Err(TaskError::Configuration(format!(
                "job {} has no code for vertex {}",
                subtask.job, subtask.vertex
            )));
        };
        run_task(d, factory, &graph.config, &inner.env, cancel, commands)
    });
    std::panic::catch_unwind(body).unwrap_or_else(|panic| {
        Err(TaskError::Panic(format!(
            "task thread panicked: {}",
            weir_runtime::task::panic_message(&*panic)
        )))
    })
}
