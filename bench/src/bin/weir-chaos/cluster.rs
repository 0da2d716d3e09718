//! The cluster the harness runs and hurts: ZooKeeper (`scripts/zookeeper.sh`), a leading
//! and a standby JobManager with ZooKeeper high availability, and one-slot TaskManagers
//! (one more than the job needs), all processes on loopback.
//!
//! Invariants: after every fault the cluster is whole again: a killed TaskManager is
//! replaced by a new one, a killed leader by a new standby (the old standby takes over), a
//! frozen process is resumed and ZooKeeper restarted on its data and port. Leadership also
//! moves without the harness (a JobManager that loses its ZooKeeper session stops serving
//! and runs again), so the leader is never remembered: it is the JobManager whose latest
//! banner's REST API answers. Every process is killed when the cluster drops.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use weir_bench::procs::{
    job_info, rest_get, signal, start_jobmanager, start_taskmanager, wait_for, JobManager, Proc,
};
use weir_bench::server_script::{self, ScriptServer};

/// How long any one step of the cluster may take.
pub const WAIT: Duration = Duration::from_secs(120);

/// The ZooKeeper session timeout: a leader that stops answering loses leadership this long
/// after.
const SESSION_TIMEOUT: &str = "1 s";

/// Heartbeats between JobManager, TaskManagers and workers: a process silent this long
/// is lost (freezes are drawn on both sides of it).
const HEARTBEAT_TIMEOUT: &str = "2 s";

/// A highly available cluster of real processes.
pub struct Cluster {
    dir: PathBuf,
    weir: PathBuf,
    zk: ScriptServer,
    defines: Vec<String>,
    /// The two running JobManagers, in no particular order.
    jobmanagers: Vec<JobManager>,
    jobmanagers_started: usize,
    /// The first leader's RPC address (where the job is submitted).
    rpc: String,
    /// Running TaskManagers with the number of their log (`taskmanager-<n>.log`).
    taskmanagers: Vec<(usize, Proc)>,
    taskmanagers_started: usize,
}

impl Cluster {
    /// Starts ZooKeeper, two JobManagers (the first leads) and `taskmanagers` TaskManagers
    /// in `dir`, and waits until they all registered.
    pub fn start(weir: &Path, dir: &Path, taskmanagers: usize) -> Result<Self> {
        let (zk, quorum) = server_script::start("zookeeper.sh", "WEIR_ZK_OWNER_PID")?;
        let defines = vec![
            "high-availability.type=zookeeper".to_string(),
            format!("high-availability.zookeeper.quorum={quorum}"),
            "high-availability.cluster-id=chaos".to_string(),
            format!(
                "high-availability.storageDir=file://{}",
                dir.join("ha").display()
            ),
            format!("high-availability.zookeeper.client.session-timeout={SESSION_TIMEOUT}"),
            "high-availability.zookeeper.client.connection-timeout=10 s".to_string(),
            format!("heartbeat.timeout={HEARTBEAT_TIMEOUT}"),
            "heartbeat.interval=200 ms".to_string(),
            format!(
                "jobmanager.artifacts.dir={}",
                dir.join("artifacts").display()
            ),
        ];
        let mut leader = start_jobmanager(weir, &defines, dir, "jobmanager-0")?;
        let (rpc, _) = leader.leads(WAIT)?;
        let standby = start_jobmanager(weir, &defines, dir, "jobmanager-1")?;
        let mut c = Self {
            dir: dir.to_path_buf(),
            weir: weir.to_path_buf(),
            zk,
            defines,
            jobmanagers: vec![leader, standby],
            jobmanagers_started: 2,
            rpc,
            taskmanagers: Vec::new(),
            taskmanagers_started: 0,
        };
        for _ in 0..taskmanagers {
            c.add_taskmanager()?;
        }
        c.wait_for_taskmanagers(taskmanagers)?;
        Ok(c)
    }

    fn add_taskmanager(&mut self) -> Result<()> {
        let n = self.taskmanagers_started;
        let tm = start_taskmanager(&self.weir, &self.defines, &self.dir, n)?;
        self.taskmanagers_started += 1;
        self.taskmanagers.push((n, tm));
        Ok(())
    }

    fn wait_for_taskmanagers(&mut self, n: usize) -> Result<()> {
        wait_for("registered taskmanagers", WAIT, || {
            let (_, rest) = self.serving()?;
            let v = rest_get(&rest, "/taskmanagers").ok()?;
            (v["taskmanagers"].as_array()?.len() >= n).then_some(())
        })
    }

    /// The index and REST address of the JobManager serving now: the first whose latest
    /// banner's REST API answers.
    fn serving(&mut self) -> Option<(usize, String)> {
        self.jobmanagers.iter_mut().enumerate().find_map(|(i, jm)| {
            let (_, rest) = jm.addresses()?;
            rest_get(&rest, "/overview").ok().map(|_| (i, rest))
        })
    }

    /// Submits `program` with `args` (detached, at parallelism 2) through the leader and
    /// returns the job id.
    pub fn submit(&self, program: &Path, args: &[String]) -> Result<String> {
        let mut cmd = Command::new(&self.weir);
        for d in &self.defines {
            cmd.args(["-D", d]);
        }
        let out = cmd
            .args([
                "run",
                "--jobmanager",
                &self.rpc,
                "--detached",
                "--output",
                "json",
            ])
            .args(["--parallelism", "2"])
            .arg(program)
            .arg("--")
            .args(args)
            .output()
            .context("cannot run weir run")?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "weir run failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
        Ok(v["job_id"].as_str().context("a job id")?.to_string())
    }

    /// The serving JobManager's view of `job`, if one answers.
    pub fn job(&mut self, job: &str) -> Option<serde_json::Value> {
        let (_, rest) = self.serving()?;
        job_info(&rest, job).ok()
    }

    /// `kill -9` of TaskManager `target` (modulo their number), then a new one in its place.
    pub fn kill_taskmanager(&mut self, target: u64) -> Result<()> {
        let i = (target % self.taskmanagers.len() as u64) as usize;
        let (_, mut tm) = self.taskmanagers.remove(i);
        tm.kill9()?;
        self.add_taskmanager()
    }

    /// Freezes TaskManager `target` (SIGSTOP) for `hold`, then resumes it (SIGCONT).
    pub fn freeze_taskmanager(&mut self, target: u64, hold: Duration) -> Result<()> {
        let i = (target % self.taskmanagers.len() as u64) as usize;
        freeze(self.taskmanagers[i].1.pid(), hold)
    }

    /// The pids of the running job workers of `job`.
    fn worker_pids(&self, job: &str) -> Vec<u32> {
        self.taskmanagers
            .iter()
            .filter_map(|(n, _)| {
                let log = std::fs::read_to_string(self.dir.join(format!("taskmanager-{n}.log")));
                worker_pid(&log.ok()?, job)
            })
            .filter(|pid| alive(*pid))
            .collect()
    }

    /// `kill -9` of job worker `target` (modulo those running); false when none runs.
    pub fn kill_worker(&mut self, target: u64, job: &str) -> Result<bool> {
        let pids = self.worker_pids(job);
        if pids.is_empty() {
            return Ok(false);
        }
        signal(pids[(target % pids.len() as u64) as usize], "KILL")?;
        Ok(true)
    }

    /// Freezes job worker `target` (modulo those running) for `hold`; false when none
    /// runs.
    pub fn freeze_worker(&mut self, target: u64, job: &str, hold: Duration) -> Result<bool> {
        let pids = self.worker_pids(job);
        if pids.is_empty() {
            return Ok(false);
        }
        freeze(pids[(target % pids.len() as u64) as usize], hold)?;
        Ok(true)
    }

    /// Freezes the serving JobManager for `hold`.
    pub fn freeze_leader(&mut self, hold: Duration) -> Result<()> {
        let (i, _) = wait_for("a serving jobmanager", WAIT, || self.serving())?;
        freeze(self.jobmanagers[i].proc.pid(), hold)
    }

    /// `kill -9` of the serving JobManager, then a new standby; the old standby takes
    /// over.
    pub fn kill_leader(&mut self) -> Result<()> {
        let (i, _) = wait_for("a serving jobmanager", WAIT, || self.serving())?;
        self.jobmanagers.remove(i).proc.kill9()?;
        let name = format!("jobmanager-{}", self.jobmanagers_started);
        let standby = start_jobmanager(&self.weir, &self.defines, &self.dir, &name)?;
        self.jobmanagers_started += 1;
        self.jobmanagers.push(standby);
        Ok(())
    }

    /// Kills ZooKeeper (`kill -9`), waits `hold` and starts it again on its data and port.
    pub fn restart_zookeeper(&mut self, hold: Duration) -> Result<()> {
        self.zk.run("pause")?;
        std::thread::sleep(hold);
        self.zk.run("resume")
    }
}

/// Stops process `pid` (SIGSTOP) for `hold`, then lets it go on (SIGCONT).
fn freeze(pid: u32, hold: Duration) -> Result<()> {
    signal(pid, "STOP")?;
    std::thread::sleep(hold);
    signal(pid, "CONT")
}

/// The pid of the newest worker a TaskManager's log says it started for `job`.
fn worker_pid(log: &str, job: &str) -> Option<u32> {
    log.lines()
        .rev()
        .filter(|l| l.contains("job worker started") && l.contains(job))
        .filter_map(|l| l.split("pid=").nth(1))
        .find_map(|p| p.split_whitespace().next()?.parse().ok())
}

/// Whether process `pid` exists and is no zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            let state = s.rsplit(')').next().unwrap_or_default().trim_start();
            !state.starts_with('Z')
        })
        .unwrap_or(false)
}
