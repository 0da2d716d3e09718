//! `weir-bench cluster-recovery --kill jobmanager`: JobManager failover of a highly
//! available cluster, as real processes, timed.
//!
//! Starts a ZooKeeper server (`scripts/zookeeper.sh`), two `weir jobmanager`s with
//! `high-availability.type: zookeeper` (the first leads, the second stands by) and two
//! one-slot `weir taskmanager`s that find the leader through ZooKeeper; submits the
//! `sensor_pipeline` example as `cluster-recovery` does; once the job has completed a
//! checkpoint, kills (`kill -9`) the leader and measures:
//! - `leader_elected_ms`: from the kill to the standby serving as leader (its session
//!   waits for the dead leader's ZooKeeper session to expire:
//!   `high-availability.zookeeper.client.session-timeout`, reported as `session_timeout_ms`);
//! - `job_running_ms`: from the kill to the new leader reporting the recovered job
//!   `RUNNING` (every subtask deployed and restored from the latest checkpoint);
//! - `recovery_ms`: from the kill to the first alert byte the job writes once the new
//!   leader recovered it from its latest checkpoint on the TaskManagers (the transactional
//!   file sink buffers 256 KiB, so at this rate its first bytes are flushed by the first
//!   checkpoint barrier after the recovery).

use crate::cluster_recovery::{script_report, submit, wait_for_finish, Settings};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weir_bench::procs::{
    bytes_in, job_info, rest_get, start_jobmanager, start_taskmanager, wait_for,
};

/// The ZooKeeper session timeout of the cluster's processes.
const SESSION_TIMEOUT_MS: u64 = 1_000;

/// Runs the measurement in `dir` and returns its JSON line.
pub(crate) fn measure(
    s: &Settings,
    weir: &Path,
    program: &Path,
    dir: &Path,
) -> Result<serde_json::Value> {
    let (_zk, quorum) = weir_bench::server_script::start("zookeeper.sh", "WEIR_ZK_OWNER_PID")?;
    let ha = vec![
        "high-availability.type=zookeeper".to_string(),
        format!("high-availability.zookeeper.quorum={quorum}"),
        format!(
            "high-availability.storageDir=file://{}",
            dir.join("ha").display()
        ),
        format!("high-availability.zookeeper.client.session-timeout={SESSION_TIMEOUT_MS} ms"),
    ];
    let mut leader = start_jobmanager(weir, &ha, dir, "jobmanager-0")?;
    let (rpc, rest) = leader.leads(Duration::from_secs(60))?;
    let mut standby = start_jobmanager(weir, &ha, dir, "jobmanager-1")?;
    let _tms = (0..2)
        .map(|n| start_taskmanager(weir, &ha, dir, n))
        .collect::<Result<Vec<_>>>()?;
    wait_for("two taskmanagers", Duration::from_secs(60), || {
        let v = rest_get(&rest, "/taskmanagers").ok()?;
        (v["taskmanagers"].as_array()?.len() == 2).then_some(())
    })?;
    let out = dir.join("alerts");
    let job = submit(s, weir, program, &rpc, dir, &out)?;
    wait_for("a completed checkpoint", Duration::from_secs(120), || {
        let i = job_info(&rest, &job).ok()?;
        (i["last_checkpoint"].as_u64()? >= 1 && bytes_in(&out) > 0).then_some(())
    })?;
    let killed_at = Instant::now();
    leader.proc.kill9()?;
    let (_, rest) = standby.leads(Duration::from_secs(120))?;
    let elected = killed_at.elapsed();
    let baseline = wait_for("the recovered job to run", Duration::from_secs(120), || {
        let i = job_info(&rest, &job).ok()?;
        (i["status"] == "RUNNING").then(|| bytes_in(&out))
    })?;
    let running = killed_at.elapsed();
    wait_for(
        "output after the recovery",
        Duration::from_secs(120),
        || (bytes_in(&out) > baseline).then_some(()),
    )?;
    let recovery = killed_at.elapsed();
    wait_for_finish(&rest, &job)?;
    let mut line = serde_json::json!({
        "workload": "cluster-recovery",
        "kill": "jobmanager",
        "records": s.records,
        "rate_per_worker": s.rate,
        "checkpoint_interval_ms": s.checkpoint_interval_ms,
        "session_timeout_ms": SESSION_TIMEOUT_MS,
        "leader_elected_ms": elected.as_millis() as u64,
        "job_running_ms": running.as_millis() as u64,
        "recovery_ms": recovery.as_millis() as u64,
    });
    if let Some(python) = &s.flink_python {
        let flink = flink_failover(python, s, &quorum)?;
        let ratio = flink["recovery_ms"].as_f64().unwrap_or(0.0) / recovery.as_secs_f64() / 1e3;
        line["flink"] = flink;
        line["flink_recovery_ratio"] = serde_json::json!((ratio * 100.0).round() / 100.0);
    }
    Ok(line)
}

/// Runs Flink's side (`bench/flink/ha_failover.py`) on the same ZooKeeper, with the same
/// session timeout, total rate and checkpoint interval; returns its JSON line.
fn flink_failover(python: &Path, s: &Settings, quorum: &str) -> Result<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/ha_failover.py");
    let out = Command::new(python)
        .arg(script)
        .args(["--zookeeper", quorum])
        .args(["--session-timeout-ms", &SESSION_TIMEOUT_MS.to_string()])
        .args(["--rate", &(2 * s.rate).to_string()])
        .args([
            "--checkpoint-interval-ms",
            &s.checkpoint_interval_ms.to_string(),
        ])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    script_report(&out, "Flink's failover run")
}
