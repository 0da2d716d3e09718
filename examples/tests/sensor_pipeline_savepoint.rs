//! Savepoints end to end: the real `sensor_pipeline` binary stops with a savepoint midway
//! at parallelism 2 and a second run resumes from it at parallelism 3 (rescaled); together
//! they write exactly the window results, alerts and top ten of one uninterrupted run;
//! with RocksDB, savepoints also move between the two state backends.

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
    let (first, partial) = run_generator(&dir, "resumed", "2", &stop_args("20000", &savepoints));
    first.assert_success();
    let savepoint = savepoint_of(&first);
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
    assert_uninterrupted(&got, &want);

    // A savepoint that does not exist is an error naming it.
    let missing = dir.path().join("no-such-savepoint");
    let out = run(
        &bin(),
        &["--records", "10", "--from-savepoint", &s(&missing)],
    );
    out.assert_failure()
        .assert_stderr_contains("no-such-savepoint");
}

/// The savepoint line of a run that stopped with one.
fn savepoint_of(out: &Outcome) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("savepoint: "))
        .unwrap_or_else(|| panic!("no savepoint line: {}", out.stdout))
        .to_string()
}

#[cfg(feature = "rocksdb")]
#[test]
fn savepoints_move_between_backends_while_rescaling_2_3_1_and_the_output_is_the_uninterrupted_one()
{
    let dir = TempDir::new().unwrap();
    let (clean, want) = run_generator(&dir, "clean", "2", &[]);
    clean.assert_success();
    let savepoints = dir.path().join("savepoints");
    // Slower than the other test: the RocksDB run's checkpoints take longer, and the stop
    // must come well before its sources run dry.
    let stop = |n: &str| {
        let mut args = stop_args(n, &savepoints);
        args[1] = "10000".into();
        args
    };
    // Memory at parallelism 2, stopped after 15,000 readings.
    let (first, _) = run_generator(&dir, "moved", "2", &stop("15000"));
    first.assert_success();
    // RocksDB at parallelism 3 from there, stopped after 20,000 more.
    let mut args = stop("20000");
    args.extend(["--from-savepoint".into(), savepoint_of(&first)]);
    args.extend(["--state-backend".into(), "rocksdb".into()]);
    let (second, partial) = run_generator(&dir, "moved", "3", &args);
    second.assert_success();
    assert!(
        partial[0].len() < want[0].len(),
        "the second run stopped midway"
    );
    // Memory at parallelism 1 to the end.
    let (third, got) = run_generator(
        &dir,
        "moved",
        "1",
        &["--from-savepoint".into(), savepoint_of(&second)],
    );
    third.assert_success();
    assert_uninterrupted(&got, &want);
}

/// Throttled so it runs long enough, the arguments that stop the run with a savepoint
/// into `savepoints` after `n` readings.
fn stop_args(n: &str, savepoints: &Path) -> Vec<String> {
    vec![
        "--throttle-records-per-sec".into(),
        "40000".into(),
        "--stop-with-savepoint-after-records".into(),
        n.into(),
        "--savepoint-dir".into(),
        s(savepoints),
    ]
}

/// Every output has exactly the lines of the uninterrupted run.
fn assert_uninterrupted(got: &[Vec<String>; 3], want: &[Vec<String>; 3]) {
    for (kind, (g, w)) in ["windows", "alerts", "top ten"]
        .iter()
        .zip(got.iter().zip(want))
    {
        assert_eq!(g.len(), w.len(), "{kind}: as many lines as one run");
        assert!(
            g == w,
            "{kind}: the lines differ from the uninterrupted run"
        );
    }
}
