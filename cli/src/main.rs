//! `weir`: the command-line client and the standalone cluster's processes.
//!
//! - `weir jobmanager` and `weir taskmanager` run the processes of a standalone cluster;
//! - `weir run --jobmanager HOST:PORT PROGRAM [-- ARGS]` submits a job program (its graph
//!   and its executable) and, unless `--detached`, waits for it to end; without
//!   `--jobmanager` it runs the program on its embedded local mini-cluster;
//! - `list`, `info`, `cancel`, `savepoint`, `stop` and `checkpoints` control jobs.
//!
//! Exit codes: 0 on success, 1 when a request or the job failed (the message says why),
//! 2 for bad arguments. `--output json` prints one JSON object per command.

mod client;
mod config;
mod ha;
mod output;
mod progress;
mod run;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use client::Client;
use config::Config;
use std::path::{Path, PathBuf};
use weir_runtime::config::keys;
use weir_runtime::logging::{self, LogFormat};
use weir_runtime::rpc::request::{
    Cancel, Checkpoints, JobGraphOf, JobInfo, ListJobs, TriggerCheckpoint, TriggerSavepoint,
};
use weir_runtime::JobId;

/// Weir: a Flink-style distributed stream processing runtime.
#[derive(Parser, Debug)]
#[command(name = "weir", version, about)]
struct Cli {
    /// Configuration file (weir.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Overrides a configuration key (repeatable).
    #[arg(short = 'D', global = true, value_name = "KEY=VALUE")]
    define: Vec<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// Log format of this process and of those it starts (job programs, workers): text,
    /// or one JSON object per line [default: text, or $WEIR_LOG_FORMAT].
    #[arg(long, global = true, value_name = "text|json", value_parser = |s: &str| s.parse::<LogFormat>())]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Verb,
}

/// How results are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    Table,
    /// One JSON object.
    Json,
}

#[derive(Subcommand, Debug)]
enum Verb {
    /// Run the JobManager of a standalone cluster.
    Jobmanager {
        /// Control RPC address [default: jobmanager.rpc.address, 127.0.0.1:6123].
        #[arg(long)]
        rpc_address: Option<String>,
        /// REST API address [default: rest.address, 127.0.0.1:8081].
        #[arg(long)]
        rest_address: Option<String>,
    },
    /// Run a TaskManager of a standalone cluster.
    Taskmanager {
        /// The JobManager's control address [default: jobmanager.rpc.address].
        #[arg(long, value_name = "HOST:PORT")]
        jobmanager: Option<String>,
        /// Slots offered [default: taskmanager.numberOfTaskSlots, 1].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        slots: Option<u32>,
    },
    /// Run a job program: submit it to a JobManager, or run it on its local mini-cluster.
    Run {
        /// The JobManager to submit to; without it the program runs locally.
        #[arg(long, value_name = "HOST:PORT")]
        jobmanager: Option<String>,
        /// Default parallelism for the job (`parallelism.default`).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=32768))]
        parallelism: Option<u16>,
        /// Return once the job is submitted instead of waiting for it to end.
        #[arg(long)]
        detached: bool,
        /// Start from this savepoint (a directory or URL).
        #[arg(long, value_name = "PATH")]
        from_savepoint: Option<String>,
        /// With --from-savepoint: skip state of operators the job no longer has.
        #[arg(long)]
        allow_non_restored_state: bool,
        /// The job program (a binary built against weir-api).
        program: PathBuf,
        /// Arguments for the program (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// List the jobs of a JobManager (all of them unless --running).
    List {
        /// Only the jobs that have not ended (created, waiting for slots, deploying,
        /// running, restarting).
        #[arg(long, conflicts_with = "all")]
        running: bool,
        /// Every job, ended ones included (the default).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Show one job with its plan (vertices, parallelism, exchanges).
    Info {
        /// The job id.
        job: String,
        #[command(flatten)]
        target: Target,
    },
    /// Cancel a job.
    Cancel {
        /// The job id.
        job: String,
        #[command(flatten)]
        target: Target,
    },
    /// Take a savepoint of a running job.
    Savepoint {
        /// The job id.
        job: String,
        /// Target directory [default: the job's state.savepoints.dir].
        dir: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Stop a job with a savepoint.
    Stop {
        /// The job id.
        job: String,
        /// Target directory of the savepoint [default: state.savepoints.dir given to this
        /// command, else the job's].
        #[arg(long, value_name = "DIR")]
        savepoint_dir: Option<String>,
        /// Emit the final watermark before the savepoint, so every event-time window fires
        /// and timer runs before the job stops (the savepoint is then for archiving rather
        /// than for resuming the same stream).
        #[arg(long)]
        drain: bool,
        #[command(flatten)]
        target: Target,
    },
    /// Trigger a checkpoint of a running job and wait for it.
    Checkpoint {
        /// The job id.
        job: String,
        #[command(flatten)]
        target: Target,
    },
    /// List a job's completed checkpoints.
    Checkpoints {
        /// The job id.
        job: String,
        #[command(flatten)]
        target: Target,
    },
}

/// Which JobManager a command talks to.
#[derive(clap::Args, Debug)]
struct Target {
    /// The JobManager's control address [default: jobmanager.rpc.address].
    #[arg(long, value_name = "HOST:PORT")]
    jobmanager: Option<String>,
}

/// A bad argument found after parsing (a malformed job id, flags that do not go
/// together): the command exits 2, as for arguments clap refuses.
#[derive(Debug)]
pub struct Usage(String);

impl Usage {
    /// The refusal, with what to do instead.
    pub fn error(message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Usage(message.into()))
    }
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// The exit code of a failed command: 2 for a bad argument (a [`Usage`] refusal, or a
/// `-D` flag or command flag that names no key or holds no valid value), else 1.
fn exit_code(e: &anyhow::Error) -> i32 {
    use weir_runtime::ConfigError;
    let from_arguments = |source: &str| source.starts_with("-D") || source.starts_with("--");
    match e.downcast_ref::<ConfigError>() {
        _ if e.downcast_ref::<Usage>().is_some() => 2,
        Some(ConfigError::NotKeyValue { .. }) => 2,
        Some(ConfigError::UnknownKey { source_name, .. })
        | Some(ConfigError::Invalid { source_name, .. })
            if from_arguments(source_name) =>
        {
            2
        }
        _ => 1,
    }
}

fn main() {
    let cli = Cli::parse();
    let format = cli.output;
    let code = match execute(cli) {
        Ok(code) => code,
        Err(e) => {
            output::error(format, &e);
            exit_code(&e)
        }
    };
    std::process::exit(code);
}

/// Logs to standard error in the format of `--log-format` (see [`execute`]).
fn init_logging() {
    logging::init("info");
}

/// Runs the parsed command and returns the process's exit code.
fn execute(cli: Cli) -> Result<i32> {
    if let Some(f) = cli.log_format {
        // Read by this process's logging and inherited by the processes it starts.
        std::env::set_var(logging::ENV_LOG_FORMAT, f.to_string());
    }
    let mut config = Config::load(cli.config.as_deref(), &cli.define)?;
    if let Some(files) = internal_tls(&config)? {
        weir_runtime::rpc::tls::install(&files)?;
    }
    weir_runtime::checkpoint::S3Settings::from_configuration(config.inner())?.install();
    let format = cli.output;
    match cli.command {
        Verb::Jobmanager {
            rpc_address,
            rest_address,
        } => {
            if let Some(a) = rpc_address {
                config.set(&keys::RPC_ADDRESS, a, "--rpc-address");
            }
            if let Some(a) = rest_address {
                config.set(&keys::REST_ADDRESS, a, "--rest-address");
            }
            init_logging();
            run_jobmanager(&config)
        }
        Verb::Taskmanager { jobmanager, slots } => {
            if let Some(a) = jobmanager {
                config.set(&keys::RPC_ADDRESS, a, "--jobmanager");
            }
            if let Some(s) = slots {
                config.set(&keys::TASK_SLOTS, s.to_string(), "--slots");
            }
            init_logging();
            run_taskmanager(&config)
        }
        Verb::Run {
            jobmanager,
            parallelism,
            detached,
            from_savepoint,
            allow_non_restored_state,
            program,
            args,
        } => run::run(
            &config,
            format,
            run::RunRequest {
                jobmanager,
                parallelism,
                detached,
                from_savepoint,
                allow_non_restored_state,
                program,
                args,
            },
        ),
        query => query_job(&config, format, query),
    }
}

/// Connects to the JobManager at `target`, or else the leader found through ZooKeeper
/// when high availability is configured, or else at `jobmanager.rpc.address`.
fn connect(config: &Config, target: Option<String>) -> Result<Client> {
    let address = match jobmanager_address(target, config.ha()?.as_ref())? {
        Some(a) => a,
        None => config.get(&keys::RPC_ADDRESS)?,
    };
    Client::connect(&address, config.get(&keys::CLUSTER_SECRET)?.as_deref())
}

/// The JobManager at `target`, or else the leader found through ZooKeeper with `ha`;
/// `None` without either.
pub(crate) fn jobmanager_address(
    target: Option<String>,
    ha: Option<&weir_runtime::ha::HaConfig>,
) -> Result<Option<String>> {
    Ok(match (target, ha) {
        (Some(a), _) => Some(a),
        (None, Some(ha)) => Some(ha::leader_address(ha)?),
        (None, None) => None,
    })
}

/// Runs the verbs that list, show or control jobs on a JobManager.
fn query_job(config: &Config, format: Format, verb: Verb) -> Result<i32> {
    // A job verb: its id (checked before anything is sent), then the connection.
    let for_job = |job: &str, target: Target| -> Result<(JobId, Client)> {
        let id = job_id(job)?;
        Ok((id, connect(config, target.jobmanager)?))
    };
    match verb {
        Verb::List {
            running, target, ..
        } => {
            let mut c = connect(config, target.jobmanager)?;
            let mut jobs = c.call(ListJobs)?;
            if running {
                jobs.retain(|j| !j.status.is_terminal());
            }
            output::jobs(format, &jobs);
            Ok(0)
        }
        Verb::Info { job, target } => {
            let (id, mut c) = for_job(&job, target)?;
            let summary = c.call(JobInfo(id))?;
            let graph = c.call(JobGraphOf(id))?;
            output::job_with_plan(format, &summary, &graph);
            Ok(0)
        }
        Verb::Cancel { job, target } => {
            let (id, mut c) = for_job(&job, target)?;
            c.call(Cancel(id))?;
            output::done(format, id, "cancelled", "cancellation requested");
            Ok(0)
        }
        Verb::Savepoint { job, dir, target } => {
            let (id, mut c) = for_job(&job, target)?;
            let dir = dir.or(config.get(&keys::SAVEPOINTS_DIR)?);
            let request = TriggerSavepoint {
                job: id,
                dir: dir.map(|d| absolute(&d)),
                stop: false,
                drain: false,
            };
            savepoint(&mut c, format, request)
        }
        Verb::Stop {
            job,
            savepoint_dir,
            drain,
            target,
        } => {
            let (id, mut c) = for_job(&job, target)?;
            let dir = savepoint_dir.or(config.get(&keys::SAVEPOINTS_DIR)?);
            let request = TriggerSavepoint {
                job: id,
                dir: dir.map(|d| absolute(&d)),
                stop: true,
                drain,
            };
            savepoint(&mut c, format, request)
        }
        Verb::Checkpoint { job, target } => {
            let (id, mut c) = for_job(&job, target)?;
            let location = c.call(TriggerCheckpoint(id))?;
            output::done(format, id, "checkpoint", &location);
            Ok(0)
        }
        Verb::Checkpoints { job, target } => {
            let (id, mut c) = for_job(&job, target)?;
            output::checkpoints(format, id, &c.call(Checkpoints(id))?);
            Ok(0)
        }
        Verb::Jobmanager { .. } | Verb::Taskmanager { .. } | Verb::Run { .. } => {
            unreachable!("`execute` runs the cluster processes and `run` itself")
        }
    }
}

fn savepoint(c: &mut Client, format: Format, request: TriggerSavepoint) -> Result<i32> {
    let id = request.job;
    let url = c.call(request)?;
    output::done(format, id, "savepoint", &url);
    Ok(0)
}

/// Parses a job id (16 hex digits, as `weir list` shows them).
fn job_id(s: &str) -> Result<JobId> {
    JobId::from_hex(s).filter(|_| s.len() <= 16).ok_or_else(|| {
        Usage::error(format!(
            "'{s}' is not a job id (16 hex digits, as `weir list` shows)"
        ))
    })
}

/// Makes a path absolute against the current directory (URLs stay as they are): the
/// JobManager runs elsewhere.
pub(crate) fn absolute(p: &str) -> String {
    if p.contains("://") || Path::new(p).is_absolute() {
        return p.to_string();
    }
    match std::env::current_dir() {
        Ok(d) => d.join(p).display().to_string(),
        Err(_) => p.to_string(),
    }
}

fn run_jobmanager(config: &Config) -> Result<i32> {
    use weir_jobmanager::cluster::server::JobManagerServer;
    use weir_jobmanager::cluster::ClusterSettings;
    let rpc_address = config.get(&keys::RPC_ADDRESS)?;
    let rpc: std::net::SocketAddr = rpc_address.parse().map_err(|_| {
        anyhow!(
            "{} = '{rpc_address}' is not an address HOST:PORT with a numeric host (a JobManager binds it)",
            keys::RPC_ADDRESS.name
        )
    })?;
    config.check_exposure(keys::RPC_ADDRESS.name, &rpc)?;
    let metrics = metrics_endpoint(config)?;
    let rest = config.get(&keys::REST_ADDRESS)?;
    config.check_exposure(keys::REST_ADDRESS.name, &rest)?;
    let rest_security = rest_security(config)?;
    let mut settings = ClusterSettings {
        rpc_address: rpc,
        secret: config
            .get(&keys::CLUSTER_SECRET)?
            .map(weir_runtime::Secret::new),
        heartbeat_interval: config.get(&keys::HEARTBEAT_INTERVAL)?,
        heartbeat_timeout: config.get(&keys::HEARTBEAT_TIMEOUT)?,
        slot_timeout: config.get(&keys::SLOT_REQUEST_TIMEOUT)?,
        worker_timeout: config.get(&keys::WORKER_START_TIMEOUT)?,
        artifacts_dir: config.get(&keys::ARTIFACTS_DIR)?,
        artifact_max_bytes: config.get(&keys::ARTIFACTS_MAX_SIZE)?,
    };
    // With high availability this JobManager serves only once it leads, and keeps its
    // jobs and artifacts where the next leader finds them.
    let (leadership, services) = match config.ha()? {
        Some(ha) => {
            let leadership = ha::Leadership::acquire(&ha)?;
            let services = leadership.services(&ha)?;
            settings.artifacts_dir = services.artifacts_dir()?;
            (Some(leadership), Some(services))
        }
        None => (None, None),
    };
    // The metrics endpoint first: a port range with no free port stops the JobManager
    // before it announces itself.
    let metrics_bound = match metrics {
        Some(endpoint) => Some(weir_runtime::metrics::prometheus::start_exporter(endpoint)?),
        None => None,
    };
    let server = JobManagerServer::start(settings, services)
        .with_context(|| format!("cannot start the JobManager on {rpc}"))?;
    let rest_bound = server
        .serve_rest(rest, &rest_security)
        .with_context(|| format!("cannot start the REST API on {rest}"))?;
    if let Some(bound) = metrics_bound {
        eprintln!("weir: JobManager metrics at http://{bound}/metrics");
        weir_jobmanager::cluster::metrics::spawn_publisher(
            server.cluster(),
            config.get(&keys::HEARTBEAT_INTERVAL)?,
        );
    }
    if !rest.ip().is_loopback() && rest_security.tls.is_none() {
        eprintln!(
            "weir: warning: the REST API on {rest} is reachable from other hosts without TLS: the cluster secret crosses the network in clear text with every request; set security.ssl.rest.enabled"
        );
    }
    weir_jobmanager::cluster::banner::announce(
        server.local_addr(),
        rest_bound,
        rest_security.tls.is_some(),
    );
    let Some(leadership) = leadership else {
        loop {
            std::thread::park();
        }
    };
    leadership.publish(&server.local_addr().to_string(), &rest_bound.to_string())?;
    leadership.wait_until_lost();
    eprintln!(
        "weir: this JobManager (epoch {}) lost its ZooKeeper session and no longer leads: it stops serving and runs for leadership again",
        leadership.epoch()
    );
    Err(ha::rejoin())
}

/// The files of `security.ssl.internal.*`, if it is enabled (made absolute, as the
/// TaskManager hands them to its workers).
fn internal_tls(config: &Config) -> Result<Option<weir_runtime::rpc::tls::InternalTlsFiles>> {
    if !config.get(&keys::SSL_INTERNAL_ENABLED)? {
        return Ok(None);
    }
    let file = |key: &weir_runtime::config::key::Key<Option<std::path::PathBuf>>| -> Result<_> {
        let path = config.get(key)?.ok_or_else(|| {
            anyhow!(
                "{} = true needs {} (a PEM file)",
                keys::SSL_INTERNAL_ENABLED.name,
                key.name
            )
        })?;
        Ok(std::path::PathBuf::from(absolute(&path.to_string_lossy())))
    };
    Ok(Some(weir_runtime::rpc::tls::InternalTlsFiles {
        certificate: file(&keys::SSL_INTERNAL_CERTIFICATE)?,
        private_key: file(&keys::SSL_INTERNAL_PRIVATE_KEY)?,
        trusted: file(&keys::SSL_INTERNAL_TRUSTED)?,
    }))
}

/// The REST API's bearer token (the cluster secret) and TLS files.
fn rest_security(
    config: &Config,
) -> Result<weir_jobmanager::cluster::rest::security::RestSecurity> {
    use weir_jobmanager::cluster::rest::security::{RestSecurity, TlsFiles};
    let tls = if config.get(&keys::SSL_REST_ENABLED)? {
        let (Some(certificate), Some(private_key)) = (
            config.get(&keys::SSL_REST_CERTIFICATE)?,
            config.get(&keys::SSL_REST_PRIVATE_KEY)?,
        ) else {
            bail!(
                "{} = true needs {} and {} (PEM files)",
                keys::SSL_REST_ENABLED.name,
                keys::SSL_REST_CERTIFICATE.name,
                keys::SSL_REST_PRIVATE_KEY.name
            );
        };
        Some(TlsFiles {
            certificate,
            private_key,
        })
    } else {
        None
    };
    Ok(RestSecurity {
        token: config
            .get(&keys::CLUSTER_SECRET)?
            .map(weir_runtime::Secret::new),
        tls,
    })
}

/// `metrics.prometheus.host` and `.port`, if a port is set.
fn metrics_endpoint(
    config: &Config,
) -> Result<Option<weir_runtime::metrics::prometheus::Endpoint>> {
    let host = config.get(&keys::PROMETHEUS_HOST)?;
    Ok(config
        .get(&keys::PROMETHEUS_PORT)?
        .map(|ports| weir_runtime::metrics::prometheus::Endpoint { host, ports }))
}

fn run_taskmanager(config: &Config) -> Result<i32> {
    use weir_taskmanager::daemon::{run, DaemonSettings, JobManagerLocation};
    let data_host = config
        .get(&keys::DATA_BIND_HOST)?
        .unwrap_or_else(|| "127.0.0.1".into());
    let probe: std::net::SocketAddr = format!("{data_host}:0").parse().with_context(|| {
        format!("taskmanager.data.bind-host = '{data_host}' is not an IP address")
    })?;
    config.check_exposure(keys::DATA_BIND_HOST.name, &probe)?;
    let slots = config.get(&keys::TASK_SLOTS)?;
    let jobmanager = match config.ha()? {
        Some(ha) => JobManagerLocation::Leader(ha),
        None => JobManagerLocation::Address(config.get(&keys::RPC_ADDRESS)?),
    };
    let settings = DaemonSettings {
        jobmanager,
        slots: u32::try_from(slots).context("taskmanager.numberOfTaskSlots is too large")?,
        secret: config
            .get(&keys::CLUSTER_SECRET)?
            .map(weir_runtime::Secret::new),
        data_host,
        artifact_cache: config.get(&keys::ARTIFACT_CACHE_DIR)?,
        registration_timeout: config.get(&keys::REGISTRATION_TIMEOUT)?,
        metrics: metrics_endpoint(config)?,
        internal_tls: internal_tls(config)?,
    };
    run(settings)?;
    Ok(0)
}
