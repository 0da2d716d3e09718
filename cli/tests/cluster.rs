//! The standalone cluster as separate processes: a `weir jobmanager`, `weir taskmanager`s
//! and the job workers they start, on loopback ports, driven through the `weir` CLI.
//!
//! The job is the `sensor_pipeline` example (built by `cargo test --workspace`, which
//! builds every example) with exactly-once checkpoints and its transactional file sink.
//! Failures are injected at points the tests observe (a completed checkpoint), never at a
//! time: a TaskManager or a worker is killed with SIGKILL once the job has checkpointed,
//! and the job is throttled so that it runs for many seconds after that point. Every wait
//! is bounded; every process is killed when its test ends.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

fn sensor_pipeline() -> PathBuf {
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
struct Proc {
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

struct Cluster {
    dir: tempfile::TempDir,
    rpc: String,
    rest: String,
    jm: Proc,
    tms: Vec<Proc>,
    defines: Vec<String>,
}

/// Runs `cmd` to its end, killing it (and failing the test) if it takes over `timeout`.
fn output_within(mut cmd: Command, timeout: Duration) -> Output {
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
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

fn wait_until<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Cluster {
    /// Starts a JobManager with `defines` (`key=value`) on free loopback ports.
    fn start(defines: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("jobmanager.log");
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
            dir.path().join("artifacts").display()
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
        let jm = Proc { child, log };
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a TaskManager with `slots` and waits until the JobManager knows it.
    fn add_taskmanager(&mut self, slots: u32) {
        let before = self.taskmanager_ids();
        let n = self.tms.len();
        let log = self.path(&format!("taskmanager-{n}.log"));
        let mut cmd = Command::new(weir_bin());
        cmd.args(["taskmanager", "--jobmanager", &self.rpc, "--slots"])
            .arg(slots.to_string())
            .arg("-D")
            .arg(format!(
                "taskmanager.artifacts.cache-dir={}",
                self.path(&format!("cache-{n}")).display()
            ))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for d in &self.defines {
            cmd.args(["-D", d]);
        }
        self.tms.push(Proc {
            child: cmd.spawn().unwrap(),
            log,
        });
        wait_until(
            "the taskmanager to register",
            Duration::from_secs(30),
            || {
                let now = self.taskmanager_ids();
                now.iter().any(|id| !before.contains(id)).then_some(())
            },
        );
    }

    /// GET on the REST API.
    fn rest(&self, path: &str) -> Value {
        let mut s = TcpStream::connect(&self.rest).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(s, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", self.rest).unwrap();
        let mut response = String::new();
        s.read_to_string(&mut response).unwrap();
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }

    fn taskmanager_ids(&self) -> Vec<u64> {
        self.rest("/taskmanagers")["taskmanagers"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_u64())
            .collect()
    }

    /// Runs a `weir` verb against this cluster.
    fn weir(&self, args: &[&str]) -> Output {
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
    fn json(&self, args: &[&str]) -> Value {
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
    fn submit(&self, args: &[String]) -> String {
        let program = sensor_pipeline();
        let mut a = vec![
            "run".to_string(),
            "--jobmanager".into(),
            self.rpc.clone(),
            "--detached".into(),
            "--output".into(),
            "json".into(),
            program.display().to_string(),
            "--".into(),
        ];
        a.extend(args.iter().cloned());
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = self.weir(&refs);
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("submit: {e}: {}", String::from_utf8_lossy(&out.stderr)));
        v["job_id"].as_str().expect("a job id").to_string()
    }

    fn info(&self, job: &str) -> Value {
        self.json(&["info", job])
    }

    /// Waits until `job` has completed a checkpoint.
    fn wait_for_checkpoint(&self, job: &str) {
        wait_until("a completed checkpoint", Duration::from_secs(120), || {
            let i = self.info(job);
            assert_ne!(i["status"], "FAILED", "{i}");
            i["last_checkpoint"].as_u64().filter(|c| *c >= 1)
        });
    }

    /// Waits until `job` ended and returns its summary.
    fn wait_for_end(&self, job: &str) -> Value {
        wait_until("the job to end", Duration::from_secs(240), || {
            let i = self.info(job);
            matches!(
                i["status"].as_str(),
                Some("FINISHED" | "FAILED" | "CANCELLED")
            )
            .then_some(i)
        })
    }

    fn logs(&self) -> String {
        let mut s = format!("--- jobmanager\n{}", self.jm.log());
        for (i, t) in self.tms.iter().enumerate() {
            s += &format!("--- taskmanager {i}\n{}", t.log());
        }
        s
    }
}

/// The sensor job's arguments writing to `out` with checkpoints in `ck`.
fn job_args(out: &Path, ck: &Path, records: u64, throttle: Option<u64>) -> Vec<String> {
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
fn output_lines(dir: &Path) -> Vec<String> {
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

const RECORDS: u64 = 40_000;
/// Per worker process: with two workers the job runs about ten seconds.
const THROTTLE: u64 = 2_000;

/// Runs the job without failures to `name` and returns its output.
fn reference(c: &Cluster, name: &str) -> Vec<String> {
    let out = c.path(name);
    let id = c.submit(&job_args(
        &out,
        &c.path(&format!("{name}-ck")),
        RECORDS,
        None,
    ));
    let end = c.wait_for_end(&id);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    let lines = output_lines(&out);
    assert!(!lines.is_empty());
    lines
}

#[test]
fn a_taskmanager_killed_mid_run_fails_over_and_the_output_equals_the_failure_free_run() {
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    c.add_taskmanager(2);
    let expected = reference(&c, "reference");

    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), RECORDS, Some(THROTTLE)));
    c.wait_for_checkpoint(&job);
    let placed = c.info(&job);
    assert_eq!(
        placed["taskmanagers"].as_array().unwrap().len(),
        2,
        "{placed}"
    );
    c.tms[0].kill9();
    c.add_taskmanager(2);
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(end["restarts"].as_u64().unwrap() >= 1, "{end}");
    assert_eq!(output_lines(&out), expected, "{}", c.logs());
}

#[test]
fn savepoint_stop_resume_and_cancel_work_from_the_cli() {
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(4);
    let expected = reference(&c, "reference");

    let out = c.path("out");
    let ck = c.path("ck");
    let job = c.submit(&job_args(&out, &ck, RECORDS, Some(THROTTLE)));
    c.wait_for_checkpoint(&job);
    let sp = c.json(&["savepoint", &job, c.path("savepoints").to_str().unwrap()]);
    let url = sp["savepoint"].as_str().expect("a savepoint URL");
    assert!(url.contains("savepoint-"), "{sp}");
    let listed = c.json(&["checkpoints", &job]);
    let first = &listed["checkpoints"][0];
    assert!(
        first["id"].as_u64().is_some() && first["size"].as_u64().unwrap() > 0,
        "{listed}"
    );
    assert!(first["duration_ms"].as_u64().is_some(), "{listed}");

    let stopped = c.json(&[
        "stop",
        &job,
        "--savepoint-dir",
        c.path("stopped").to_str().unwrap(),
    ]);
    let resume_from = stopped["savepoint"]
        .as_str()
        .expect("a savepoint URL")
        .to_string();
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}");
    assert!(
        output_lines(&out).len() < expected.len(),
        "the job stopped before its end"
    );

    // Resume, attached: `weir run` waits and exits 0 once the job finished.
    let program = sensor_pipeline();
    let mut args = vec![
        "run".to_string(),
        "--jobmanager".into(),
        c.rpc.clone(),
        "--from-savepoint".into(),
        resume_from,
        program.display().to_string(),
        "--".into(),
    ];
    args.extend(job_args(&out, &c.path("ck2"), RECORDS, None));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let resumed = c.weir(&refs);
    assert!(
        resumed.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&resumed.stderr),
        c.logs()
    );
    assert!(String::from_utf8_lossy(&resumed.stdout).contains("FINISHED"));
    assert_eq!(output_lines(&out), expected);

    let doomed = c.submit(&job_args(
        &c.path("out3"),
        &c.path("ck3"),
        RECORDS,
        Some(THROTTLE),
    ));
    let cancelled = c.weir(&["cancel", &doomed]);
    assert!(cancelled.status.success(), "{cancelled:?}");
    assert_eq!(c.wait_for_end(&doomed)["status"], "CANCELLED");
    let table = c.weir(&["list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("JOB ID"), "{text}");
    assert!(
        text.contains(&doomed) && text.contains("CANCELLED"),
        "{text}"
    );
}

/// The pid of the worker `taskmanager` started for `job`, from its log.
fn worker_pid(log: &str, job: &str) -> Option<u32> {
    log.lines()
        .rev()
        .filter(|l| l.contains("job worker started") && l.contains(job))
        .filter_map(|l| l.split("pid=").nth(1))
        .find_map(|p| p.split_whitespace().next()?.parse().ok())
}

#[test]
fn a_job_beside_one_whose_worker_crashes_keeps_running() {
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    c.add_taskmanager(2);
    let expected = reference(&c, "reference");

    let out_a = c.path("a");
    let a = c.submit(&job_args(&out_a, &c.path("ck-a"), RECORDS, Some(THROTTLE)));
    let b = c.submit(&job_args(
        &c.path("b"),
        &c.path("ck-b"),
        RECORDS,
        Some(THROTTLE),
    ));
    c.wait_for_checkpoint(&a);
    c.wait_for_checkpoint(&b);
    let pid = wait_until("job b's worker", Duration::from_secs(10), || {
        c.tms.iter().find_map(|t| worker_pid(&t.log(), &b))
    });
    let mut kill = Command::new("kill");
    kill.args(["-9", &pid.to_string()]);
    assert!(output_within(kill, COMMAND_TIMEOUT).status.success());

    let end_b = c.wait_for_end(&b);
    assert_eq!(end_b["status"], "FINISHED", "{end_b}\n{}", c.logs());
    assert!(end_b["restarts"].as_u64().unwrap() >= 1, "{end_b}");
    let end_a = c.wait_for_end(&a);
    assert_eq!(end_a["status"], "FINISHED", "{end_a}");
    assert_eq!(end_a["restarts"], 0, "job a never restarted: {end_a}");
    assert_eq!(output_lines(&out_a), expected);
    assert_eq!(output_lines(&c.path("b")), expected);
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_requests_get_clear_errors_and_leave_a_running_job_alone() {
    let mut c = Cluster::start(&["jobmanager.artifacts.max-size=400000000"]);
    c.add_taskmanager(2);
    let out = c.path("out");
    let job = c.submit(&job_args(&out, &c.path("ck"), 20_000, Some(THROTTLE)));
    c.wait_for_checkpoint(&job);

    // Unreachable JobManager.
    let mut cmd = Command::new(weir_bin());
    cmd.args(["list", "--jobmanager", "127.0.0.1:1"]);
    let o = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach the JobManager at 127.0.0.1:1"),
        "{}",
        stderr(&o)
    );
    // A program that is not a Weir job.
    let o = c.weir(&["run", "--jobmanager", &c.rpc, "/bin/true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a Weir job"), "{}", stderr(&o));
    // Unknown and malformed job ids.
    let o = c.weir(&["info", "00000000000000ff"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown job 00000000000000ff"),
        "{}",
        stderr(&o)
    );
    let o = c.weir(&["cancel", "not-a-job"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is not a job id"), "{}", stderr(&o));
    let v = c.json(&["info", "00000000000000ff"]);
    assert!(v["error"].as_str().unwrap().contains("unknown job"), "{v}");
    // A savepoint that does not exist.
    let program = sensor_pipeline();
    let o = c.weir(&[
        "run",
        "--jobmanager",
        &c.rpc,
        "--from-savepoint",
        "/no/such/savepoint",
        program.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/no/such/savepoint"), "{}", stderr(&o));
    // Garbage on the control port.
    let mut s = TcpStream::connect(&c.rpc).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\x13garbage")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    // A TaskManager of another protocol version: refused with a reason it can print.
    let mut s = TcpStream::connect(&c.rpc).unwrap();
    s.write_all(b"WRPC\x00\x63\x02\x00\x00").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.contains("protocol version 99"), "{reply}");

    // The cluster still answers, and the job was not disturbed.
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert_eq!(end["restarts"], 0, "{end}");
    assert!(
        c.jm.log().contains("control connection refused"),
        "refusals are logged"
    );

    // An artifact over the size limit.
    let small = Cluster::start(&["jobmanager.artifacts.max-size=1000"]);
    let o = small.weir(&["run", "--jobmanager", &small.rpc, program.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("jobmanager.artifacts.max-size"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_cluster_secret_is_required_of_every_connection() {
    let mut c = Cluster::start(&["cluster.secret=s3cret"]);
    // A TaskManager without the secret is refused and exits with the reason.
    let mut cmd = Command::new(weir_bin());
    cmd.args(["taskmanager", "--jobmanager", &c.rpc, "--slots", "1", "-D"])
        .arg(format!(
            "taskmanager.artifacts.cache-dir={}",
            c.path("refused-cache").display()
        ));
    let o = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("secret"), "{}", stderr(&o));
    let mut cmd = Command::new(weir_bin());
    cmd.args(["list", "--jobmanager", &c.rpc, "-D", "cluster.secret=wrong"]);
    let o = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("secret"), "{}", stderr(&o));
    // With it, requests work, and a job's workers exchange data presenting it.
    let ok = c.weir(&["list"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    c.add_taskmanager(1);
    c.add_taskmanager(1);
    let job = c.submit(&job_args(&c.path("out"), &c.path("ck"), 20_000, None));
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert_eq!(end["taskmanagers"].as_array().map(Vec::len), Some(0));
    assert!(!output_lines(&c.path("out")).is_empty());
    // A JobManager bound beyond loopback without a secret does not start.
    let mut cmd = Command::new(weir_bin());
    cmd.args(["jobmanager", "--rpc-address", "0.0.0.0:0"]);
    let o = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(1));
    // The REST API has no authentication: never beyond loopback, secret or not.
    let mut cmd = Command::new(weir_bin());
    cmd.args([
        "jobmanager",
        "--rest-address",
        "0.0.0.0:0",
        "-D",
        "cluster.secret=s",
    ]);
    let rest = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(rest.status.code(), Some(1));
    assert!(
        stderr(&rest).contains("no authentication"),
        "{}",
        stderr(&rest)
    );
    assert!(stderr(&o).contains("cluster.secret"), "{}", stderr(&o));
}

#[test]
fn a_job_waits_for_slots_until_a_taskmanager_offers_them() {
    let mut c = Cluster::start(&[]);
    let job = c.submit(&job_args(&c.path("out"), &c.path("ck"), 20_000, None));
    let waiting = wait_until("the waiting status", Duration::from_secs(30), || {
        let i = c.info(&job);
        i["message"].is_string().then_some(i)
    });
    assert_eq!(waiting["status"], "WAITING_FOR_SLOTS", "{waiting}");
    assert!(
        waiting["message"]
            .as_str()
            .unwrap()
            .contains("needs 2 slots"),
        "{waiting}"
    );
    c.add_taskmanager(2);
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
}

#[test]
fn a_taskmanager_whose_jobmanager_stops_answering_stops_its_workers_and_exits() {
    let mut c = Cluster::start(&["heartbeat.interval=100", "heartbeat.timeout=2000"]);
    c.add_taskmanager(2);
    let job = c.submit(&job_args(
        &c.path("out"),
        &c.path("ck"),
        RECORDS,
        Some(THROTTLE),
    ));
    c.wait_for_checkpoint(&job);
    let worker = wait_until("the job's worker", Duration::from_secs(10), || {
        worker_pid(&c.tms[0].log(), &job)
    });
    // Frozen, not dead: its connections stay open, only its answers stop.
    let mut stop = Command::new("kill");
    stop.args(["-STOP", &c.jm.child.id().to_string()]);
    assert!(output_within(stop, COMMAND_TIMEOUT).status.success());
    let status = wait_until("the taskmanager to exit", Duration::from_secs(60), || {
        c.tms[0].child.try_wait().unwrap()
    });
    assert_eq!(status.code(), Some(1));
    assert!(
        c.tms[0].log().contains("answered no heartbeat"),
        "{}",
        c.tms[0].log()
    );
    wait_until("the worker to exit", Duration::from_secs(30), || {
        (!Path::new(&format!("/proc/{worker}")).exists()
            || std::fs::read_to_string(format!("/proc/{worker}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    let mut resume = Command::new("kill");
    resume.args(["-CONT", &c.jm.child.id().to_string()]);
    let _ = output_within(resume, COMMAND_TIMEOUT);
}
