//! Savepoints end to end: the real `sensor_pipeline` binary stops with a savepoint midway
//! at parallelism 2 and a second run resumes from it at parallelism 3 (rescaled); together
//! they write exactly the window results, alerts and top ten of one uninterrupted run.

mod common;

use common::{example_bin, part_lines, run, Outcome};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

fn bin() -> PathBuf {
    example_bin("sensor_pipeline")
}

fn s(p: &Path) -> String {
    p.to_str().expect("temp paths are UTF-8").to_string()
}

/// Runs the generator mode with outputs under `dir/<tag>-*`; returns the outcome and the
/// sorted lines of the windows, alerts and top-ten outputs.
fn run_generator(
    dir: &TempDir,
    tag: &str,
    parallelism: &str,
    extra: &[String],
) -> (Outcome, [Vec<String>; 3]) {
    let out = |kind: &str| dir.path().join(format!("{tag}-{kind}"));
    let mut args: Vec<String> = [
        "--records",
        "60000",
        "--parallelism",
        parallelism,
        "--output",
        &s(&out("windows")),
        "--alerts-output",
        &s(&out("alerts")),
        "--top-output",
        &s(&out("top")),
        "--checkpoint-interval-ms",
        "100",
        "--checkpoint-dir",
        &format!("file://{}", s(&dir.path().join("checkpoints"))),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend_from_slice(extra);
    let outcome = run(&bin(), &args);
    let lines = ["windows", "alerts", "top"].map(|k| {
        let mut l = if out(k).exists() {
            part_lines(&out(k))
        } else {
            Vec::new()
        };
        l.sort();
        l
    });
    (outcome, lines)
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

#[test]
fn bad_savepoint_arguments_are_rejected_naming_the_flag() {
    for (args, needle) in [
        (
            vec!["--stop-with-savepoint-after-records", "10"],
            "--checkpoint-interval-ms",
        ),
        (
            vec!["--savepoint-dir", "/tmp/x"],
            "--stop-with-savepoint-after-records",
        ),
        (vec!["--allow-non-restored-state"], "--from-savepoint"),
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
