//! The standalone TaskManager process: registers its slots with the JobManager, heartbeats,
//! fetches and caches job artifacts, and supervises one worker process per job.
//!
//! It runs no user code itself: each job's subtasks run in a worker (the job's program
//! started with the worker environment, see [`crate::worker`]). Invariants:
//! - an artifact is executed only after its bytes hashed to the digest it is cached
//!   under; a partial download never has the final name;
//! - a worker's standard input is a pipe this process holds, so workers end with it;
//! - a worker that exits without being asked is reported to the JobManager;
//! - when the JobManager connection ends, every worker is stopped and [`run`] returns.

use crate::worker::{
    ENV_CLUSTER_SECRET, ENV_WORKER_DATA_HOST, ENV_WORKER_JOB, ENV_WORKER_JOBMANAGER,
    ENV_WORKER_TASKMANAGER,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tracing::{info, warn};
use weir_runtime::control::TaskManagerId;
use weir_runtime::rpc::messages::{
    ArtifactDigest, ArtifactHasher, TaskManagerCommand, TaskManagerRequest, WorkerSpec,
};
use weir_runtime::rpc::request::{ArtifactPiece, FetchArtifact};
use weir_runtime::rpc::{
    dial, read_message, spawn_link, write_message, ClientRequest, LinkReceiver, LinkSender,
    PeerRole, Reply, RpcError,
};
use weir_runtime::JobId;

/// The longest an artifact download may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// Settings of a standalone TaskManager.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// The JobManager's control address (`HOST:PORT`).
    pub jobmanager: String,
    /// Slots offered.
    pub slots: u32,
    /// The cluster secret.
    pub secret: Option<weir_runtime::Secret>,
    /// Host the workers' data servers bind.
    pub data_host: String,
    /// Where fetched artifacts are cached.
    pub artifact_cache: PathBuf,
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

/// Why a job artifact could not be fetched into the cache.
#[derive(Debug, Error)]
enum FetchError {
    /// A cached or partly downloaded file cannot be read, written or renamed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The control connection to the JobManager failed.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The JobManager answered the fetch with an error.
    #[error("{message}")]
    Refused {
        /// The JobManager's message.
        message: String,
    },
    /// The downloaded bytes are not the artifact.
    #[error("the downloaded bytes hash to {actual}")]
    DigestMismatch {
        /// The digest of the bytes received.
        actual: ArtifactDigest,
    },
    /// The download took longer than allowed.
    #[error("the download did not finish within {} s", limit.as_secs())]
    TimedOut {
        /// The limit.
        limit: Duration,
    },
}

impl FetchError {
    /// Returns a closure wrapping an I/O error on `path`.
    fn file(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| FetchError::File {
            path: path.to_path_buf(),
            source,
        }
    }
}

struct Worker {
    /// Set when this process stops the worker (then its exit is not a failure).
    stopping: Arc<AtomicBool>,
}

/// Creates `dir` (and its parents); a directory created here is private to this user, as
/// the programs it caches are executed.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Runs a TaskManager until its JobManager connection ends.
pub fn run(settings: DaemonSettings) -> Result<(), DaemonError> {
    if settings.slots == 0 {
        return Err(DaemonError::Io(std::io::Error::other(
            "--slots must be at least 1",
        )));
    }
    create_private_dir(&settings.artifact_cache)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("weir-tm-rpc")
        .enable_all()
        .build()?;
    runtime.block_on(serve(settings))
}

/// Serves the JobManager connection: registers, heartbeats, and starts and stops job workers
/// as told; stops every worker when the connection ends.
async fn serve(settings: DaemonSettings) -> Result<(), DaemonError> {
    let stream = dial(
        &settings.jobmanager,
        PeerRole::TaskManager,
        settings.secret.as_ref().map(|s| s.expose()),
    )
    .await?;
    let (tx, mut rx) =
        spawn_link::<TaskManagerCommand, TaskManagerRequest>(stream, settings.jobmanager.clone());
    let Registration {
        id,
        heartbeat_interval,
        heartbeat_timeout: timeout,
    } = register(&settings, &tx, &mut rx).await?;
    info!(taskmanager = id, slots = settings.slots, jobmanager = %settings.jobmanager, "taskmanager registered");
    spawn_heartbeats(
        tx.clone(),
        || TaskManagerRequest::Heartbeat,
        heartbeat_interval,
    );
    let settings = Arc::new(settings);
    let workers: Arc<Mutex<HashMap<JobId, Worker>>> = Arc::default();
    let ended = loop {
        // The JobManager answers every heartbeat: silence for the timeout means it is gone
        // (or unreachable), and this TaskManager stops its workers and exits.
        let Ok(next) = tokio::time::timeout(timeout, rx.recv()).await else {
            break Err(DaemonError::JobManagerSilent {
                jobmanager: settings.jobmanager.clone(),
                ms: timeout.as_millis() as u64,
            });
        };
        match next {
            Some(Ok(TaskManagerCommand::StartWorker(spec))) => {
                spawn_worker_start(settings.clone(), id, workers.clone(), tx.clone(), *spec)
            }
            Some(Ok(TaskManagerCommand::StopWorker { job })) => stop_worker(&workers, job),
            Some(Ok(TaskManagerCommand::Registered { .. } | TaskManagerCommand::HeartbeatAck)) => {}
            Some(Err(e)) => break Err(DaemonError::Rpc(e)),
            None => break Ok(()),
        }
    };
    stop_all_workers(&workers);
    ended
}

/// What the JobManager granted this TaskManager when it registered.
struct Registration {
    /// The id the JobManager assigned.
    id: TaskManagerId,
    /// How often to send a heartbeat.
    heartbeat_interval: Duration,
    /// How long the JobManager may stay silent before it counts as gone.
    heartbeat_timeout: Duration,
}

/// Registers this TaskManager's slots and returns what the JobManager granted; fails if no
/// `Registered` answer comes within 10 seconds.
async fn register(
    settings: &DaemonSettings,
    tx: &LinkSender<TaskManagerRequest>,
    rx: &mut LinkReceiver<TaskManagerCommand>,
) -> Result<Registration, DaemonError> {
    let _ = tx.send(TaskManagerRequest::Register {
        slots: settings.slots,
    });
    match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
        Ok(Some(Ok(TaskManagerCommand::Registered {
            id,
            heartbeat_interval_ms,
            heartbeat_timeout_ms,
        }))) => Ok(Registration {
            id,
            heartbeat_interval: Duration::from_millis(heartbeat_interval_ms.max(10)),
            heartbeat_timeout: Duration::from_millis(
                heartbeat_timeout_ms.max(heartbeat_interval_ms * 2).max(20),
            ),
        }),
        Ok(Some(Err(e))) => Err(e.into()),
        _ => Err(DaemonError::NotRegistered(settings.jobmanager.clone())),
    }
}

/// Starts a task that sends a heartbeat every `interval` until the link closes.
pub(crate) fn spawn_heartbeats<T: Send + 'static>(
    link: LinkSender<T>,
    beat: fn() -> T,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        loop {
            tick.tick().await;
            if link.send(beat()).is_err() {
                return;
            }
        }
    });
}

/// Starts the worker of `spec.job` on a thread of its own, reporting a failed start to the
/// JobManager as the worker's exit.
fn spawn_worker_start(
    settings: Arc<DaemonSettings>,
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
                .and_then(|rt| rt.block_on(start_worker(&settings, id, &workers, &reports, &spec)));
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

/// Fetches the artifact if needed and starts the worker of `spec.job`.
async fn start_worker(
    settings: &DaemonSettings,
    id: TaskManagerId,
    workers: &Arc<Mutex<HashMap<JobId, Worker>>>,
    reports: &LinkSender<TaskManagerRequest>,
    spec: &WorkerSpec,
) -> Result<(), StartError> {
    stop_worker(workers, spec.job);
    let program = fetch_artifact(settings, &spec.artifact)
        .await
        .map_err(|source| StartError::Fetch {
            digest: spec.artifact.clone(),
            source,
        })?;
    let mut cmd = Command::new(&program);
    cmd.args(&spec.args)
        .env(ENV_WORKER_JOBMANAGER, &settings.jobmanager)
        .env(ENV_WORKER_JOB, spec.job.to_string())
        .env(ENV_WORKER_TASKMANAGER, id.to_string())
        .env(ENV_WORKER_DATA_HOST, &settings.data_host)
        .env_remove(weir_runtime::rpc::messages::ENV_PLAN_FILE)
        .stdin(Stdio::piped());
    match &settings.secret {
        Some(s) => cmd.env(ENV_CLUSTER_SECRET, s.expose()),
        None => cmd.env_remove(ENV_CLUSTER_SECRET),
    };
    match spec.parallelism {
        Some(p) => cmd.env("WEIR_PARALLELISM", p.to_string()),
        None => cmd.env_remove("WEIR_PARALLELISM"),
    };
    // A freshly written program may still be open for writing in a child forked by
    // another thread between its fork and exec ("text file busy"): retry briefly.
    let mut tries = 0;
    let child = loop {
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

/// Returns the cached program of `digest`, fetching it from the JobManager first if it is
/// not cached.
async fn fetch_artifact(
    settings: &DaemonSettings,
    digest: &ArtifactDigest,
) -> Result<PathBuf, FetchError> {
    let path = settings.artifact_cache.join(digest.as_str());
    if path.is_file() {
        // Checked again before every start: the cache may be shared with other
        // TaskManagers of the host.
        match hash_file(&path) {
            Ok(actual) if &actual == digest => return Ok(path),
            Ok(actual) => {
                warn!(artifact = %digest, %actual, path = %path.display(), "cached artifact does not match its digest; fetching it again");
                let _ = std::fs::remove_file(&path);
            }
            Err(source) => return Err(FetchError::File { path, source }),
        }
    }
    static DOWNLOADS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let part = settings.artifact_cache.join(format!(
        ".{digest}.{}-{}.part",
        std::process::id(),
        DOWNLOADS.fetch_add(1, Ordering::Relaxed)
    ));
    // Bounded: a JobManager that stops answering fails the start instead of hanging it.
    let result = match tokio::time::timeout(
        DOWNLOAD_TIMEOUT,
        download(settings, digest, &part, &path),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(FetchError::TimedOut {
            limit: DOWNLOAD_TIMEOUT,
        }),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result.map(|()| path)
}

/// Returns the digest of the file at `path`.
fn hash_file(path: &Path) -> std::io::Result<ArtifactDigest> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = ArtifactHasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finish());
        }
        hasher.update(&buf[..n]);
    }
}

async fn download(
    settings: &DaemonSettings,
    digest: &ArtifactDigest,
    part: &Path,
    path: &Path,
) -> Result<(), FetchError> {
    let peer = settings.jobmanager.as_str();
    let mut stream = dial(
        peer,
        PeerRole::Client,
        settings.secret.as_ref().map(|s| s.expose()),
    )
    .await?;
    write_message(
        &mut stream,
        peer,
        &ClientRequest::from(FetchArtifact(digest.clone())),
    )
    .await?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(part)
        .await
        .map_err(FetchError::file(part))?;
    let mut hasher = ArtifactHasher::default();
    loop {
        match read_message::<_, Reply<FetchArtifact>>(&mut stream, peer).await? {
            Ok(ArtifactPiece::Data(bytes)) => {
                hasher.update(&bytes);
                file.write_all(&bytes)
                    .await
                    .map_err(FetchError::file(part))?;
            }
            Ok(ArtifactPiece::End) => break,
            Err(e) => {
                return Err(FetchError::Refused { message: e.message });
            }
        }
    }
    file.sync_all().await.map_err(FetchError::file(part))?;
    drop(file);
    let actual = hasher.finish();
    if &actual != digest {
        return Err(FetchError::DigestMismatch { actual });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(part, std::fs::Permissions::from_mode(0o755))
            .map_err(FetchError::file(part))?;
    }
    std::fs::rename(part, path).map_err(FetchError::file(path))
}
