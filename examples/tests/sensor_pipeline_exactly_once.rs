//! Exactly-once through failures: the real `sensor_pipeline` binary, on the embedded
//! cluster with two TaskManagers, checkpointing every 100 ms with five seeded failures,
//! writes exactly the window results, alerts and top ten of the failure-free run (every
//! line sorted and compared), with either state backend, and rejects bad checkpoint,
//! savepoint and fail-point arguments.

mod common;

use common::{assert_same_outputs, example_bin, run, run_sensor_outputs, Outcome};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn bin() -> PathBuf {
    example_bin("sensor_pipeline")
}

fn s(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_string()
}

/// Runs the generator mode (100,000 readings, parallelism 2) with outputs under
/// `dir/<tag>-*`.
fn run_generator(dir: &TempDir, tag: &str, extra: &[String]) -> (Outcome, [Vec<String>; 3]) {
    let args = ["--records", "100000", "--parallelism", "2"];
    run_sensor_outputs(&bin(), dir.path(), tag, &args, extra)
}

#[test]
fn five_seeded_failures_with_checkpoints_every_100_ms_leave_the_output_of_the_failure_free_run() {
    five_seeded_failures_leave_the_failure_free_output("memory");
}

#[cfg(feature = "rocksdb")]
#[test]
fn five_seeded_failures_with_the_rocksdb_backend_leave_the_output_of_the_failure_free_run() {
    five_seeded_failures_leave_the_failure_free_output("rocksdb");
}

/// The failure-free run with the memory backend, against the failing run with `backend`.
fn five_seeded_failures_leave_the_failure_free_output(backend: &str) {
    let dir = TempDir::new().unwrap();
    let (clean, want) = run_generator(&dir, "clean", &[]);
    clean.assert_success();
    assert!(
        want.iter().all(|l| !l.is_empty()),
        "the clean run wrote every output"
    );
    let checkpoints = format!("file://{}", s(&dir.path().join("checkpoints")));
    let (failing, got) = run_generator(
        &dir,
        "failing",
        &[
            "--checkpoint-interval-ms".into(),
            "100".into(),
            "--checkpoint-dir".into(),
            checkpoints,
            "--fail-randomly".into(),
            "7:5".into(),
            "--throttle-records-per-sec".into(),
            "50000".into(),
            "--state-backend".into(),
            backend.into(),
        ],
    );
    failing.assert_success();
    let injected = failing
        .stderr
        .matches("injected failure at reading")
        .count();
    assert!(injected >= 5, "five fail points fired: {}", failing.stderr);
    assert_same_outputs(&got, &want, "failure-free");
    // The summary counts are exactly-once too.
    assert_eq!(
        failing
            .stdout
            .lines()
            .find(|l| l.starts_with("window results")),
        clean
            .stdout
            .lines()
            .find(|l| l.starts_with("window results"))
    );
}

#[test]
fn bad_checkpoint_savepoint_and_fail_point_arguments_are_rejected_naming_the_flag() {
    for (args, needle) in [
        (
            vec!["--checkpoint-interval-ms", "0"],
            "--checkpoint-interval-ms",
        ),
        (
            vec!["--checkpoint-dir", "file:///tmp/x"],
            "--checkpoint-interval-ms",
        ),
        (vec!["--fail-randomly", "7"], "SEED:COUNT"),
        (
            vec!["--stop-with-savepoint-after-records", "10"],
            "--checkpoint-interval-ms",
        ),
        (
            vec!["--savepoint-dir", "/tmp/x"],
            "--stop-with-savepoint-after-records",
        ),
        (vec!["--allow-non-restored-state"], "--from-savepoint"),
        (
            vec!["--throttle-records-per-sec", "0"],
            "--throttle-records-per-sec",
        ),
        (
            vec![
                "--checkpoint-interval-ms",
                "100",
                "--checkpoint-dir",
                "s3://b/x",
            ],
            "s3://b/x",
        ),
    ] {
        let out = run(&bin(), &args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(
            out.stderr.contains(needle),
            "{args:?}: stderr does not name {needle}: {}",
            out.stderr
        );
    }
}
