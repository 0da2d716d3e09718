//! `weir-bench cluster-recovery`: a standalone cluster as real processes, and two times.
//!
//! Starts `weir jobmanager` and three `weir taskmanager`s with one slot each (one of them
//! idle, standing by), submits the `sensor_pipeline` example at parallelism 2 with
//! checkpoints and its transactional file sinks (`weir run --detached`), and measures, on
//! its alerts (readings above 75 degrees, written as they pass, about one in twenty), so
//! that the window semantics do not delay the first output:
//! - `submit_to_first_output_ms`: from starting `weir run` (which extracts the job graph,
//!   uploads the program and submits) to the first byte in the alerts directory
//!   (in-progress part files count);
//! - `recovery_ms`: from `kill -9` of a TaskManager running half of the job, once the job
//!   has completed a checkpoint, to the first alert byte the restored job writes (the job's
//!   restart strategy, fixed-delay with 1 s, as Flink's default, is included).
//!
//! The programs come from beside this binary (`cargo build --release -p weir-cli
//! --example sensor_pipeline`), or `--weir` and `--program`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use weir_bench::procs::{
    beside_me, bytes_in, job_info, rest_get, start_jobmanager as start_jobmanager_with,
    start_taskmanager, wait_for, Proc,
};

/// What the measurement needs from the command line.
pub struct Settings {
    pub weir: Option<PathBuf>,
    pub program: Option<PathBuf>,
    pub records: u64,
    pub rate: u64,
    pub checkpoint_interval_ms: u64,
    /// Which process is killed.
    pub kill: Kill,
    /// The Python of a PyFlink environment: with `--kill jobmanager`, also run Flink's
    /// failover (`bench/flink/ha_failover.py`) on the same ZooKeeper.
    pub flink_python: Option<PathBuf>,
}

/// The process `cluster-recovery` kills.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kill {
    /// A TaskManager running half of the job.
    Taskmanager,
    /// The leading JobManager of a highly available cluster (see `cluster_failover.rs`).
    Jobmanager,
}

/// Runs the measurement and returns its JSON line.
pub fn run(s: &Settings) -> Result<serde_json::Value> {
    let weir = match &s.weir {
        Some(p) => p.clone(),
        None => beside_me("weir")?,
    };
    let program = match &s.program {
        Some(p) => p.clone(),
        None => beside_me("examples/sensor_pipeline")?,
    };
    for p in [&weir, &program] {
        if !p.is_file() {
            bail!(
                "{} is missing: build it (cargo build --release -p weir-cli --example sensor_pipeline) or pass --weir/--program",
                p.display()
            );
        }
    }
    let dir = std::env::temp_dir().join(format!("weir-bench-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = match s.kill {
        Kill::Taskmanager => measure(s, &weir, &program, &dir),
        Kill::Jobmanager => crate::cluster_failover::measure(s, &weir, &program, &dir),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Starts the cluster, runs the job on it, kills a TaskManager and returns the JSON line
/// of the two times.
fn measure(s: &Settings, weir: &Path, program: &Path, dir: &Path) -> Result<serde_json::Value> {
    let (_jm, rpc, rest) = start_jobmanager(weir, dir)?;
    let mut tms = start_taskmanagers(weir, &rpc, &rest, dir)?;
    let out = dir.join("alerts");
    let started = Instant::now();
    let job = submit(s, weir, program, &rpc, dir, &out)?;
    wait_for("the first output", Duration::from_secs(120), || {
        (bytes_in(&out) > 0).then_some(())
    })?;
    let first_output = started.elapsed();
    let recovery = kill_and_time_recovery(&mut tms, &rest, &job, &out)?;
    let end = wait_for_finish(&rest, &job)?;
    Ok(serde_json::json!({
        "workload": "cluster-recovery",
        "kill": "taskmanager",
        "records": s.records,
        "rate_per_worker": s.rate,
        "checkpoint_interval_ms": s.checkpoint_interval_ms,
        "submit_to_first_output_ms": first_output.as_millis() as u64,
        "recovery_ms": recovery.as_millis() as u64,
        "restarts": end["restarts"],
    }))
}

/// Waits until `job` ended, which must be as `FINISHED`; returns its summary.
pub(crate) fn wait_for_finish(rest: &str, job: &str) -> Result<serde_json::Value> {
    let end = wait_for("the job's end", Duration::from_secs(600), || {
        let i = job_info(rest, job).ok()?;
        matches!(
            i["status"].as_str(),
            Some("FINISHED" | "FAILED" | "CANCELLED")
        )
        .then_some(i)
    })?;
    if end["status"] != "FINISHED" {
        bail!("the job did not finish: {end}");
    }
    Ok(end)
}

/// Starts `weir jobmanager` on free ports and returns it with its RPC and REST addresses,
/// read from the first line it prints.
fn start_jobmanager(weir: &Path, dir: &Path) -> Result<(Proc, String, String)> {
    let artifacts = format!(
        "jobmanager.artifacts.dir={}",
        dir.join("artifacts").display()
    );
    let mut jm = start_jobmanager_with(weir, &[artifacts], dir, "jobmanager")?;
    let (rpc, rest) = jm.leads(Duration::from_secs(60))?;
    Ok((jm.proc, rpc, rest))
}

/// Starts three one-slot `weir taskmanager`s, waiting for each to register before the next.
fn start_taskmanagers(weir: &Path, rpc: &str, rest: &str, dir: &Path) -> Result<Vec<Proc>> {
    let mut tms = Vec::new();
    for n in 0..3 {
        let target = [format!("jobmanager.rpc.address={rpc}")];
        tms.push(start_taskmanager(weir, &target, dir, n)?);
        wait_for("a taskmanager", Duration::from_secs(30), || {
            let v = rest_get(rest, "/taskmanagers").ok()?;
            (v["taskmanagers"].as_array()?.len() > n).then_some(())
        })?;
    }
    Ok(tms)
}

/// Returns the JSON line a benchmark script printed last to `out`; `what` names it in
/// the error when it failed or printed none.
pub(crate) fn script_report(out: &std::process::Output, what: &str) -> Result<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    match serde_json::from_str(last) {
        Ok(v) if out.status.success() => Ok(v),
        _ => bail!(
            "{what} failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Submits the program with `weir run --detached`, its alerts going to `out`, and
/// returns the job id.
pub(crate) fn submit(
    s: &Settings,
    weir: &Path,
    program: &Path,
    rpc: &str,
    dir: &Path,
    out: &Path,
) -> Result<String> {
    let submitted = Command::new(weir)
        .args(["run", "--jobmanager", rpc, "--detached", "--output", "json"])
        .arg(program)
        .arg("--")
        .args(["--records", &s.records.to_string(), "--parallelism", "2"])
        .arg("--output")
        .arg(dir.join("windows"))
        .arg("--alerts-output")
        .arg(out)
        .args([
            "--checkpoint-interval-ms",
            &s.checkpoint_interval_ms.to_string(),
        ])
        .arg("--checkpoint-dir")
        .arg(format!("file://{}", dir.join("checkpoints").display()))
        .args(["--throttle-records-per-sec", &s.rate.to_string()])
        .output()?;
    let v: serde_json::Value = serde_json::from_slice(&submitted.stdout)
        .with_context(|| String::from_utf8_lossy(&submitted.stderr).into_owned())?;
    Ok(v["job_id"].as_str().context("a job id")?.to_string())
}

/// Once the job has completed a checkpoint, kills (`kill -9`) the first TaskManager
/// running it and returns the time from the kill to the first output after the restore.
fn kill_and_time_recovery(tms: &mut [Proc], rest: &str, job: &str, out: &Path) -> Result<Duration> {
    let placed = wait_for("a completed checkpoint", Duration::from_secs(120), || {
        let i = job_info(rest, job).ok()?;
        (i["last_checkpoint"].as_u64()? >= 1).then_some(i)
    })?;
    let victim = placed["taskmanagers"][0]
        .as_u64()
        .context("a taskmanager")? as usize;
    let killed_at = Instant::now();
    tms[victim].kill9()?;
    let baseline = wait_for("the restart", Duration::from_secs(120), || {
        let i = job_info(rest, job).ok()?;
        (i["restarts"].as_u64()? >= 1 && i["status"] == "RUNNING").then(|| bytes_in(out))
    })?;
    wait_for("output after the restore", Duration::from_secs(120), || {
        (bytes_in(out) > baseline).then_some(())
    })?;
    Ok(killed_at.elapsed())
}
