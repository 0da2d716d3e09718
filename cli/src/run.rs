//! `weir run`: runs a job program on its embedded local mini-cluster, or plans its graph
//! (the program writes it and exits), uploads the program and submits the job to a
//! JobManager, then (unless detached) follows the job to its end.
//!
//! Invariant: the job configuration keys `weir run` resolved (`weir.toml`, `WEIR_*`, `-D`,
//! `--parallelism`) reach the program in [`ENV_JOB_PROPERTIES`] both when it plans and when
//! it runs, so the planned graph and the workers' graphs agree.

use crate::client::Client;
use crate::config::Config;
use crate::{absolute, ha, jobmanager_address, output, Format, Usage};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weir_runtime::config::{encode_properties, keys, ENV_JOB_PROPERTIES};
use weir_runtime::rpc::messages::JobSubmission;
use weir_runtime::rpc::request::{Submit, WaitJob};
use weir_runtime::{JobGraph, JobId, SavepointRestoreSettings};

/// What `weir run` was asked to do (the fields of `Verb::Run`).
pub struct RunRequest {
    /// `--jobmanager`.
    pub jobmanager: Option<String>,
    /// `--parallelism`.
    pub parallelism: Option<u16>,
    /// `--detached`.
    pub detached: bool,
    /// `--from-savepoint`.
    pub from_savepoint: Option<String>,
    /// `--allow-non-restored-state`.
    pub allow_non_restored_state: bool,
    /// The job program.
    pub program: PathBuf,
    /// The program's arguments.
    pub args: Vec<String>,
}

/// Runs `weir run`: the program on its local mini-cluster without `--jobmanager`;
/// otherwise submits it and, unless detached, waits for the job to end.
pub fn run(config: &Config, format: Format, r: RunRequest) -> Result<i32> {
    if !r.program.is_file() {
        bail!(
            "job program {} does not exist or is not a file",
            r.program.display()
        );
    }
    let mut config = config.clone();
    if let Some(p) = r.parallelism {
        config.set(&keys::PARALLELISM_DEFAULT, p.to_string(), "--parallelism");
    }
    // The job keys are checked here, before the program runs.
    weir_runtime::config::JobSettings::from_configuration(config.inner())?;
    let properties = config.job_properties();
    let ha = config.ha()?;
    let Some(address) = jobmanager_address(r.jobmanager, ha.as_ref())? else {
        if r.from_savepoint.is_some() {
            return Err(Usage::error("--from-savepoint needs --jobmanager (a local program restores through its own settings)"));
        }
        if r.detached {
            return Err(Usage::error("--detached needs --jobmanager (or high-availability settings that find the JobManager): a program on its local mini-cluster always runs attached"));
        }
        return run_local(&r.program, &properties, &r.args);
    };
    let graph = plan(&r.program, &properties, &r.args)?;
    let secret = config.get(&keys::CLUSTER_SECRET)?;
    let mut client = Client::connect(&address, secret.as_deref())?;
    let artifact = client.upload(&r.program)?;
    let savepoint = r.from_savepoint.map(|p| SavepointRestoreSettings {
        path: absolute(&p),
        allow_non_restored_state: r.allow_non_restored_state,
    });
    let id = client.call(Submit(Box::new(JobSubmission {
        artifact,
        graph,
        args: r.args,
        properties,
        savepoint,
    })))?;
    if r.detached {
        output::submitted(format, id);
        return Ok(0);
    }
    if format == Format::Table {
        eprintln!("Job {id} submitted; waiting for it to end");
    }
    wait_for_end(client, ha.as_ref(), secret.as_deref(), format, id)
}

/// How long an attached `weir run` waits for a new JobManager leader.
const LEADER_CHANGE_TIMEOUT: Duration = Duration::from_secs(600);

/// Waits for a submitted job to end, prints it, and returns 0 if it finished, else 1.
/// With high availability it follows leader changes: the new leader recovered the job.
fn wait_for_end(
    mut client: Client,
    ha: Option<&weir_runtime::ha::HaConfig>,
    secret: Option<&str>,
    format: Format,
    id: JobId,
) -> Result<i32> {
    let mut progress = crate::progress::Progress::new(format);
    loop {
        let answer = client.answer(WaitJob {
            job: id,
            timeout_ms: 1_000,
        });
        let summary = match (answer, ha) {
            (Ok(reply), _) => reply.map_err(|e| anyhow!("{e}"))?,
            (Err(e), None) => return Err(e),
            (Err(e), Some(ha)) => {
                eprintln!(
                    "weir: {}; waiting for the JobManager leader",
                    output::message(&e)
                );
                client = ha::reconnect(ha, secret, LEADER_CHANGE_TIMEOUT)?;
                continue;
            }
        };
        progress.update(&summary);
        if summary.status.is_terminal() {
            progress.finish();
            let ok = summary.status == weir_runtime::rpc::messages::JobStatus::Finished;
            output::job(format, &summary);
            return Ok(if ok { 0 } else { 1 });
        }
    }
}

/// Runs the program on its embedded local mini-cluster and returns its exit status.
fn run_local(program: &Path, properties: &Properties, args: &[String]) -> Result<i32> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(ENV_JOB_PROPERTIES, encode_properties(properties))
        // The program reads no cluster configuration: its S3 settings go as AWS variables.
        .envs(weir_runtime::checkpoint::S3Settings::installed().worker_env());
    let status = cmd
        .status()
        .with_context(|| format!("cannot start job program {}", program.display()))?;
    Ok(status.code().unwrap_or(1))
}

/// Job configuration keys and their values, as handed to a job program.
type Properties = std::collections::BTreeMap<String, String>;

/// How long a program may take to build its job graph.
const PLAN_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs the program in plan mode and returns the job graph it built.
fn plan(program: &Path, properties: &Properties, args: &[String]) -> Result<JobGraph> {
    let file = std::env::temp_dir().join(format!(
        "weir-plan-{}-{}.bin",
        std::process::id(),
        weir_runtime::now_ms()
    ));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env(weir_runtime::rpc::messages::ENV_PLAN_FILE, &file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .env(ENV_JOB_PROPERTIES, encode_properties(properties));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start job program {}", program.display()))?;
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > PLAN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&file);
            bail!(
                "{} is not a Weir job: it built no job graph within {} s",
                program.display(),
                PLAN_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let bytes = std::fs::read(&file);
    let _ = std::fs::remove_file(&file);
    let Ok(bytes) = bytes else {
        if !status.success() {
            bail!(
                "job program {} failed before building its job graph ({status})",
                program.display()
            );
        }
        bail!(
            "{} is not a Weir job: it exited without building a job graph (a job program ends with env.execute(..) on a weir-api StreamExecutionEnvironment)",
            program.display()
        );
    };
    JobGraph::decode_plan(&bytes).with_context(|| {
        format!(
            "{} wrote a job graph this weir cannot read (built against another Weir release?)",
            program.display()
        )
    })
}
