//! A job worker: the process a TaskManager starts to run one job's subtasks.
//!
//! The worker is the job's own program, started again with the environment variables of
//! [`WorkerSettings`]; its `execute` builds the same graph and calls [`run_worker`]. The
//! worker serves the data plane for its subtasks (a [`TaskManager`] of its own, with the
//! id of the TaskManager that started it), registers with the JobManager, and then carries
//! the same control messages as the mini-cluster's in-process gateways. User code thus
//! never runs inside the TaskManager daemon: a crash takes down this job's worker only.
//!
//! Invariants: the worker ends when the JobManager tells it to, when its control
//! connection breaks, or when its standard input closes (the TaskManager that started it
//! is gone, even by `kill -9`); it never outlives its TaskManager or its JobManager.

use crate::TaskManager;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tracing::{info, warn};
use weir_runtime::control::{JobManagerGateway, TaskManagerId, TaskManagerMessage};
use weir_runtime::metrics::prometheus::{
    port_range, publish_process_memory, publish_tasks, start_exporter, Endpoint,
};
use weir_runtime::metrics::{MetricRegistry, Sampler};
use weir_runtime::rpc::messages::{WorkerCommand, WorkerReport};
use weir_runtime::rpc::{
    dial, spawn_link, Fence, Fenced, LinkReceiver, LinkSender, PeerRole, RpcError,
};
use weir_runtime::{JobGraph, JobId, TaskManagerConfig};

/// The environment variable that makes a job program a worker: the JobManager's address.
pub const ENV_WORKER_JOBMANAGER: &str = "WEIR_WORKER_JOBMANAGER";
/// The worker's job id (16 hex digits).
pub const ENV_WORKER_JOB: &str = "WEIR_WORKER_JOB";
/// The id of the TaskManager that started the worker.
pub const ENV_WORKER_TASKMANAGER: &str = "WEIR_WORKER_TASKMANAGER";
/// The host the worker's data server binds.
pub const ENV_WORKER_DATA_HOST: &str = "WEIR_WORKER_DATA_HOST";
/// The epoch of the JobManager the TaskManager registered with: commands of an earlier
/// one are refused.
pub const ENV_WORKER_EPOCH: &str = "WEIR_WORKER_EPOCH";
/// Environment variable: the host a worker serves its Prometheus metrics on (set only
/// when the TaskManager has `metrics.prometheus.port`).
pub const ENV_WORKER_METRICS_HOST: &str = "WEIR_WORKER_METRICS_HOST";
/// Environment variable: the port or port range a worker serves its metrics on.
pub const ENV_WORKER_METRICS_PORT: &str = "WEIR_WORKER_METRICS_PORT";
/// Environment variable: `security.ssl.internal.certificate` of the TaskManager (set only
/// when internal TLS is enabled, with the two below).
pub const ENV_WORKER_TLS_CERTIFICATE: &str = "WEIR_WORKER_TLS_CERTIFICATE";
/// Environment variable: `security.ssl.internal.private-key`.
pub const ENV_WORKER_TLS_PRIVATE_KEY: &str = "WEIR_WORKER_TLS_PRIVATE_KEY";
/// Environment variable: `security.ssl.internal.trusted-certificates`.
pub const ENV_WORKER_TLS_TRUSTED: &str = "WEIR_WORKER_TLS_TRUSTED";
/// The cluster secret, if the cluster has one.
pub const ENV_CLUSTER_SECRET: &str = "WEIR_CLUSTER_SECRET";

/// Why a worker could not run.
#[derive(Debug, Error)]
pub enum WorkerError {
    /// A worker variable is malformed.
    #[error("job worker: environment variable {name}={value:?} is invalid: {reason}")]
    Env {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The JobManager cannot be reached or broke the connection.
    #[error("job worker: {0}")]
    Rpc(#[from] RpcError),
    /// The JobManager refused the worker.
    #[error("job worker refused by the JobManager: {0}")]
    Refused(String),
    /// Internal TLS cannot be set up from the files the TaskManager passed on.
    #[error("job worker: internal TLS (WEIR_WORKER_TLS_*): {0}")]
    Tls(#[from] weir_runtime::rpc::tls::InternalTlsError),
    /// The data server cannot start.
    #[error("job worker: cannot start the data server on {address}: {source}")]
    DataServer {
        /// The bind address.
        address: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How a worker finds its JobManager and job, read from the environment.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// The JobManager's control address.
    pub jobmanager: String,
    /// The job.
    pub job: JobId,
    /// The TaskManager that started this worker.
    pub taskmanager: TaskManagerId,
    /// Host for the data server.
    pub data_host: String,
    /// The cluster secret.
    pub secret: Option<weir_runtime::Secret>,
    /// The JobManager's epoch (0 without high availability).
    pub epoch: u64,
    /// Where to serve Prometheus metrics, if anywhere.
    pub metrics: Option<Endpoint>,
}

impl WorkerSettings {
    /// Reads the settings if this process was started as a worker (`None` otherwise).
    pub fn from_env() -> Result<Option<Self>, WorkerError> {
        let Ok(jobmanager) = std::env::var(ENV_WORKER_JOBMANAGER) else {
            return Ok(None);
        };
        let var = |name: &'static str| {
            std::env::var(name).map_err(|_| WorkerError::Env {
                name,
                value: String::new(),
                reason: "not set".into(),
            })
        };
        let job_hex = var(ENV_WORKER_JOB)?;
        let job = u64::from_str_radix(&job_hex, 16).map_err(|e| WorkerError::Env {
            name: ENV_WORKER_JOB,
            value: job_hex.clone(),
            reason: e.to_string(),
        })?;
        let tm = var(ENV_WORKER_TASKMANAGER)?;
        let taskmanager = tm
            .parse()
            .map_err(|e: std::num::ParseIntError| WorkerError::Env {
                name: ENV_WORKER_TASKMANAGER,
                value: tm.clone(),
                reason: e.to_string(),
            })?;
        let epoch = match std::env::var(ENV_WORKER_EPOCH) {
            Ok(value) => value
                .parse()
                .map_err(|e: std::num::ParseIntError| WorkerError::Env {
                    name: ENV_WORKER_EPOCH,
                    value: value.clone(),
                    reason: e.to_string(),
                })?,
            Err(_) => 0,
        };
        Ok(Some(Self {
            metrics: metrics_endpoint()?,
            epoch,
            jobmanager,
            job: JobId(job),
            taskmanager,
            data_host: std::env::var(ENV_WORKER_DATA_HOST).unwrap_or_else(|_| "127.0.0.1".into()),
            secret: std::env::var(ENV_CLUSTER_SECRET)
                .ok()
                .filter(|s| !s.is_empty())
                .map(weir_runtime::Secret::new),
        }))
    }
}

/// The internal TLS files the TaskManager passed on (`var` reads a variable): all three
/// variables or none.
fn internal_tls_files(
    var: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<Option<weir_runtime::rpc::tls::InternalTlsFiles>, WorkerError> {
    let names = [
        ENV_WORKER_TLS_CERTIFICATE,
        ENV_WORKER_TLS_PRIVATE_KEY,
        ENV_WORKER_TLS_TRUSTED,
    ];
    let [certificate, private_key, trusted] =
        names.map(|name| var(name).map(std::path::PathBuf::from));
    match (certificate, private_key, trusted) {
        (Some(certificate), Some(private_key), Some(trusted)) => {
            Ok(Some(weir_runtime::rpc::tls::InternalTlsFiles {
                certificate,
                private_key,
                trusted,
            }))
        }
        (None, None, None) => Ok(None),
        some => {
            let missing = [some.0.is_none(), some.1.is_none(), some.2.is_none()];
            let name = names[missing.iter().position(|m| *m).expect("one is missing")];
            Err(WorkerError::Env {
                name,
                value: String::new(),
                reason: "not set, while other WEIR_WORKER_TLS_* variables are".into(),
            })
        }
    }
}

/// The metrics endpoint the TaskManager passed on, if any.
fn metrics_endpoint() -> Result<Option<Endpoint>, WorkerError> {
    let (Ok(host), Ok(ports)) = (
        std::env::var(ENV_WORKER_METRICS_HOST),
        std::env::var(ENV_WORKER_METRICS_PORT),
    ) else {
        return Ok(None);
    };
    let bad = |name, value: &str, reason: &str| WorkerError::Env {
        name,
        value: value.to_string(),
        reason: reason.to_string(),
    };
    Ok(Some(Endpoint {
        host: host
            .parse()
            .map_err(|_| bad(ENV_WORKER_METRICS_HOST, &host, "not an IP address"))?,
        ports: port_range(&ports).map_err(|e| bad(ENV_WORKER_METRICS_PORT, &ports, e))?,
    }))
}

/// Reports task state changes to the JobManager over the worker's link.
struct LinkGateway(LinkSender<WorkerReport>);

impl JobManagerGateway for LinkGateway {
    fn send(&self, message: TaskManagerMessage) {
        let _ = self.0.send(WorkerReport::Task(message));
    }
}

/// Runs the subtasks of `graph` the JobManager deploys to this worker until it is told to
/// exit (`Ok`) or loses its JobManager or TaskManager (`Err`).
pub fn run_worker(graph: JobGraph, settings: &WorkerSettings) -> Result<(), WorkerError> {
    let internal_tls = match internal_tls_files(|name| std::env::var_os(name))? {
        Some(files) => Some(weir_runtime::rpc::tls::install(&files)?),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            WorkerError::Rpc(RpcError::Io {
                peer: settings.jobmanager.clone(),
                source: e,
            })
        })?;
    let stream = runtime.block_on(dial(
        &settings.jobmanager,
        PeerRole::Worker,
        settings.secret.as_ref().map(|s| s.expose()),
    ))?;
    let bind: SocketAddr =
        format!("{}:0", settings.data_host)
            .parse()
            .map_err(|e: std::net::AddrParseError| WorkerError::Env {
                name: ENV_WORKER_DATA_HOST,
                value: settings.data_host.clone(),
                reason: e.to_string(),
            })?;
    let fingerprint = graph.fingerprint();
    let (tx, rx) = runtime.block_on(async {
        spawn_link::<Fenced<WorkerCommand>, WorkerReport>(stream, settings.jobmanager.clone())
    });
    let gateway: Arc<dyn JobManagerGateway> = Arc::new(LinkGateway(tx.clone()));
    let tm = TaskManager::start_with_config(
        settings.taskmanager,
        u32::MAX,
        bind,
        gateway,
        &TaskManagerConfig {
            cluster_secret: settings.secret.clone(),
            internal_tls,
            ..TaskManagerConfig::default()
        },
    )
    .map_err(|source| WorkerError::DataServer {
        address: bind.to_string(),
        source,
    })?;
    tm.register_program(settings.job, Arc::new(graph));
    if let Some(endpoint) = settings.metrics {
        match start_exporter(endpoint) {
            Ok(bound) => {
                info!(job_id = %settings.job, address = %bound, "job worker metrics at http://{bound}/metrics")
            }
            Err(e) => warn!(job_id = %settings.job, error = %e, "job worker serves no metrics"),
        }
    }
    let _ = tx.send(WorkerReport::Register {
        job: settings.job,
        taskmanager: settings.taskmanager,
        data_address: tm.info().data_address,
        fingerprint,
    });
    watch_stdin();
    let data_address = tm.info().data_address;
    let result = runtime.block_on(serve_commands(
        rx,
        tm.gateway(),
        (tx.clone(), tm.metrics()),
        settings,
        data_address,
    ));
    drop(tx);
    result
}

/// Carries out the JobManager's commands until it says exit (`Ok`), refuses the worker or
/// the link ends (`Err`); starts the heartbeats, which carry the tasks' metrics, once
/// registered.
async fn serve_commands(
    mut rx: LinkReceiver<Fenced<WorkerCommand>>,
    tasks: Arc<dyn weir_runtime::control::TaskManagerGateway>,
    (beats, registry): (LinkSender<WorkerReport>, Arc<MetricRegistry>),
    settings: &WorkerSettings,
    data_address: SocketAddr,
) -> Result<(), WorkerError> {
    let fence = Fence::new(settings.epoch);
    loop {
        let command = match rx.recv().await {
            Some(Ok(fenced)) => match fence.admit(fenced, &settings.jobmanager) {
                Some(command) => command,
                None => continue,
            },
            Some(Err(e)) => return Err(WorkerError::Rpc(e)),
            None => {
                return Err(WorkerError::Rpc(RpcError::Closed {
                    peer: settings.jobmanager.clone(),
                    during: "while the worker ran",
                }))
            }
        };
        match command {
            WorkerCommand::Registered {
                heartbeat_interval_ms,
            } => {
                info!(job_id = %settings.job, taskmanager = settings.taskmanager, %data_address, "job worker registered");
                let every = Duration::from_millis(heartbeat_interval_ms.max(10));
                let mut sampler = Sampler::new();
                let (registry, tm) = (registry.clone(), settings.taskmanager.to_string());
                let labels = [("tm_id", tm.clone()), ("job_id", settings.job.to_string())];
                let beat = move || {
                    let tasks = sampler.sample(&registry);
                    publish_tasks(&tm, &tasks);
                    publish_process_memory("taskmanager", &labels);
                    WorkerReport::Heartbeat { tasks }
                };
                crate::daemon::spawn_heartbeats(beats.clone(), beat, every);
            }
            WorkerCommand::Task(m) => tasks.send(m),
            WorkerCommand::Exit { reason } => {
                info!(job_id = %settings.job, %reason, "job worker exiting");
                return Ok(());
            }
            WorkerCommand::Refused { reason } => return Err(WorkerError::Refused(reason)),
        }
    }
}

/// Ends the process when standard input closes: the TaskManager that started this worker
/// holds the other end, so its death (even by `kill -9`) ends the worker.
fn watch_stdin() {
    let spawned = std::thread::Builder::new()
        .name("weir-worker-parent".into())
        .spawn(|| {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 64];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        warn!("standard input closed: the taskmanager that started this job worker stopped it or is gone; exiting");
                        std::process::exit(3);
                    }
                    Ok(_) => {}
                }
            }
        });
    if let Err(e) = spawned {
        warn!(error = %e, "cannot watch the parent taskmanager");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(set: &'a [&'static str]) -> impl Fn(&str) -> Option<std::ffi::OsString> + 'a {
        move |name| {
            set.contains(&name)
                .then(|| format!("/etc/weir/{name}.pem").into())
        }
    }

    #[test]
    fn tls_files_come_as_all_three_variables_or_none() {
        let all = [
            ENV_WORKER_TLS_CERTIFICATE,
            ENV_WORKER_TLS_PRIVATE_KEY,
            ENV_WORKER_TLS_TRUSTED,
        ];
        let files = internal_tls_files(vars(&all)).unwrap().unwrap();
        assert!(files.trusted.ends_with("WEIR_WORKER_TLS_TRUSTED.pem"));
        assert!(internal_tls_files(vars(&[])).unwrap().is_none());
        let err = internal_tls_files(vars(&all[..2])).unwrap_err().to_string();
        assert!(err.contains(ENV_WORKER_TLS_TRUSTED), "{err}");
        let err = internal_tls_files(vars(&all[1..])).unwrap_err().to_string();
        assert!(err.contains(ENV_WORKER_TLS_CERTIFICATE), "{err}");
    }
}
