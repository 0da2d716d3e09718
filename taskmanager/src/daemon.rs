//! The standalone TaskManager process: registers its slots with the JobManager, heartbeats,
//! fetches and caches job artifacts, and supervises one worker process per job.
//!
//! It runs no user code itself: each job's subtasks run in a worker (the job's program
//! started with the worker environment, see [`crate::worker`]). With high availability it
//! follows the leading JobManager (see `leader_follower.rs`). Invariants:
//! - a worker's standard input is a pipe this process holds, so workers end with it;
//! - a worker that exits without being asked is reported to the JobManager;
//! - every command passes the [`Fence`]: one from a deposed leader is refused;
//! - when a JobManager connection ends, every worker is stopped and the TaskManager
//!   registers again with backoff: with a fixed address until no registration succeeded for
//!   `taskmanager.registration.timeout` (then [`run`] returns the error), with high
//!   availability with whichever JobManager leads.

use crate::artifact_cache::{create_private_dir, fetch_artifact, FetchError};
use crate::worker::{
    ENV_CLUSTER_SECRET, ENV_WORKER_DATA_HOST, ENV_WORKER_EPOCH, ENV_WORKER_JOB,
    ENV_WORKER_JOBMANAGER, ENV_WORKER_METRICS_HOST, ENV_WORKER_METRICS_PORT,
    ENV_WORKER_TASKMANAGER, ENV_WORKER_TLS_CERTIFICATE, ENV_WORKER_TLS_PRIVATE_KEY,
    ENV_WORKER_TLS_TRUSTED,
};
use crate::worker_output::{relay_streams, WorkerLabel};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::{info, warn};
use weir_runtime::control::TaskManagerId;
use weir_runtime::logging::LogFormat;
use weir_runtime::metrics::prometheus::{publish_process_memory, Endpoint};
use weir_runtime::rpc::messages::{
    ArtifactDigest, TaskManagerCommand, TaskManagerRequest, WorkerSpec,
};
use weir_runtime::rpc::{
    dial, spawn_link, Fence, Fenced, LinkReceiver, LinkSender, PeerRole, RpcError,
};
use weir_runtime::JobId;

/// Where a TaskManager finds its JobManager.
#[derive(Clone, Debug)]
pub enum JobManagerLocation {
    /// A fixed control address (`HOST:PORT`): the TaskManager registers there, and again
    /// after the connection ends, until the registration timeout passes without success.
    Address(String),
    /// The leader published in ZooKeeper: the TaskManager waits for one, and registers
    /// again with each new leader.
    Leader(weir_runtime::ha::HaConfig),
}

/// Settings of a standalone TaskManager.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// Where the JobManager is.
    pub jobmanager: JobManagerLocation,
    /// Slots offered.
    pub slots: u32,
    /// The cluster secret.
    pub secret: Option<weir_runtime::Secret>,
    /// Host the workers' data servers bind.
    pub data_host: String,
    /// Where fetched artifacts are cached.
    pub artifact_cache: PathBuf,
    /// How long a TaskManager with a fixed JobManager address keeps trying to register
    /// before it exits (`taskmanager.registration.timeout`).
    pub registration_timeout: Duration,
    /// Where this TaskManager and its workers serve Prometheus metrics, if anywhere.
    pub metrics: Option<Endpoint>,
    /// The files of `security.ssl.internal.*`, handed to the workers, if enabled.
    pub internal_tls: Option<weir_runtime::rpc::tls::InternalTlsFiles>,
}

/// The JobManager one connection serves: its address and epoch (0 without high
/// availability).
#[derive(Clone, Debug)]
pub(crate) struct Leader {
    /// Its control address.
    pub address: String,
    /// Its epoch.
    pub epoch: u64,
}

/// Why a TaskManager stopped.
#[derive(Debug, Error)]
pub enum DaemonError {
    /// The JobManager cannot be reached, refused us, or the connection ended.
    #[error("taskmanager: {0}")]
    Rpc(#[from] RpcError),
    /// The JobManager stopped answering heartbeats.
    #[error("taskmanager: the JobManager at {jobmanager} answered no heartbeat for {ms} ms (heartbeat.timeout)")]
    JobManagerSilent {
        /// Its address.
        jobmanager: String,
        /// How long it was silent.
        ms: u64,
    },
    /// The JobManager answered the registration with something else.
    #[error("taskmanager: the JobManager at {0} did not accept the registration")]
    NotRegistered(String),
    /// No registration succeeded for `taskmanager.registration.timeout`.
    #[error("taskmanager: no JobManager at {jobmanager} took the registration within {timeout_ms} ms (taskmanager.registration.timeout); the last attempt: {last}")]
    RegistrationTimeout {
        /// The JobManager's address.
        jobmanager: String,
        /// The timeout.
        timeout_ms: u64,
        /// What the last attempt ran into.
        last: String,
    },
    /// `--slots` (`taskmanager.numberOfTaskSlots`) is 0.
    #[error("taskmanager: taskmanager.numberOfTaskSlots (--slots) must be at least 1")]
    NoSlots,
    /// The Prometheus endpoint could not start.
    #[error("taskmanager: {0}")]
    Metrics(#[from] weir_runtime::metrics::prometheus::MetricsError),
    /// Local I/O failed.
    #[error("taskmanager: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a job worker could not be started (reported to the JobManager as the worker's exit).
#[derive(Debug, Error)]
enum StartError {
    /// The runtime of the starting thread could not be built.
    #[error(transparent)]
    Runtime(std::io::Error),
    /// The job's artifact is neither cached nor fetched.
    #[error("cannot fetch artifact {digest}: {source}")]
    Fetch {
        /// The artifact.
        digest: ArtifactDigest,
        /// Why.
        source: FetchError,
    },
    /// The worker process could not be started.
    #[error("cannot start {}: {source}", program.display())]
    Spawn {
        /// The cached program.
        program: PathBuf,
        /// The spawn error.
        source: std::io::Error,
    },
    /// No thread could be started to supervise the worker.
    #[error("cannot supervise the worker: {source}")]
    Supervise {
        /// The worker's job.
        job: JobId,
        /// The thread spawn error.
        source: std::io::Error,
    },
}

struct Worker {
    /// Set when this process stops the worker (then its exit is not a failure).
    stopping: Arc<AtomicBool>,
}

/// Runs a TaskManager: until its JobManager connection ends with a fixed address, for
/// good with high availability.
pub fn run(settings: DaemonSettings) -> Result<(), DaemonError> {
    if settings.slots == 0 {
        return Err(DaemonError::NoSlots);
    }
    create_private_dir(&settings.artifact_cache)?;
    if let Some(endpoint) = settings.metrics {
        let bound = weir_runtime::metrics::prometheus::start_exporter(endpoint)?;
        info!(address = %bound, "taskmanager metrics at http://{bound}/metrics");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("weir-tm-rpc")
        .enable_all()
        .build()?;
    let settings = Arc::new(settings);
    match settings.jobmanager.clone() {
        JobManagerLocation::Address(address) => {
            runtime.block_on(crate::leader_follower::follow_address(settings, address))
        }
        JobManagerLocation::Leader(ha) => {
            runtime.block_on(crate::leader_follower::follow(settings, ha));
            Ok(())
        }
    }
}

/// Serves the connection to `leader` until it ends or `superseded` resolves (a new
/// leader was published): registers, heartbeats, and starts and stops job workers as
/// told; stops every worker at the end. Returns whether it registered, and how it ended.
pub(crate) async fn serve(
    settings: Arc<DaemonSettings>,
    leader: Leader,
    fence: Arc<Fence>,
    superseded: impl Future<Output = ()>,
) -> (bool, Result<(), DaemonError>) {
    let secret = settings.secret.as_ref().map(|s| s.expose());
    let stream = match dial(&leader.address, PeerRole::TaskManager, secret).await {
        Ok(s) => s,
        Err(e) => return (false, Err(e.into())),
    };
    let (tx, mut rx) = spawn_link::<Fenced<TaskManagerCommand>, TaskManagerRequest>(
        stream,
        leader.address.clone(),
    );
    let registration = match register(&settings, &leader, &fence, &tx, &mut rx).await {
        Ok(r) => r,
        Err(e) => return (false, Err(e)),
    };
    let (id, timeout) = (registration.id, registration.heartbeat_timeout);
    let leader = Leader {
        epoch: registration.epoch,
        ..leader
    };
    info!(taskmanager = id, slots = settings.slots, jobmanager = %leader.address, epoch = leader.epoch, "taskmanager registered");
    let labels = [("tm_id", id.to_string())];
    let slots = settings.slots;
    let beats = spawn_heartbeats(
        tx.clone(),
        move || {
            publish_process_memory("taskmanager", &labels);
            ::metrics::gauge!("weir_taskmanager_Status_Slots_Total", &labels).set(slots as f64);
            TaskManagerRequest::Heartbeat
        },
        registration.heartbeat_interval,
    );
    let workers: Arc<Mutex<HashMap<JobId, Worker>>> = Arc::default();
    tokio::pin!(superseded);
    let ended = loop {
        // The JobManager answers every heartbeat: silence for the timeout means it is gone
        // (or unreachable, or frozen), and this TaskManager stops its workers.
        let next = tokio::select! {
            next = tokio::time::timeout(timeout, rx.recv()) => next,
            () = &mut superseded => {
                info!(jobmanager = %leader.address, epoch = leader.epoch, "a new JobManager leads; leaving this one");
                break Ok(());
            }
        };
        let Ok(next) = next else {
            break Err(DaemonError::JobManagerSilent {
                jobmanager: leader.address.clone(),
                ms: timeout.as_millis() as u64,
            });
        };
        let command = match next {
            Some(Ok(fenced)) => match fence.admit(fenced, &leader.address) {
                Some(c) => c,
                None => continue,
            },
            Some(Err(e)) => break Err(DaemonError::Rpc(e)),
            None => break Ok(()),
        };
        match command {
            TaskManagerCommand::StartWorker(spec) => spawn_worker_start(
                settings.clone(),
                leader.clone(),
                id,
                workers.clone(),
                tx.clone(),
                *spec,
            ),
            TaskManagerCommand::StopWorker { job } => stop_worker(&workers, job),
            TaskManagerCommand::Registered { .. } | TaskManagerCommand::HeartbeatAck => {}
        }
    };
    // This registration is over: its heartbeats stop, or a JobManager that comes back
    // would keep the old registration alive beside the next one and place work on it.
    beats.abort();
    stop_all_workers(&workers);
    (true, ended)
}

/// What the JobManager granted this TaskManager when it registered.
struct Registration {
    /// The id the JobManager assigned.
    id: TaskManagerId,
    /// The JobManager's epoch.
    epoch: u64,
    /// How often to send a heartbeat.
    heartbeat_interval: Duration,
    /// How long the JobManager may stay silent before it counts as gone.
    heartbeat_timeout: Duration,
}

/// Registers this TaskManager's slots with `leader` and returns what it granted; fails if
/// no `Registered` answer passing the fence comes within 10 seconds.
async fn register(
    settings: &DaemonSettings,
    leader: &Leader,
    fence: &Fence,
    tx: &LinkSender<TaskManagerRequest>,
    rx: &mut LinkReceiver<Fenced<TaskManagerCommand>>,
) -> Result<Registration, DaemonError> {
    let _ = tx.send(TaskManagerRequest::Register {
        slots: settings.slots,
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
    let fenced = match answer {
        Ok(Some(Ok(fenced))) => fenced,
        Ok(Some(Err(e))) => return Err(e.into()),
        _ => return Err(DaemonError::NotRegistered(leader.address.clone())),
    };
    let epoch = fenced.epoch;
    match fence.admit(fenced, &leader.address) {
        Some(TaskManagerCommand::Registered {
            id,
            heartbeat_interval_ms,
            heartbeat_timeout_ms,
        }) => Ok(Registration {
            id,
            epoch,
            heartbeat_interval: Duration::from_millis(heartbeat_interval_ms.max(10)),
            heartbeat_timeout: Duration::from_millis(
                heartbeat_timeout_ms.max(heartbeat_interval_ms * 2).max(20),
            ),
        }),
        _ => Err(DaemonError::NotRegistered(leader.address.clone())),
    }
}

/// Starts a task that sends a heartbeat every `interval` until the link closes (or the
/// returned task is aborted).
pub(crate) fn spawn_heartbeats<T: Send + 'static>(
    link: LinkSender<T>,
    mut beat: impl FnMut() -> T + Send + 'static,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if link.send(beat()).is_err() {
                return;
            }
        }
    })
}

/// Starts the worker of `spec.job` on a thread of its own, reporting a failed start to the
/// JobManager as the worker's exit.
fn spawn_worker_start(
    settings: Arc<DaemonSettings>,
    leader: Leader,
    id: TaskManagerId,
    workers: Arc<Mutex<HashMap<JobId, Worker>>>,
    reports: LinkSender<TaskManagerRequest>,
    spec: WorkerSpec,
) {
    // Fetching and hashing an artifact takes a while: on a thread of its own,
    // so heartbeats never wait for it.
    let spawned = std::thread::Builder::new()
        .name(format!("weir-start-{}", spec.job))
        .spawn(move || {
            let started = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(StartError::Runtime)
                .and_then(|rt| {
                    rt.block_on(start_worker(
                        &settings, &leader, id, &workers, &reports, &spec,
                    ))
                });
            if let Err(e) = started {
                let reason = e.to_string();
                warn!(job_id = %spec.job, %reason, "cannot start job worker");
                let _ = reports.send(TaskManagerRequest::WorkerExited {
                    job: spec.job,
                    start: spec.start,
                    reason,
                });
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot start a thread for a job worker");
    }
}

/// Stops the worker of every job.
fn stop_all_workers(workers: &Mutex<HashMap<JobId, Worker>>) {
    let jobs: Vec<JobId> = workers
        .lock()
        .expect("workers poisoned")
        .keys()
        .copied()
        .collect();
    for job in jobs {
        stop_worker(workers, job);
    }
}

/// The command that starts `program` as the worker of `spec.job` on TaskManager `id`: its
/// arguments, where it finds the leader and which job it runs, its stdin as its lifeline,
/// its output piped to be relayed.
fn worker_command(
    program: &std::path::Path,
    settings: &DaemonSettings,
    leader: &Leader,
    id: TaskManagerId,
    spec: &WorkerSpec,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(&spec.args)
        .env(ENV_WORKER_JOBMANAGER, &leader.address)
        .env(ENV_WORKER_EPOCH, leader.epoch.to_string())
        .env(ENV_WORKER_JOB, spec.job.to_string())
        .env(ENV_WORKER_TASKMANAGER, id.to_string())
        .env(ENV_WORKER_DATA_HOST, &settings.data_host)
        .env_remove(ENV_WORKER_METRICS_HOST)
        .env_remove(ENV_WORKER_METRICS_PORT)
        .env_remove(weir_runtime::rpc::messages::ENV_PLAN_FILE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.env_remove(ENV_WORKER_TLS_CERTIFICATE)
        .env_remove(ENV_WORKER_TLS_PRIVATE_KEY)
        .env_remove(ENV_WORKER_TLS_TRUSTED);
    if let Some(t) = &settings.internal_tls {
        cmd.env(ENV_WORKER_TLS_CERTIFICATE, &t.certificate)
            .env(ENV_WORKER_TLS_PRIVATE_KEY, &t.private_key)
            .env(ENV_WORKER_TLS_TRUSTED, &t.trusted);
    }
    if let Some(m) = settings.metrics {
        cmd.env(ENV_WORKER_METRICS_HOST, m.host.to_string())
            .env(ENV_WORKER_METRICS_PORT, m.ports.to_string());
    }
    // The worker reads no cluster configuration: its S3 settings travel as AWS variables.
    for (name, value) in weir_runtime::checkpoint::S3Settings::installed().worker_env() {
        cmd.env(name, value);
    }
    match &settings.secret {
        Some(s) => cmd.env(ENV_CLUSTER_SECRET, s.expose()),
        None => cmd.env_remove(ENV_CLUSTER_SECRET),
    };
    cmd.env(
        weir_runtime::config::ENV_JOB_PROPERTIES,
        weir_runtime::config::encode_properties(&spec.properties),
    );
    cmd
}

/// Fetches the artifact if needed and starts the worker of `spec.job`.
async fn start_worker(
    settings: &DaemonSettings,
    leader: &Leader,
    id: TaskManagerId,
    workers: &Arc<Mutex<HashMap<JobId, Worker>>>,
    reports: &LinkSender<TaskManagerRequest>,
    spec: &WorkerSpec,
) -> Result<(), StartError> {
    stop_worker(workers, spec.job);
    let cache = &settings.artifact_cache;
    let program = fetch_artifact(
        &leader.address,
        settings.secret.as_ref(),
        cache,
        &spec.artifact,
    )
    .await
    .map_err(|source| StartError::Fetch {
        digest: spec.artifact.clone(),
        source,
    })?;
    let mut cmd = worker_command(&program, settings, leader, id, spec);
    // A freshly written program may still be open for writing in a child forked by
    // another thread between its fork and exec ("text file busy"): retry briefly.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(26) && tries < 20 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(source) => return Err(StartError::Spawn { program, source }),
        }
    };
    info!(job_id = %spec.job, pid = child.id(), "job worker started");
    let label = WorkerLabel {
        job: spec.job,
        worker: format!("{id}.{}", spec.start),
        format: LogFormat::from_env().unwrap_or_default(),
    };
    if let Err(source) = relay_streams(&mut child, label) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(StartError::Supervise {
            job: spec.job,
            source,
        });
    }
    let stopping = Arc::new(AtomicBool::new(false));
    workers.lock().expect("workers poisoned").insert(
        spec.job,
        Worker {
            stopping: stopping.clone(),
        },
    );
    let (job, start, reports, workers) = (spec.job, spec.start, reports.clone(), workers.clone());
    std::thread::Builder::new()
        .name(format!("weir-supervise-{job}"))
        .spawn(move || supervise(child, (job, start), stopping, reports, workers))
        .map_err(|source| StartError::Supervise { job, source })?;
    Ok(())
}

/// Waits for a worker to exit; stops it when asked (closing its standard input, then
/// killing it after a grace period); reports an exit nobody asked for.
fn supervise(
    mut child: Child,
    (job, start): (JobId, u64),
    stopping: Arc<AtomicBool>,
    reports: LinkSender<TaskManagerRequest>,
    workers: Arc<Mutex<HashMap<JobId, Worker>>>,
) {
    let mut stdin = child.stdin.take();
    let mut stop_since: Option<Instant> = None;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        if stopping.load(Ordering::Relaxed) {
            stdin = None;
            let since = *stop_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let asked = stopping.load(Ordering::Relaxed);
    {
        let mut w = workers.lock().expect("workers poisoned");
        if w.get(&job)
            .is_some_and(|w| Arc::ptr_eq(&w.stopping, &stopping))
        {
            w.remove(&job);
        }
    }
    let reason = match status {
        Ok(s) => exit_reason(s),
        Err(e) => format!("cannot wait for it: {e}"),
    };
    if asked {
        info!(job_id = %job, %reason, "job worker stopped");
    } else {
        warn!(job_id = %job, %reason, "job worker exited");
        let _ = reports.send(TaskManagerRequest::WorkerExited { job, start, reason });
    }
}

fn exit_reason(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("the worker process was killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("the worker process exited with status {code}"),
        None => "the worker process exited".into(),
    }
}

fn stop_worker(workers: &Mutex<HashMap<JobId, Worker>>, job: JobId) {
    if let Some(w) = workers.lock().expect("workers poisoned").remove(&job) {
        w.stopping.store(true, Ordering::Relaxed);
    }
}
