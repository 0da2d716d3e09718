//! The cluster the harness runs and hurts: ZooKeeper (`scripts/zookeeper.sh`), a leading
//! and a standby JobManager with ZooKeeper high availability, and one-slot TaskManagers
//! (one more than the job needs), all processes on loopback, or, for partitions, in
//! network namespaces of their own ([`Network`]: the control plane in one, each
//! TaskManager slot in another).
//!
//! Invariants: after every fault the cluster is whole again: a killed TaskManager is
//! replaced by a new one in its slot, a killed leader by a new standby (the old standby
//! takes over), a partitioned TaskManager's link is up again, a
//! frozen process is resumed and ZooKeeper restarted on its data and port. Leadership also
//! moves without the harness (a JobManager that loses its ZooKeeper session stops serving
//! and runs again), so the leader is never remembered: it is the JobManager whose latest
//! banner's REST API answers. Every process is killed when the cluster drops.

use crate::network::{Network, Shape};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use weir_bench::procs::{
    output_within, rest_get_as, signal, start_jobmanager_as, start_taskmanager_as, wait_every,
    JobManager, Proc,
};
use weir_bench::server_script::{self, ScriptServer};

/// How long any one step of the cluster may take.
pub const WAIT: Duration = Duration::from_secs(120);

/// How often the harness polls the cluster's REST API and processes.
pub const POLL: Duration = Duration::from_millis(25);

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
    defines: Vec<String>,
    /// The two running JobManagers, in no particular order.
    jobmanagers: Vec<JobManager>,
    jobmanagers_started: usize,
    /// The first leader's RPC address (where the job is submitted).
    rpc: String,
    /// The TaskManager of each slot, with the number of its log (`taskmanager-<n>.log`).
    taskmanagers: Vec<(usize, Proc)>,
    taskmanagers_started: usize,
    /// ZooKeeper (stopped after the processes that use it: fields drop in order).
    zk: ScriptServer,
    /// The cluster secret, which every process and REST call presents when the cluster
    /// runs in namespaces (its addresses are not loopback ones).
    secret: Option<String>,
    /// The namespaces, when the run partitions (dropped last, after every process).
    net: Option<Network>,
}

impl Cluster {
    /// Starts ZooKeeper, two JobManagers (the first leads) and `taskmanagers` TaskManagers
    /// in `dir`, and waits until they all registered.
    pub fn start(
        weir: &Path,
        dir: &Path,
        taskmanagers: usize,
        mut net: Option<Network>,
    ) -> Result<Self> {
        let (zk, quorum) = match &net {
            Some(net) => server_script::start_under(
                &net.exec_prefix("control"),
                &[("WEIR_ZK_HOST", &net.control_address())],
                "zookeeper.sh",
                "WEIR_ZK_OWNER_PID",
            )?,
            None => server_script::start("zookeeper.sh", "WEIR_ZK_OWNER_PID")?,
        };
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
        for slot in 0..taskmanagers {
            if let Some(net) = &mut net {
                net.add_member(&slot_name(slot), slot_host(slot))?;
            }
        }
        let mut c = Self {
            dir: dir.to_path_buf(),
            weir: weir.to_path_buf(),
            zk,
            defines,
            jobmanagers: Vec::new(),
            jobmanagers_started: 0,
            rpc: String::new(),
            taskmanagers: Vec::new(),
            taskmanagers_started: 0,
            secret: net.as_ref().map(|_| new_secret()).transpose()?,
            net,
        };
        c.add_jobmanager()?;
        c.rpc = c.jobmanagers[0].leads(WAIT)?.0;
        c.add_jobmanager()?;
        for slot in 0..taskmanagers {
            let tm = c.start_taskmanager(slot)?;
            c.taskmanagers.push(tm);
        }
        c.wait_for_taskmanagers(taskmanagers)?;
        Ok(c)
    }

    /// Starts one more JobManager (in the control plane's namespace, if any).
    fn add_jobmanager(&mut self) -> Result<()> {
        let name = format!("jobmanager-{}", self.jobmanagers_started);
        let (cmd, host) = match &self.net {
            Some(net) => (net.command("control", &self.weir), net.control_address()),
            None => (Command::new(&self.weir), "127.0.0.1".to_string()),
        };
        let jm = start_jobmanager_as(
            self.with_secret(cmd),
            &host,
            &self.defines,
            &self.dir,
            &name,
        )?;
        self.jobmanagers_started += 1;
        self.jobmanagers.push(jm);
        Ok(())
    }

    /// Starts a TaskManager for `slot` (in the slot's namespace, if any); returns it with
    /// the number of its log.
    fn start_taskmanager(&mut self, slot: usize) -> Result<(usize, Proc)> {
        let n = self.taskmanagers_started;
        let mut defines = self.defines.clone();
        let cmd = match &self.net {
            Some(net) => {
                let host = net.address(slot_host(slot));
                defines.push(format!("taskmanager.data.bind-host={host}"));
                net.command(&slot_name(slot), &self.weir)
            }
            None => Command::new(&self.weir),
        };
        let tm = start_taskmanager_as(self.with_secret(cmd), &defines, &self.dir, n)?;
        self.taskmanagers_started += 1;
        Ok((n, tm))
    }

    fn wait_for_taskmanagers(&mut self, n: usize) -> Result<()> {
        wait_every("registered taskmanagers", WAIT, POLL, || {
            let (_, rest) = self.serving()?;
            let v = self.rest(&rest, "/taskmanagers")?;
            (v["taskmanagers"].as_array()?.len() >= n).then_some(())
        })
    }

    /// The index and REST address of the JobManager serving now: the first whose latest
    /// banner's REST API answers.
    fn serving(&mut self) -> Option<(usize, String)> {
        let token = self.secret.as_deref();
        self.jobmanagers.iter_mut().enumerate().find_map(|(i, jm)| {
            let (_, rest) = jm.addresses()?;
            rest_get_as(&rest, "/overview", token)
                .ok()
                .map(|_| (i, rest))
        })
    }

    /// GET `path` on the REST API at `rest`, with the cluster secret if any.
    fn rest(&self, rest: &str, path: &str) -> Option<serde_json::Value> {
        rest_get_as(rest, path, self.secret.as_deref()).ok()
    }

    /// `cmd` with the cluster secret in its environment, if any.
    fn with_secret(&self, mut cmd: Command) -> Command {
        if let Some(secret) = &self.secret {
            cmd.env("WEIR_CLUSTER_SECRET", secret);
        }
        cmd
    }

    /// Submits `program` with `args` (detached, at parallelism 2) through the leader and
    /// returns the job id.
    pub fn submit(&self, program: &Path, args: &[String]) -> Result<String> {
        let mut cmd = self.with_secret(Command::new(&self.weir));
        for d in &self.defines {
            cmd.args(["-D", d]);
        }
        cmd.args(["run", "--jobmanager", &self.rpc, "--detached"])
            .args(["--output", "json", "--parallelism", "2"])
            .arg(program)
            .arg("--")
            .args(args);
        let out = output_within(cmd, WAIT)?;
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
        self.rest(&rest, &format!("/jobs/{job}"))
    }

    /// `kill -9` of TaskManager `target` (modulo their number), then a new one in its slot.
    pub fn kill_taskmanager(&mut self, target: u64) -> Result<()> {
        let slot = (target % self.taskmanagers.len() as u64) as usize;
        self.taskmanagers[slot].1.kill9()?;
        self.taskmanagers[slot] = self.start_taskmanager(slot)?;
        Ok(())
    }

    /// Cuts TaskManager `target` (modulo their number) off the network for `hold`: its
    /// link goes down, it keeps running, and the link comes up again. Fails unless the
    /// cluster runs in namespaces.
    pub fn partition_taskmanager(&mut self, target: u64, hold: Duration) -> Result<()> {
        let net = self.net("partitions")?;
        let slot = slot_name((target % self.taskmanagers.len() as u64) as usize);
        net.link(&slot, false)?;
        std::thread::sleep(hold);
        net.link(&slot, true)
    }

    /// Cuts TaskManager `target` (modulo their number) off from the control plane
    /// (ZooKeeper and the JobManagers) or, with `peers`, from the other TaskManagers, for
    /// `hold`; everything else keeps its links. Fails unless the cluster runs in namespaces.
    pub fn partition_taskmanager_from(
        &mut self,
        target: u64,
        peers: bool,
        hold: Duration,
    ) -> Result<()> {
        let net = self.net("partitions")?;
        let slots = self.taskmanagers.len();
        let slot = (target % slots as u64) as usize;
        let from: Vec<String> = if peers {
            (0..slots).filter(|s| *s != slot).map(slot_name).collect()
        } else {
            vec!["control".to_string()]
        };
        let name = slot_name(slot);
        let cut = net.cut(&name, &from, true);
        if cut.is_ok() {
            std::thread::sleep(hold);
        }
        let joined = net.cut(&name, &from, false);
        cut.and(joined)
    }

    /// The cluster's network namespaces; fails naming `what` needs them when it runs
    /// without.
    fn net(&self, what: &str) -> Result<&Network> {
        self.net
            .as_ref()
            .with_context(|| format!("{what} need the cluster in network namespaces"))
    }

    /// Makes TaskManager `target`'s link (modulo their number) slow and lossy
    /// ([`Shape::for_target`]) for `hold`, then restores it. Fails unless the cluster runs
    /// in namespaces.
    pub fn slow_taskmanager_link(&mut self, target: u64, hold: Duration) -> Result<()> {
        let net = self.net("slow links")?;
        let name = slot_name((target % self.taskmanagers.len() as u64) as usize);
        let shape = Shape::for_target(target);
        eprintln!(
            "weir-chaos: {name}'s link at {} kbit/s, queue {} ms",
            shape.rate_kbit, shape.latency_ms
        );
        let shaped = net.shape(&name, Some(shape));
        if shaped.is_ok() {
            std::thread::sleep(hold);
        }
        let restored = net.shape(&name, None);
        shaped.and(restored)
    }

    /// Freezes TaskManager `target` (SIGSTOP) for `hold`, then resumes it (SIGCONT).
    pub fn freeze_taskmanager(&mut self, target: u64, hold: Duration) -> Result<()> {
        let i = (target % self.taskmanagers.len() as u64) as usize;
        freeze(self.taskmanagers[i].1.pid(), hold)
    }

    /// Job worker `target` (modulo those running), waiting until one runs (after a
    /// restart the workers may still be starting): the living children of the harness's
    /// TaskManagers, each of which runs a worker per job (the run has one job), so a
    /// signal never reaches a process the harness did not start.
    fn worker(&self, target: u64) -> Result<u32> {
        let pids = wait_every("a running job worker", WAIT, POLL, || {
            let pids: Vec<u32> = self
                .taskmanagers
                .iter()
                .flat_map(|(_, tm)| children(tm.pid()))
                .filter(|pid| alive(*pid))
                .collect();
            (!pids.is_empty()).then_some(pids)
        })?;
        Ok(pids[(target % pids.len() as u64) as usize])
    }

    /// `kill -9` of job worker `target` (modulo those running).
    pub fn kill_worker(&mut self, target: u64) -> Result<()> {
        signal(self.worker(target)?, "KILL")
    }

    /// Freezes job worker `target` (modulo those running) for `hold`.
    pub fn freeze_worker(&mut self, target: u64, hold: Duration) -> Result<()> {
        freeze(self.worker(target)?, hold)
    }

    /// Freezes the serving JobManager for `hold`.
    pub fn freeze_leader(&mut self, hold: Duration) -> Result<()> {
        let (i, _) = wait_every("a serving jobmanager", WAIT, POLL, || self.serving())?;
        freeze(self.jobmanagers[i].proc.pid(), hold)
    }

    /// `kill -9` of the serving JobManager, then a new standby; the old standby takes
    /// over.
    pub fn kill_leader(&mut self) -> Result<()> {
        let (i, _) = wait_every("a serving jobmanager", WAIT, POLL, || self.serving())?;
        self.jobmanagers.remove(i).proc.kill9()?;
        self.add_jobmanager()
    }

    /// Kills ZooKeeper (`kill -9`), waits `hold` and starts it again on its data and port.
    pub fn restart_zookeeper(&mut self, hold: Duration) -> Result<()> {
        self.zk.run("pause")?;
        std::thread::sleep(hold);
        self.zk.run("resume")
    }
}

/// A cluster secret nobody else knows: 128 bits from the kernel's random source.
fn new_secret() -> Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for the cluster secret")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The namespace (and hub link) name of TaskManager slot `slot`.
fn slot_name(slot: usize) -> String {
    format!("tm{slot}")
}

/// The host number of TaskManager slot `slot` in the run's subnet.
fn slot_host(slot: usize) -> u8 {
    10 + slot as u8
}

/// Stops process `pid` (SIGSTOP) for `hold`, then lets it go on (SIGCONT).
fn freeze(pid: u32, hold: Duration) -> Result<()> {
    signal(pid, "STOP")?;
    std::thread::sleep(hold);
    signal(pid, "CONT")
}

/// The child processes of process `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
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
