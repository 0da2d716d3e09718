//! Kafka exactly-once on the standalone cluster: the `sensor_pipeline` example reads its
//! readings from a topic and writes window results and alerts to topics with
//! transactions, while a TaskManager is killed with SIGKILL once the job has checkpointed.
//! A `read_committed` consumer then reads exactly the lines of the failure-free run, and a
//! `read_uncommitted` one also sees the aborted transactions' records. The broker is a
//! real one that this test binary starts (`scripts/kafka.sh`).

mod common;
#[path = "../../connectors/tests/common/mod.rs"]
mod kafka_broker;

use common::{output_within, sensor_pipeline, Cluster, COMMAND_TIMEOUT};
use kafka_broker::{broker, create_topic, read_all};
use std::process::Command;

/// Readings in the input topic; with two workers throttled to 2,000 readings a second
/// each, the job runs about ten seconds.
const READINGS: &str = "40000";

/// The job's arguments: readings from `readings`, outputs to `<tag>-windows` and
/// `<tag>-alerts`, checkpoints every 200 ms into `ck`.
fn job_args(c: &Cluster, tag: &str, throttle: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "--kafka-brokers",
        &broker().bootstrap,
        "--input-topic",
        "readings",
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

#[test]
fn a_taskmanager_killed_mid_run_leaves_exactly_the_failure_free_lines_in_the_committed_topics() {
    create_topic("readings", 4);
    for tag in ["reference", "failing"] {
        create_topic(&format!("{tag}-windows"), 2);
        create_topic(&format!("{tag}-alerts"), 2);
    }
    let mut fill = Command::new(sensor_pipeline());
    fill.args([
        "--kafka-brokers",
        &broker().bootstrap,
        "--input-topic",
        "readings",
    ])
    .args(["--produce-readings", READINGS, "--parallelism", "2"]);
    let out = output_within(fill, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    c.add_taskmanager(2);
    let reference = c.submit(&job_args(&c, "reference", false));
    let end = c.wait_for_end(&reference);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    let (want_windows, want_alerts) = committed("reference");
    assert!(!want_windows.is_empty() && !want_alerts.is_empty());

    let job = c.submit(&job_args(&c, "failing", true));
    c.wait_for_checkpoint(&job);
    c.tms[0].kill9();
    c.add_taskmanager(2);
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(end["restarts"].as_u64().unwrap() >= 1, "{end}");
    let (windows, alerts) = committed("failing");
    assert_eq!(
        windows.len(),
        want_windows.len(),
        "window results once each"
    );
    assert!(
        windows == want_windows,
        "window results differ from the failure-free run"
    );
    assert_eq!(alerts.len(), want_alerts.len(), "alerts once each");
    assert!(
        alerts == want_alerts,
        "alerts differ from the failure-free run"
    );
    let uncommitted = read_all("failing-alerts", "read_uncommitted").len();
    assert!(
        uncommitted > alerts.len(),
        "the killed run's open transactions are aborted, not lost: {uncommitted}"
    );
}
