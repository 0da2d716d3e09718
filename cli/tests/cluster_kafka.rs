//! Kafka exactly-once on the standalone cluster: the `sensor_pipeline` example reads its
//! readings from a topic and writes window results and alerts to topics with
//! transactions, while a TaskManager is killed with SIGKILL once the job has checkpointed.
//! A `read_committed` consumer then reads exactly the lines of the failure-free run (and a
//! `read_uncommitted` one at least as many). The broker is a
//! real one that this test binary starts (`scripts/kafka.sh`). A worker frozen with
//! SIGSTOP is found lost by its missing heartbeats, its job restarts, and the worker,
//! thawed, commits nothing more.

mod common;
#[path = "../../connectors/tests/common/mod.rs"]
mod kafka_broker;

use common::{output_within, sensor_pipeline, wait_until, worker_pid, Cluster, COMMAND_TIMEOUT};
use kafka_broker::{broker, create_topic, read_all};
use std::process::Command;

/// Readings in the input topic; with two workers throttled to 2,000 readings a second
/// each, the job runs about ten seconds.
const READINGS: &str = "40000";

/// The job's arguments: readings from `input`, outputs to `<tag>-windows` and
/// `<tag>-alerts`, checkpoints every 200 ms into `ck`.
fn job_args(c: &Cluster, input: &str, tag: &str, throttle: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "--kafka-brokers",
        &broker().bootstrap,
        "--input-topic",
        input,
        "--output-topic",
        &format!("{tag}-windows"),
        "--alerts-topic",
        &format!("{tag}-alerts"),
        "--parallelism",
        "2",
        "--records",
        READINGS,
        "--checkpoint-interval-ms",
        "200",
        "--checkpoint-dir",
        &format!("file://{}", c.path(&format!("{tag}-ck")).display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if throttle {
        a.extend(["--throttle-records-per-sec".to_string(), "2000".to_string()]);
    }
    a
}

fn committed(tag: &str) -> (Vec<String>, Vec<String>) {
    let mut w = read_all(&format!("{tag}-windows"), "read_committed");
    let mut a = read_all(&format!("{tag}-alerts"), "read_committed");
    w.sort();
    a.sort();
    (w, a)
}

/// Fills `input` with the readings and creates the output topics of `tags`.
fn topics(input: &str, tags: &[&str]) {
    create_topic(input, 4);
    for tag in tags {
        create_topic(&format!("{tag}-windows"), 2);
        create_topic(&format!("{tag}-alerts"), 2);
    }
    let mut fill = Command::new(sensor_pipeline());
    fill.args([
        "--kafka-brokers",
        &broker().bootstrap,
        "--input-topic",
        input,
    ])
    .args(["--produce-readings", READINGS, "--parallelism", "2"]);
    let out = output_within(fill, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the job without failures into `tag` and returns its committed lines.
fn reference(c: &Cluster, input: &str, tag: &str) -> (Vec<String>, Vec<String>) {
    let job = c.submit(&job_args(c, input, tag, false));
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    let lines = committed(tag);
    assert!(!lines.0.is_empty() && !lines.1.is_empty());
    lines
}

/// Waits for `job` to finish after a failure and checks its committed lines against
/// `want`.
fn assert_exactly(c: &Cluster, job: &str, tag: &str, want: &(Vec<String>, Vec<String>)) {
    let end = c.wait_for_end(job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(end["restarts"].as_u64().unwrap() >= 1, "{end}");
    let (windows, alerts) = committed(tag);
    assert_eq!(windows.len(), want.0.len(), "window results once each");
    assert!(
        windows == want.0,
        "window results differ from the failure-free run"
    );
    assert_eq!(alerts.len(), want.1.len(), "alerts once each");
    assert!(alerts == want.1, "alerts differ from the failure-free run");
    let uncommitted = read_all(&format!("{tag}-alerts"), "read_uncommitted").len();
    assert!(
        uncommitted >= alerts.len(),
        "read_uncommitted sees at least the committed alerts: {uncommitted}"
    );
}

#[test]
fn a_taskmanager_killed_mid_run_leaves_exactly_the_failure_free_lines_in_the_committed_topics() {
    topics("readings-kill", &["kill-reference", "killed"]);
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    c.add_taskmanager(2);
    let want = reference(&c, "readings-kill", "kill-reference");
    let job = c.submit(&job_args(&c, "readings-kill", "killed", true));
    c.wait_for_checkpoint(&job);
    c.tms[0].kill9();
    c.add_taskmanager(2);
    assert_exactly(&c, &job, "killed", &want);
}

#[test]
fn a_frozen_worker_is_found_lost_and_once_thawed_commits_nothing_beside_its_successor() {
    topics("readings-frozen", &["frozen-reference", "frozen"]);
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    c.add_taskmanager(2);
    let want = reference(&c, "readings-frozen", "frozen-reference");
    let job = c.submit(&job_args(&c, "readings-frozen", "frozen", true));
    c.wait_for_checkpoint(&job);
    let pid = wait_until(
        "the job's worker",
        std::time::Duration::from_secs(10),
        || c.tms.iter().find_map(|t| worker_pid(&t.log(), &job)),
    );
    let signal = |sig: &str| {
        let mut kill = Command::new("kill");
        kill.args([sig, &pid.to_string()]);
        assert!(output_within(kill, COMMAND_TIMEOUT).status.success());
    };
    signal("-STOP");
    // Its heartbeats stop: after heartbeat.timeout the worker is lost and the job restarts.
    wait_until(
        "the job to restart",
        std::time::Duration::from_secs(120),
        || (c.info(&job)["restarts"].as_u64().unwrap_or(0) >= 1).then_some(()),
    );
    signal("-CONT");
    assert_exactly(&c, &job, "frozen", &want);
}
