//! JobManager failover with real processes: a real ZooKeeper (`scripts/zookeeper.sh`),
//! several `weir jobmanager`s with the same `high-availability.*` settings, TaskManagers
//! and the CLI that find the leader there, and the sensor job with exactly-once
//! checkpoints and its transactional file sink.
//!
//! Faults are injected at points the tests observe (a completed checkpoint, an
//! acknowledged submission), never at a time; the job is throttled so that it runs for
//! many seconds after that point. Each run's output is compared, line for line, with the
//! same job run without failures. Every wait is bounded; every process is killed when its
//! test ends.

mod common;
#[path = "../../jobmanager/tests/common/zookeeper.rs"]
mod zookeeper;

use common::{
    output_lines, output_within, sensor_args, sensor_pipeline, spawn_jobmanager, spawn_taskmanager,
    wait_until, weir_bin, Proc,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::Receiver;
use std::sync::OnceLock;
use std::time::Duration;
use zookeeper::ZooKeeper;

const RECORDS: u64 = 40_000;
/// Per worker process: with two workers the job runs about ten seconds.
const THROTTLE: u64 = 2_000;
/// How long any wait of these tests may take.
const WAIT: Duration = Duration::from_secs(120);

/// The sensor job's arguments writing to `out` with checkpoints in `ck`.
fn job_args(out: &Path, ck: &Path, throttle: Option<u64>) -> Vec<String> {
    sensor_args(out, ck, RECORDS, throttle)
}

/// The output of the job run once without failures, on the program's local mini-cluster.
fn reference() -> &'static [String] {
    static REFERENCE: OnceLock<Vec<String>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut cmd = Command::new(sensor_pipeline());
        cmd.args(job_args(&out, &dir.path().join("ck"), None));
        let run = output_within(cmd, WAIT);
        assert!(run.status.success(), "{run:?}");
        let lines = output_lines(&out);
        assert!(lines.len() > 100, "{} lines", lines.len());
        lines
    })
}

/// A highly available cluster: ZooKeeper, JobManagers and TaskManagers as processes.
struct HaCluster {
    zk: ZooKeeper,
    dir: tempfile::TempDir,
    defines: Vec<String>,
    /// Every JobManager started, with the receiver of its banner (printed once it leads).
    jms: Vec<(Proc, Receiver<String>)>,
    tms: Vec<Proc>,
}

impl HaCluster {
    /// Starts ZooKeeper, `jobmanagers` JobManagers (the first one leads) and two
    /// TaskManagers that find the leader through ZooKeeper.
    fn start(jobmanagers: usize, session_timeout: &str) -> Self {
        let zk = ZooKeeper::start();
        let dir = tempfile::tempdir().unwrap();
        let defines = zk.defines("recovery", &dir.path().join("ha"), session_timeout);
        let mut c = Self {
            zk,
            dir,
            defines,
            jms: Vec::new(),
            tms: Vec::new(),
        };
        for i in 0..jobmanagers {
            c.add_jobmanager();
            if i == 0 {
                c.wait_for_leader(0);
            }
        }
        for _ in 0..2 {
            c.add_taskmanager();
        }
        wait_until("two registered taskmanagers", WAIT, || {
            let n = c.tms.iter().filter(|t| registered(&t.log())).count();
            (n == 2).then_some(())
        });
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts one more JobManager and waits until it runs for leadership.
    fn add_jobmanager(&mut self) {
        let name = format!("jobmanager-{}", self.jms.len());
        let refs: Vec<&str> = self.defines.iter().map(String::as_str).collect();
        let (jm, banner) = spawn_jobmanager(self.dir.path(), &name, &refs);
        wait_until("a JobManager candidate", WAIT, || {
            jm.log().contains("JobManager candidate").then_some(())
        });
        self.jms.push((jm, banner));
    }

    /// Waits until JobManager `i` leads (prints its banner).
    fn wait_for_leader(&self, i: usize) {
        let (jm, banner) = &self.jms[i];
        let line = banner
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("jobmanager {i} did not lead: {}", jm.log()));
        assert!(line.contains("JobManager listening"), "{line}");
    }

    fn add_taskmanager(&mut self) {
        let tm = spawn_taskmanager(self.dir.path(), self.tms.len(), 2, &self.defines);
        self.tms.push(tm);
    }

    /// Runs a `weir` verb that finds the leader through ZooKeeper.
    fn weir(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(weir_bin());
        for d in &self.defines {
            cmd.args(["-D", d]);
        }
        cmd.args(args);
        output_within(cmd, WAIT)
    }

    /// Submits the sensor job detached and returns its id once acknowledged.
    fn submit(&self, args: &[String]) -> String {
        let program = sensor_pipeline().display().to_string();
        let mut a = vec!["run", "--detached", "--output", "json", &program, "--"];
        a.extend(args.iter().map(String::as_str));
        let out = self.weir(&a);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("submit: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        v["job_id"].as_str().expect("a job id").to_string()
    }

    /// The job's summary from the leader, or `None` while no leader answers.
    fn info(&self, job: &str) -> Option<Value> {
        let out = self.weir(&["info", "--output", "json", job]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    }

    /// Waits until `job` has completed checkpoint `at_least` or a later one.
    fn wait_for_checkpoint(&self, job: &str, at_least: u64) -> u64 {
        wait_until("a completed checkpoint", WAIT, || {
            let i = self.info(job)?;
            assert_ne!(i["status"], "FAILED", "{i}\n{}", self.logs());
            i["last_checkpoint"].as_u64().filter(|c| *c >= at_least)
        })
    }

    /// Waits until `job` ended and returns its summary.
    fn wait_for_end(&self, job: &str) -> Value {
        wait_until("the job to end", Duration::from_secs(240), || {
            let i = self.info(job)?;
            matches!(
                i["status"].as_str(),
                Some("FINISHED" | "FAILED" | "CANCELLED")
            )
            .then_some(i)
        })
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for (i, (jm, _)) in self.jms.iter().enumerate() {
            s += &format!("--- jobmanager {i}\n{}", jm.log());
        }
        for (i, t) in self.tms.iter().enumerate() {
            s += &format!("--- taskmanager {i}\n{}", t.log());
        }
        s
    }

    /// Checks that `job` finished and wrote exactly the failure-free run's output.
    fn assert_exact(&self, job: &str, out: &Path) {
        let end = self.wait_for_end(job);
        assert_eq!(end["status"], "FINISHED", "{end}\n{}", self.logs());
        assert_eq!(output_lines(out), reference(), "{}", self.logs());
    }
}

/// Whether a TaskManager's log says it registered.
fn registered(log: &str) -> bool {
    log.contains("taskmanager registered")
}

fn signal(p: &Proc, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(p.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig}");
}

#[test]
fn the_leader_killed_mid_run_is_replaced_and_the_output_equals_the_failure_free_run() {
    let mut c = HaCluster::start(2, "2 s");
    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), Some(THROTTLE)));
    c.wait_for_checkpoint(&job, 2);
    c.jms[0].0.kill9();
    c.wait_for_leader(1);
    let log = c.jms[1].0.log();
    assert!(log.contains("recovering job"), "{log}");
    c.assert_exact(&job, &out);
}

#[test]
fn an_attached_run_follows_the_leader_change_and_exits_zero_when_the_job_finishes() {
    let mut c = HaCluster::start(2, "2 s");
    let out = c.path("out");
    let program = sensor_pipeline();
    let mut run = Command::new(weir_bin());
    for d in &c.defines {
        run.args(["-D", d]);
    }
    run.arg("run")
        .arg(&program)
        .arg("--")
        .args(job_args(&out, &c.path("ck"), Some(THROTTLE)));
    let attached = std::thread::spawn(move || output_within(run, Duration::from_secs(300)));
    let job = wait_until("the job to be listed", WAIT, || {
        let listed = c.weir(&["list", "--output", "json"]);
        let v: Value = serde_json::from_slice(&listed.stdout).ok()?;
        v["jobs"][0]["job_id"].as_str().map(str::to_string)
    });
    c.wait_for_checkpoint(&job, 2);
    c.jms[0].0.kill9();
    c.wait_for_leader(1);
    let done = attached.join().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert_eq!(done.status.code(), Some(0), "{stderr}\n{}", c.logs());
    assert!(
        stderr.contains("waiting for the JobManager leader"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&done.stdout).contains("FINISHED"));
    c.assert_exact(&job, &out);
}

#[test]
fn a_frozen_leader_resumed_after_the_takeover_completes_no_checkpoint_and_stands_by() {
    let mut c = HaCluster::start(2, "2 s");
    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), Some(THROTTLE)));
    c.wait_for_checkpoint(&job, 2);
    signal(&c.jms[0].0, "STOP");
    c.wait_for_leader(1);
    // The standby recovered the job and checkpoints it; only then does the old leader
    // wake up, with checkpoint acknowledgements and worker reports still queued for it.
    let recovered = c.info(&job).and_then(|i| i["last_checkpoint"].as_u64());
    c.wait_for_checkpoint(&job, recovered.unwrap_or(0) + 1);
    let completed = |log: &str| log.matches("checkpoint complete").count();
    let before = completed(&c.jms[0].0.log());
    signal(&c.jms[0].0, "CONT");
    // It learns that its session expired, drops what it served and stands by again.
    let log = wait_until("the old leader to stand by again", WAIT, || {
        let log = c.jms[0].0.log();
        (log.matches("JobManager candidate").count() >= 2).then_some(log)
    });
    assert!(log.contains("lost its ZooKeeper session"), "{log}");
    assert!(c.jms[0].0.child.try_wait().unwrap().is_none(), "{log}");
    assert_eq!(completed(&log), before, "{log}");
    c.assert_exact(&job, &out);
}

#[test]
fn a_job_acknowledged_just_before_the_leader_dies_runs_on_the_next_leader() {
    let mut c = HaCluster::start(2, "2 s");
    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), Some(THROTTLE)));
    c.jms[0].0.kill9();
    c.wait_for_leader(1);
    c.assert_exact(&job, &out);
}

#[test]
fn the_leader_killed_twice_in_a_row_loses_nothing() {
    let mut c = HaCluster::start(3, "2 s");
    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), Some(THROTTLE)));
    let first = c.wait_for_checkpoint(&job, 2);
    c.jms[0].0.kill9();
    c.wait_for_leader(1);
    c.wait_for_checkpoint(&job, first + 1);
    c.jms[1].0.kill9();
    c.wait_for_leader(2);
    c.assert_exact(&job, &out);
}

#[test]
fn zookeeper_killed_and_restarted_mid_run_loses_nothing() {
    // Sessions outlive the restart (ZooKeeper restores them from its data directory).
    let c = HaCluster::start(2, "10 s");
    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), Some(THROTTLE)));
    c.wait_for_checkpoint(&job, 2);
    c.zk.pause();
    c.zk.resume();
    c.assert_exact(&job, &out);
}

#[test]
fn a_storage_dir_that_is_not_writable_fails_the_jobmanager_naming_it() {
    let zk = ZooKeeper::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let defines = [
        "high-availability.type=zookeeper".to_string(),
        format!("high-availability.zookeeper.quorum={}", zk.quorum),
        format!("high-availability.storageDir=file://{}", file.display()),
    ];
    let refs: Vec<&str> = defines.iter().map(String::as_str).collect();
    let (mut jm, _) = spawn_jobmanager(dir.path(), "jobmanager", &refs);
    let status = wait_until("the jobmanager to exit", WAIT, || {
        jm.child.try_wait().unwrap()
    });
    let stderr = jm.log();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("high-availability.storageDir") && stderr.contains("not-a-dir"),
        "{stderr}"
    );
}
