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
    rest_get_as(rest, path, None)
}

/// [`rest_get`] with `token` (the cluster secret) as the bearer token, if any.
pub fn rest_get_as(rest: &str, path: &str, token: Option<&str>) -> Result<serde_json::Value> {
    let get = || -> Result<serde_json::Value> {
        let mut s = TcpStream::connect(rest)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(s, "GET {path} HTTP/1.0\r\nHost: {rest}\r\n{auth}\r\n")?;
        let mut r = String::new();
        s.read_to_string(&mut r)?;
        let body = r.split("\r\n\r\n").nth(1).unwrap_or_default();
        Ok(serde_json::from_str(body)?)
    };
    get().with_context(|| format!("GET http://{rest}{path}"))
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
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> Result<T> {
    wait_every(what, timeout, Duration::from_millis(2), f)
}

/// Calls `f` every `interval` until it returns a value, for at most `timeout`.
pub fn wait_every<T>(
    what: &str,
    timeout: Duration,
    interval: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(interval);
    }
}

/// Runs `cmd` to its end with its output captured, killing it after `timeout`.
pub fn output_within(mut cmd: Command, timeout: Duration) -> Result<std::process::Output> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    // Readers drain both pipes meanwhile, so a full pipe cannot stall the command.
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let out = pipe(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let err = pipe(
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    );
    let status = wait_every(&what, timeout, Duration::from_millis(20), || {
        child.try_wait().ok().flatten()
    });
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A JobManager process and the banners it printed (one each time it started serving;
/// with high availability, each time it led anew).
pub struct JobManager {
    /// The process.
    pub proc: Proc,
    /// Its name (its log is `<name>.log`).
    name: String,
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
                .with_context(|| format!("{} did not lead (see {0}.log)", self.name))?;
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
    start_jobmanager_as(Command::new(weir), "127.0.0.1", defines, dir, name)
}

/// [`start_jobmanager`] run as `cmd` (the `weir` binary, possibly under
/// `ip netns exec NS`), serving on free ports of `host`.
pub fn start_jobmanager_as(
    mut cmd: Command,
    host: &str,
    defines: &[String],
    dir: &Path,
    name: &str,
) -> Result<JobManager> {
    let any_port = format!("{host}:0");
    cmd.args(["jobmanager", "--rpc-address", &any_port])
        .args(["--rest-address", &any_port])
        .stdout(Stdio::piped())
        .stderr(log_file(dir, name)?);
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
        name: name.to_string(),
        lines,
        latest: None,
    })
}

/// Starts the `n`-th one-slot `weir taskmanager` with `defines` (which find its
/// JobManager), with its own artifact cache; its log goes to `dir/taskmanager-<n>.log`.
pub fn start_taskmanager(weir: &Path, defines: &[String], dir: &Path, n: usize) -> Result<Proc> {
    start_taskmanager_as(Command::new(weir), defines, dir, n)
}

/// [`start_taskmanager`] run as `cmd` (the `weir` binary, possibly under
/// `ip netns exec NS`).
pub fn start_taskmanager_as(
    mut cmd: Command,
    defines: &[String],
    dir: &Path,
    n: usize,
) -> Result<Proc> {
    cmd.args(["taskmanager", "--slots", "1"])
        .arg("-D")
        .arg(format!(
            "taskmanager.artifacts.cache-dir={}",
            dir.join(format!("cache-{n}")).display()
        ))
        .stdout(Stdio::null())
        .stderr(log_file(dir, &format!("taskmanager-{n}"))?);
    for d in defines {
        cmd.args(["-D", d]);
    }
    Ok(Proc(cmd.spawn().context("cannot start a taskmanager")?))
}

/// Creates `dir/<name>.log`.
fn log_file(dir: &Path, name: &str) -> Result<std::fs::File> {
    let path = dir.join(format!("{name}.log"));
    std::fs::File::create(&path).with_context(|| format!("cannot create {}", path.display()))
}
