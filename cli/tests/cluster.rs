//! The standalone cluster as separate processes: a `weir jobmanager`, `weir taskmanager`s
//! and the job workers they start, on loopback ports, driven through the `weir` CLI.
//!
//! The job is the `sensor_pipeline` example (built by `cargo test --workspace`, which
//! builds every example) with exactly-once checkpoints and its transactional file sink.
//! Failures are injected at points the tests observe (a completed checkpoint), never at a
//! time: a TaskManager or a worker is killed with SIGKILL once the job has checkpointed,
//! and the job is throttled so that it runs for many seconds after that point. Every wait
//! is bounded; every process is killed when its test ends.

mod common;

use common::{
    output_lines, output_within, sensor_args as job_args, sensor_pipeline, wait_until, weir_bin,
    worker_pid, Cluster, COMMAND_TIMEOUT,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

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
fn job_keys_given_to_weir_run_configure_the_job_on_the_cluster() {
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    let out = c.path("out");
    let ck = format!("state.checkpoints.dir=file://{}", c.path("ck").display());
    let args: Vec<String> = ["--records", "20000", "--parallelism", "2"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--output".into(), out.display().to_string()])
        .chain(["--throttle-records-per-sec".into(), "2000".into()])
        .collect();
    // The program turns no checkpointing on: the keys given to `weir run` do, in the plan
    // and in both workers.
    let job = c.submit_configured(&["execution.checkpointing.interval=200 ms", &ck], &args);
    c.wait_for_checkpoint(&job);
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(!output_lines(&out).is_empty());
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
    // A checkpoint on request, and the job's plan.
    let taken = c.json(&["checkpoint", &job]);
    let location = taken["checkpoint"].as_str().expect("a location");
    assert!(location.contains(&format!("{job}/chk-")), "{taken}");
    let info = c.json(&["info", &job]);
    let nodes = info["plan"]["nodes"].as_array().expect("a plan");
    assert!(nodes.len() >= 2 && info["status"] == "RUNNING", "{info}");
    let table = c.weir(&["info", &job]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("VERTEX") && text.contains("(HASH)"), "{text}");

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

    // A drained stop fires the open windows: their partial results are not among the
    // complete run's (a stop without draining emits only complete windows, above).
    let drained_out = c.path("out4");
    let drained = c.submit(&job_args(
        &drained_out,
        &c.path("ck4"),
        RECORDS,
        Some(THROTTLE),
    ));
    c.wait_for_checkpoint(&drained);
    let sp = c.path("drained");
    let stop = c.json(&[
        "stop",
        &drained,
        "--drain",
        "--savepoint-dir",
        sp.to_str().unwrap(),
    ]);
    assert!(stop["savepoint"].is_string(), "{stop}");
    assert_eq!(c.wait_for_end(&drained)["status"], "FINISHED");
    let lines = output_lines(&drained_out);
    assert!(
        lines.len() < expected.len(),
        "the job stopped before its end"
    );
    assert!(
        lines.iter().any(|l| !expected.contains(l)),
        "the final watermark fired the open windows"
    );
    let table = c.weir(&["list"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("JOB ID"), "{text}");
    assert!(
        text.contains(&doomed) && text.contains("CANCELLED"),
        "{text}"
    );
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

#[test]
fn worker_output_names_its_job_and_worker_and_json_logs_stay_json() {
    let mut c = Cluster::start(&[]);
    let mut tm = Command::new(weir_bin());
    tm.args(["--log-format", "json"]).env("RUST_LOG", "info");
    c.add_taskmanager_with(2, tm);
    let job = c.submit(&job_args(&c.path("out"), &c.path("ck"), 4_000, None));
    assert_eq!(c.wait_for_end(&job)["status"], "FINISHED", "{}", c.logs());
    let log = c.tms[0].log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let own = lines
        .iter()
        .find(|l| l["fields"]["message"] == "job worker started")
        .expect("the TaskManager's own events");
    assert_eq!(own["fields"]["job_id"], job.as_str(), "{own}");
    let workers: Vec<_> = lines
        .iter()
        .filter(|l| l["job_id"] == job.as_str())
        .collect();
    assert!(
        !workers.is_empty(),
        "the worker's lines are labelled: {log}"
    );
    assert!(
        workers
            .iter()
            .all(|l| l["worker"].as_str().is_some_and(|w| w.contains('.'))),
        "{log}"
    );
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_requests_get_clear_errors_and_leave_a_running_job_alone() {
    let mut c = Cluster::start(&["jobmanager.artifacts.max-size=2000000000"]);
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
    assert_eq!(o.status.code(), Some(2), "a malformed id is a bad argument");
    assert!(stderr(&o).contains("is not a job id"), "{}", stderr(&o));
    let v = c.json(&["info", "00000000000000ff"]);
    assert!(v["error"].as_str().unwrap().contains("unknown job"), "{v}");
    // The REST port given as the control port.
    let mut cmd = Command::new(weir_bin());
    cmd.args(["list", "--jobmanager", &c.rest]);
    let o = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("answers HTTP, as the JobManager's REST port (rest.address) does"),
        "{}",
        stderr(&o)
    );
    // A reader that closes the pipe early (`weir list | head -1`) is no failure.
    let mut cmd = Command::new(weir_bin());
    cmd.args(["list", "--jobmanager", &c.rpc])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    let status = wait_until("weir list to end", COMMAND_TIMEOUT, || {
        child.try_wait().unwrap()
    });
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // --running lists the job that runs.
    let running = c.json(&["list", "--running"]);
    assert!(
        running["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["job_id"] == job.as_str()),
        "{running}"
    );
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
    assert!(stderr(&o).contains("cluster.secret"), "{}", stderr(&o));
    // Nor one whose REST API is reachable from other hosts.
    let mut cmd = Command::new(weir_bin());
    cmd.args(["jobmanager", "--rest-address", "0.0.0.0:0"]);
    let rest = output_within(cmd, COMMAND_TIMEOUT);
    assert_eq!(rest.status.code(), Some(1));
    assert!(
        stderr(&rest).contains("cluster.secret"),
        "{}",
        stderr(&rest)
    );
    // The REST API asks for the secret as a bearer token, and never echoes it.
    let (status, body) = c.rest_as("/overview", None);
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let (status, body) = c.rest_as("/jobs", Some("wrong"));
    assert_eq!(status, 401, "{body}");
    assert!(
        !body.contains("s3cret") && !body.contains("wrong"),
        "{body}"
    );
    let (status, body) = c.rest_as("/no/such/route", None);
    assert_eq!(status, 401, "unknown routes too: {body}");
    assert_eq!(c.rest("/overview")["taskmanagers"], 2);
}

#[test]
fn a_job_waits_for_slots_until_a_taskmanager_offers_them_and_an_attached_run_says_so() {
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
    // An attached run of a second job shows its status as it changes.
    let log = c.path("attached.log");
    let mut attached = Command::new(weir_bin());
    attached
        .args(["run", "--jobmanager", &c.rpc])
        .arg(sensor_pipeline())
        .arg("--")
        .args(job_args(&c.path("out2"), &c.path("ck2"), 20_000, None))
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut attached = common::Proc {
        child: attached.spawn().unwrap(),
        log: log.clone(),
    };
    wait_until(
        "the attached run to report waiting",
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains(": WAITING_FOR_SLOTS: ").then_some(())
        },
    );
    c.add_taskmanager(2);
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    let status = wait_until("the attached run to end", Duration::from_secs(240), || {
        attached.child.try_wait().unwrap()
    });
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(0), "{text}");
    assert!(text.contains(": FINISHED"), "{text}");
}

#[test]
fn a_taskmanager_whose_jobmanager_stops_answering_stops_its_workers_and_registers_again() {
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
    wait_until("the taskmanager to notice", Duration::from_secs(60), || {
        c.tms[0]
            .log()
            .contains("answered no heartbeat")
            .then_some(())
    });
    wait_until("the worker to exit", Duration::from_secs(30), || {
        (!Path::new(&format!("/proc/{worker}")).exists()
            || std::fs::read_to_string(format!("/proc/{worker}/stat"))
                .is_ok_and(|s| s.contains(") Z ")))
        .then_some(())
    });
    assert!(
        c.tms[0].child.try_wait().unwrap().is_none(),
        "it keeps trying"
    );
    let mut resume = Command::new("kill");
    resume.args(["-CONT", &c.jm.child.id().to_string()]);
    let _ = output_within(resume, COMMAND_TIMEOUT);
    // Back: the TaskManager registers again and the job restarts on it and finishes.
    wait_until("a second registration", Duration::from_secs(60), || {
        (c.tms[0].log().matches("taskmanager registered").count() >= 2).then_some(())
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let end = loop {
        let i = c.info(&job);
        if i["status"] == "FINISHED" || std::time::Instant::now() > deadline {
            break i;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
}
