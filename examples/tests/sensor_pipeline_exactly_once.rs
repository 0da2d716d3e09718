//! Exactly-once through failures: the real `sensor_pipeline` binary, on the embedded
//! cluster with two TaskManagers, checkpointing every 100 ms with five seeded failures,
//! writes exactly the window results, alerts and top ten of the failure-free run (every
//! line sorted and compared), with either state backend, and rejects bad checkpoint,
//! savepoint and fail-point arguments.

mod common;

use common::{
    assert_same_outputs, example_bin, run, run_sensor_outputs, run_sensor_outputs_with_env, Outcome,
};
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
    run_sensor_outputs(&bin(), dir.path(), tag, &GENERATOR, extra)
}

/// The generator mode's arguments: 100,000 readings, parallelism 2.
const GENERATOR: [&str; 4] = ["--records", "100000", "--parallelism", "2"];

#[test]
fn five_seeded_failures_with_checkpoints_every_100_ms_leave_the_output_of_the_failure_free_run() {
    five_seeded_failures_leave_the_failure_free_output("memory");
}

#[cfg(feature = "rocksdb")]
#[test]
fn five_seeded_failures_with_the_rocksdb_backend_leave_the_output_of_the_failure_free_run() {
    five_seeded_failures_leave_the_failure_free_output("rocksdb");
}

#[cfg(feature = "rocksdb")]
#[test]
fn five_seeded_failures_with_full_rocksdb_checkpoints_leave_the_output_of_the_failure_free_run() {
    // Full checkpoints are streamed from a checkpoint of the database as it is uploaded.
    let full = [("WEIR_STATE_BACKEND_INCREMENTAL".into(), "false".into())];
    five_seeded_failures_leave_the_failure_free_output_with("rocksdb", &full);
}

/// Whether a `shared` directory below `dir` holds a file.
fn has_shared_files(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().any(|e| {
        let path = e.unwrap().path();
        if !path.is_dir() {
            return false;
        }
        let shared = path.file_name().is_some_and(|n| n == "shared");
        (shared && std::fs::read_dir(&path).unwrap().next().is_some()) || has_shared_files(&path)
    })
}

/// The failure-free run with the memory backend, against the failing run with `backend`.
fn five_seeded_failures_leave_the_failure_free_output(backend: &str) {
    five_seeded_failures_leave_the_failure_free_output_with(backend, &[]);
}

/// As [`five_seeded_failures_leave_the_failure_free_output`], the failing run with the
/// environment variables `env`.
fn five_seeded_failures_leave_the_failure_free_output_with(
    backend: &str,
    env: &[(String, String)],
) {
    let dir = TempDir::new().unwrap();
    let (clean, want) = run_generator(&dir, "clean", &[]);
    clean.assert_success();
    assert!(
        want.iter().all(|l| !l.is_empty()),
        "the clean run wrote every output"
    );
    let checkpoints = format!("file://{}", s(&dir.path().join("checkpoints")));
    let args: Vec<String> = vec![
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
    ];
    let (failing, got) =
        run_sensor_outputs_with_env(&bin(), dir.path(), "failing", &GENERATOR, &args, env);
    failing.assert_success().assert_failures_injected(5);
    assert_same_outputs(&got, &want, "failure-free");
    // Incremental RocksDB checkpoints share files; full ones and the memory backend's
    // hold all their state in their own files.
    let incremental = backend == "rocksdb" && env.is_empty();
    let checkpoints = dir.path().join("checkpoints");
    assert_eq!(
        has_shared_files(&checkpoints),
        incremental,
        "{checkpoints:?}"
    );
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
            vec!["--sink-throttle-records-per-sec", "0"],
            "--sink-throttle-records-per-sec",
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
