//! The standalone cluster harness of the CLI's process tests: a `weir jobmanager` and
//! `weir taskmanager`s on loopback ports, driven through the `weir` CLI and the REST API.
//! Every wait is bounded; every process is killed when its test ends.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

pub fn sensor_pipeline() -> PathBuf {
    let bin = Path::new(weir_bin());
    let p = bin
        .parent()
        .expect("target dir")
        .join("examples")
        .join("sensor_pipeline");
    assert!(
        p.is_file(),
        "{} is missing: build the examples (cargo test --workspace builds them)",
        p.display()
    );
    p
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub rpc: String,
    pub rest: String,
    pub jm: Proc,
    pub tms: Vec<Proc>,
    pub defines: Vec<String>,
}

/// Runs `cmd` to its end, killing it (and failing the test) if it takes over `timeout`.
pub fn output_within(mut cmd: Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The longest any `weir` command of these tests may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

pub fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Spawns `weir jobmanager` on free loopback ports with `defines`, its artifacts in
/// `dir/<name>-artifacts` and its stderr in `dir/<name>.log`; returns it and a receiver of
/// its first stdout line (the banner, printed once it serves).
pub fn spawn_jobmanager(
    dir: &Path,
    name: &str,
    defines: &[&str],
) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let log = dir.join(format!("{name}.log"));
    let mut cmd = Command::new(weir_bin());
    cmd.args([
        "jobmanager",
        "--rpc-address",
        "127.0.0.1:0",
        "--rest-address",
        "127.0.0.1:0",
    ])
    .arg("-D")
    .arg(format!(
        "jobmanager.artifacts.dir={}",
        dir.join(format!("{name}-artifacts")).display()
    ))
    .args(["-D", "heartbeat.timeout=10000"])
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&log).unwrap());
    for d in defines {
        cmd.args(["-D", d]);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    (Proc { child, log }, rx)
}

/// Spawns the `n`-th `weir taskmanager` with `slots` and `defines`, its artifact cache in
/// `dir/cache-<n>` and its stderr in `dir/taskmanager-<n>.log`.
pub fn spawn_taskmanager(dir: &Path, n: usize, slots: u32, defines: &[String]) -> Proc {
    spawn_taskmanager_with(dir, n, slots, defines, Command::new(weir_bin()))
}

/// [`spawn_taskmanager`] with `cmd` (`weir` with global options or environment set).
pub fn spawn_taskmanager_with(
    dir: &Path,
    n: usize,
    slots: u32,
    defines: &[String],
    mut cmd: Command,
) -> Proc {
    let log = dir.join(format!("taskmanager-{n}.log"));
    cmd.args(["taskmanager", "--slots"])
        .arg(slots.to_string())
        .arg("-D")
        .arg(format!(
            "taskmanager.artifacts.cache-dir={}",
            dir.join(format!("cache-{n}")).display()
        ))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for d in defines {
        cmd.args(["-D", d]);
    }
    Proc {
        child: cmd.spawn().unwrap(),
        log,
    }
}

/// The sensor job's arguments: `records` readings at parallelism 2 into `out`, with
/// checkpoints every 200 ms in `ck`, throttled per worker if asked.
pub fn sensor_args(out: &Path, ck: &Path, records: u64, throttle: Option<u64>) -> Vec<String> {
    let mut a = vec![
        "--records".to_string(),
        records.to_string(),
        "--parallelism".into(),
        "2".into(),
        "--output".into(),
        out.display().to_string(),
        "--checkpoint-interval-ms".into(),
        "200".into(),
        "--checkpoint-dir".into(),
        format!("file://{}", ck.display()),
    ];
    if let Some(t) = throttle {
        a.extend(["--throttle-records-per-sec".into(), t.to_string()]);
    }
    a
}

/// Every line of the published part files of `dir`, sorted.
pub fn output_lines(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    lines.sort();
    lines
}

impl Cluster {
    /// Starts a JobManager with `defines` (`key=value`) on free loopback ports.
    pub fn start(defines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (jm, rx) = spawn_jobmanager(dir.path(), "jobmanager", defines);
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("the jobmanager did not start: {}", jm.log()));
        let (rpc, rest) = weir_jobmanager::cluster::banner::parse(&line)
            .unwrap_or_else(|| panic!("unexpected first line {line:?}: {}", jm.log()));
        let (rpc, rest) = (rpc.to_string(), rest.to_string());
        let defines = defines
            .iter()
            .filter(|d| d.starts_with("cluster.secret"))
            .map(|d| d.to_string())
            .collect();
        Self {
            dir,
            rpc,
            rest,
            jm,
            tms: Vec::new(),
            defines,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a TaskManager with `slots` and waits until the JobManager knows it.
    pub fn add_taskmanager(&mut self, slots: u32) {
        self.add_taskmanager_with(slots, Command::new(weir_bin()));
    }

    /// Adds a TaskManager started by `cmd` (`weir` with global options or environment).
    pub fn add_taskmanager_with(&mut self, slots: u32, cmd: Command) {
        let before = self.taskmanager_ids();
        let n = self.tms.len();
        let mut defines = self.defines.clone();
        defines.push(format!("jobmanager.rpc.address={}", self.rpc));
        let tm = spawn_taskmanager_with(self.dir.path(), n, slots, &defines, cmd);
        self.tms.push(tm);
        wait_until(
            "the taskmanager to register",
            Duration::from_secs(30),
            || {
                let now = self.taskmanager_ids();
                now.iter().any(|id| !before.contains(id)).then_some(())
            },
        );
    }

    /// GET on the REST API (with the cluster secret as the bearer token, if any).
    pub fn rest(&self, path: &str) -> Value {
        let secret = self
            .defines
            .iter()
            .find_map(|d| d.strip_prefix("cluster.secret="));
        let (_, body) = self.rest_as(path, secret);
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// GET on the REST API with `token` as the bearer token: the status and body.
    pub fn rest_as(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut s = TcpStream::connect(&self.rest).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: {}\r\n{auth}\r\n",
            self.rest
        )
        .unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status: {response}"));
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        (status, body.to_string())
    }

    pub fn taskmanager_ids(&self) -> Vec<u64> {
        self.rest("/taskmanagers")["taskmanagers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_u64())
            .collect()
    }

    /// Runs a `weir` verb against this cluster.
    pub fn weir(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(weir_bin());
        // Global options go first: after a `run`'s `--` they would be the program's.
        for d in &self.defines {
            cmd.args(["-D", d]);
        }
        cmd.args(args);
        if args[0] != "run" {
            cmd.args(["--jobmanager", &self.rpc]);
        }
        output_within(cmd, COMMAND_TIMEOUT)
    }

    /// Runs a `weir` verb with `--output json` and returns its object.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec![args[0], "--output", "json"];
        a.extend(&args[1..]);
        let out = self.weir(&a);
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "weir {args:?}: {e}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Submits the sensor job detached and returns its id.
    pub fn submit(&self, args: &[String]) -> String {
        self.submit_configured(&[], args)
    }

    /// Submits the sensor job detached with `defines` (`-D key=value` of `weir run`) and
    /// returns its id.
    pub fn submit_configured(&self, defines: &[&str], args: &[String]) -> String {
        let program = sensor_pipeline();
        let mut a = vec!["run".to_string()];
        a.extend(defines.iter().flat_map(|d| ["-D".into(), d.to_string()]));
        a.extend([
            "--jobmanager".into(),
            self.rpc.clone(),
            "--detached".into(),
            "--output".into(),
            "json".into(),
            program.display().to_string(),
            "--".into(),
        ]);
        a.extend(args.iter().cloned());
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = self.weir(&refs);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("submit: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        match v["job_id"].as_str() {
            Some(id) => id.to_string(),
            None => panic!(
                "submit answered no job id: {v}\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                self.logs()
            ),
        }
    }

    pub fn info(&self, job: &str) -> Value {
        self.json(&["info", job])
    }

    /// Waits until `job` has completed a checkpoint.
    pub fn wait_for_checkpoint(&self, job: &str) {
        wait_until("a completed checkpoint", Duration::from_secs(120), || {
            let i = self.info(job);
            assert_ne!(i["status"], "FAILED", "{i}");
            i["last_checkpoint"].as_u64().filter(|c| *c >= 1)
        });
    }

    /// Waits until `job` ended and returns its summary.
    pub fn wait_for_end(&self, job: &str) -> Value {
        wait_until("the job to end", Duration::from_secs(240), || {
            let i = self.info(job);
            matches!(
                i["status"].as_str(),
                Some("FINISHED" | "FAILED" | "CANCELLED")
            )
            .then_some(i)
        })
    }

    pub fn logs(&self) -> String {
        let mut s = format!("--- jobmanager\n{}", self.jm.log());
        for (i, t) in self.tms.iter().enumerate() {
            s += &format!("--- taskmanager {i}\n{}", t.log());
        }
        s
    }
}

/// The pid of the worker `taskmanager` started for `job`, from its log.
pub fn worker_pid(log: &str, job: &str) -> Option<u32> {
    log.lines()
        .rev()
        .filter(|l| l.contains("job worker started") && l.contains(job))
        .filter_map(|l| l.split("pid=").nth(1))
        .find_map(|p| p.split_whitespace().next()?.parse().ok())
}
