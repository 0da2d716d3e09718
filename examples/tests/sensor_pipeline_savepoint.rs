//! Savepoints end to end: the real `sensor_pipeline` binary stops with a savepoint midway
//! at parallelism 2 and a second run resumes from it at parallelism 3 (rescaled); together
//! they write exactly the window results, alerts and top ten of one uninterrupted run.

mod common;

use common::{example_bin, run, run_sensor_outputs, Outcome};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn bin() -> PathBuf {
    example_bin("sensor_pipeline")
}

fn s(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_string()
}

/// Runs the generator mode (60,000 readings, checkpoints every 100 ms) at `parallelism`
/// with outputs under `dir/<tag>-*`.
fn run_generator(
    dir: &TempDir,
    tag: &str,
    parallelism: &str,
    extra: &[String],
) -> (Outcome, [Vec<String>; 3]) {
    let checkpoints = format!("file://{}", s(&dir.path().join("checkpoints")));
    let args = [
        "--records",
        "60000",
        "--parallelism",
        parallelism,
        "--checkpoint-interval-ms",
        "100",
        "--checkpoint-dir",
        &checkpoints,
    ];
    run_sensor_outputs(&bin(), dir.path(), tag, &args, extra)
}

#[test]
fn stopping_with_a_savepoint_and_resuming_at_another_parallelism_writes_the_uninterrupted_output() {
    let dir = TempDir::new().unwrap();
    let (clean, want) = run_generator(&dir, "clean", "2", &[]);
    clean.assert_success();
    assert!(want.iter().all(|l| !l.is_empty()), "every output written");

    let savepoints = dir.path().join("savepoints");
    let (first, partial) = run_generator(
        &dir,
        "resumed",
        "2",
        &[
            "--throttle-records-per-sec".into(),
            "40000".into(),
            "--stop-with-savepoint-after-records".into(),
            "20000".into(),
            "--savepoint-dir".into(),
            s(&savepoints),
        ],
    );
    first.assert_success();
    let savepoint = first
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("savepoint: "))
        .unwrap_or_else(|| panic!("no savepoint line: {}", first.stdout))
        .to_string();
    assert!(
        savepoint.starts_with(&format!("file://{}/savepoint-", s(&savepoints))),
        "{savepoint}"
    );
    assert!(
        partial[0].len() < want[0].len(),
        "the first run stopped midway"
    );

    let (second, got) = run_generator(
        &dir,
        "resumed",
        "3",
        &["--from-savepoint".into(), savepoint.clone()],
    );
    second.assert_success();
    for (kind, (g, w)) in ["windows", "alerts", "top ten"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        assert_eq!(g.len(), w.len(), "{kind}: as many lines as one run");
        assert!(
            g == w,
            "{kind}: the lines differ from the uninterrupted run"
        );
    }

    // A savepoint that does not exist is an error naming it.
    let missing = dir.path().join("no-such-savepoint");
    let out = run(
        &bin(),
        &["--records", "10", "--from-savepoint", &s(&missing)],
    );
    out.assert_failure()
        .assert_stderr_contains("no-such-savepoint");
}
