//! The processes of a standalone cluster on loopback, as the benchmark binaries run them:
//! `weir jobmanager`s (their addresses read from the first line they print), one-slot
//! `weir taskmanager`s, and the REST calls that watch a job.
//!
//! Invariants: every process is killed and reaped when its [`Proc`] drops, and every wait
//! is bounded ([`wait_for`]).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Proc {
    /// Kills the process (`kill -9`) and reaps it.
    pub fn kill9(&mut self) -> Result<()> {
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sends `signal` (`STOP`, `CONT`, `KILL`) to process `pid` with `kill`.
pub fn signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status()
        .context("cannot run kill")?;
    if !status.success() {
        bail!("kill -{signal} {pid} failed ({status})");
    }
    Ok(())
}

/// The binary `name` beside the running one.
pub fn beside_me(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe()?;
    Ok(me.parent().context("the binary's directory")?.join(name))
}

/// GETs `path` from the REST API at `rest` and parses the JSON body.
pub fn rest_get(rest: &str, path: &str) -> Result<serde_json::Value> {
    let mut s = TcpStream::connect(rest)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {rest}\r\n\r\n")?;
    let mut r = String::new();
    s.read_to_string(&mut r)?;
    let body = r.split("\r\n\r\n").nth(1).unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

/// The REST API's view of `job`.
pub fn job_info(rest: &str, job: &str) -> Result<serde_json::Value> {
    rest_get(rest, &format!("/jobs/{job}"))
}

/// Bytes in the files of `dir` (hidden in-progress files included).
pub fn bytes_in(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Calls `f` every 2 ms until it returns a value, for at most `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A JobManager process and the banners it printed (one each time it started serving;
/// with high availability, each time it led anew).
pub struct JobManager {
    /// The process.
    pub proc: Proc,
    lines: Receiver<String>,
    /// The RPC and REST addresses of its latest banner.
    latest: Option<(String, String)>,
}

impl JobManager {
    /// Waits up to `timeout` for its next banner (it leads); returns its RPC and REST
    /// addresses.
    pub fn leads(&mut self, timeout: Duration) -> Result<(String, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .context("the jobmanager did not lead")?;
            if let Some(addresses) = self.read(&line) {
                return Ok(addresses);
            }
        }
    }

    /// The addresses of the latest banner it printed (`None` before the first).
    pub fn addresses(&mut self) -> Option<(String, String)> {
        while let Ok(line) = self.lines.try_recv() {
            self.read(&line);
        }
        self.latest.clone()
    }

    /// Takes the addresses of `line` if it is a banner (other lines are ignored).
    fn read(&mut self, line: &str) -> Option<(String, String)> {
        let (rpc, rest) = weir_jobmanager::cluster::banner::parse(line)?;
        self.latest = Some((rpc.to_string(), rest.to_string()));
        self.latest.clone()
    }
}

/// Starts a `weir jobmanager` on free loopback ports with `defines`; its log goes to
/// `dir/<name>.log`.
pub fn start_jobmanager(
    weir: &Path,
    defines: &[String],
    dir: &Path,
    name: &str,
) -> Result<JobManager> {
    let mut cmd = Command::new(weir);
    cmd.args([
        "jobmanager",
        "--rpc-address",
        "127.0.0.1:0",
        "--rest-address",
        "127.0.0.1:0",
    ])
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(dir.join(format!("{name}.log")))?);
    for d in defines {
        cmd.args(["-D", d]);
    }
    let mut child = cmd.spawn().context("cannot start a jobmanager")?;
    let stdout = child.stdout.take().context("jobmanager stdout")?;
    let (tx, lines) = std::sync::mpsc::channel();
    // Reads every line until the process ends: a pipe closed after the first banner would
    // leave the next one nowhere to go.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Ok(JobManager {
        proc: Proc(child),
        lines,
        latest: None,
    })
}

/// Starts the `n`-th one-slot `weir taskmanager` with `defines` (which find its
/// JobManager), with its own artifact cache; its log goes to `dir/taskmanager-<n>.log`.
pub fn start_taskmanager(weir: &Path, defines: &[String], dir: &Path, n: usize) -> Result<Proc> {
    let mut cmd = Command::new(weir);
    cmd.args(["taskmanager", "--slots", "1"])
        .arg("-D")
        .arg(format!(
            "taskmanager.artifacts.cache-dir={}",
            dir.join(format!("cache-{n}")).display()
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(
            dir.join(format!("taskmanager-{n}.log")),
        )?);
    for d in defines {
        cmd.args(["-D", d]);
    }
    Ok(Proc(cmd.spawn().context("cannot start a taskmanager")?))
}
