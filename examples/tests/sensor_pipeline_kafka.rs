//! The sensor pipeline's Kafka mode against a real broker: readings produced into a topic
//! of four partitions, windows and alerts written to topics. With checkpoints every 200 ms,
//! five seeded failures and one failure between a checkpoint's completion and its commit
//! (`--fail-before-commit`), a `read_committed` consumer of the output topics reads exactly
//! the lines of the failure-free run, once each, and a `read_uncommitted` one sees more:
//! the records of the transaction that the restore aborted and committed anew.

#![cfg(feature = "kafka")]

mod common;
#[path = "../../connectors/tests/common/mod.rs"]
mod kafka_broker;

use common::{example_bin, run};
use kafka_broker::{broker, create_topic, read_all};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn pipeline(extra: &[&str]) -> common::Outcome {
    let brokers = broker().bootstrap.clone();
    let mut args = vec![
        "--kafka-brokers",
        brokers.as_str(),
        "--input-topic",
        "readings",
        "--parallelism",
        "2",
    ];
    args.extend_from_slice(extra);
    run(&example_bin("sensor_pipeline"), &args)
}

#[test]
fn seeded_failures_leave_the_failure_free_output_once_for_read_committed_and_aborted_duplicates_for_read_uncommitted(
) {
    for (topic, partitions) in [
        ("readings", 4),
        ("clean-windows", 2),
        ("clean-alerts", 2),
        ("eo-windows", 2),
        ("eo-alerts", 2),
    ] {
        create_topic(topic, partitions);
    }
    pipeline(&["--produce-readings", "40000"]).assert_success();
    pipeline(&[
        "--output-topic",
        "clean-windows",
        "--alerts-topic",
        "clean-alerts",
    ])
    .assert_success();
    let dir = tempfile::tempdir().unwrap();
    let checkpoints = format!("file://{}", dir.path().display());
    pipeline(&[
        "--output-topic",
        "eo-windows",
        "--alerts-topic",
        "eo-alerts",
        "--checkpoint-interval-ms",
        "200",
        "--checkpoint-dir",
        &checkpoints,
        "--fail-randomly",
        "7:5",
        "--fail-before-commit",
        "--records",
        "40000",
        "--throttle-records-per-sec",
        "20000",
    ])
    .assert_success();
    let clean_windows = sorted(read_all("clean-windows", "read_committed"));
    let clean_alerts = sorted(read_all("clean-alerts", "read_committed"));
    assert!(!clean_windows.is_empty() && !clean_alerts.is_empty());
    let windows = sorted(read_all("eo-windows", "read_committed"));
    let alerts = sorted(read_all("eo-alerts", "read_committed"));
    assert_eq!(
        windows.len(),
        clean_windows.len(),
        "window results once each"
    );
    assert!(
        windows == clean_windows,
        "the window results differ from the failure-free run"
    );
    assert_eq!(alerts.len(), clean_alerts.len(), "alerts once each");
    assert!(
        alerts == clean_alerts,
        "the alerts differ from the failure-free run"
    );
    let uncommitted = read_all("eo-windows", "read_uncommitted").len()
        + read_all("eo-alerts", "read_uncommitted").len();
    assert!(
        uncommitted > windows.len() + alerts.len(),
        "read_uncommitted sees the aborted duplicates too: {uncommitted}"
    );
}

#[test]
fn kafka_arguments_without_a_topic_or_with_a_second_input_are_refused() {
    let bin = example_bin("sensor_pipeline");
    run(&bin, &["--kafka-brokers", "127.0.0.1:1"])
        .assert_failure()
        .assert_stderr_contains("--kafka-brokers needs --input-topic");
    run(
        &bin,
        &[
            "--kafka-brokers",
            "127.0.0.1:1",
            "--input-topic",
            "t",
            "--input",
            "x.csv",
        ],
    )
    .assert_failure()
    .assert_stderr_contains("give one");
}

#[test]
fn fail_before_commit_without_checkpoints_or_a_kafka_output_is_refused() {
    let bin = example_bin("sensor_pipeline");
    let kafka = ["--kafka-brokers", "127.0.0.1:1", "--input-topic", "t"];
    let mut no_output = kafka.to_vec();
    no_output.extend(["--checkpoint-interval-ms", "100", "--fail-before-commit"]);
    let mut no_checkpoints = kafka.to_vec();
    no_checkpoints.extend(["--output-topic", "o", "--fail-before-commit"]);
    for args in [no_output, no_checkpoints] {
        run(&bin, &args)
            .assert_failure()
            .assert_stderr_contains("--fail-before-commit needs --checkpoint-interval-ms");
    }
}
