//! The `weir` binary as a user runs it.

use std::process::Command;

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

#[test]
fn run_exits_with_the_status_of_the_job_program() {
    let ok = weir().args(["run", "/bin/true"]).status().unwrap();
    assert_eq!(ok.code(), Some(0));
    let failed = weir().args(["run", "/bin/false"]).status().unwrap();
    assert_eq!(failed.code(), Some(1));
}

#[test]
fn run_passes_arguments_after_the_double_dash() {
    let out = weir()
        .args(["run", "/bin/echo", "--", "--input", "x.csv"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "--input x.csv");
}

#[test]
fn run_of_a_missing_program_names_it() {
    let out = weir().args(["run", "/no/such/job"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/job"), "{err}");
}

#[test]
fn run_hands_job_keys_to_the_program() {
    let out = weir()
        .args(["-D", "parallelism.default=3", "run", "/usr/bin/env"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l == r#"WEIR_JOB_PROPERTIES={"parallelism.default":"3"}"#),
        "{text}"
    );
    let out = weir()
        .args([
            "-D",
            "execution.checkpointing.interval=now",
            "run",
            "/usr/bin/env",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "execution.checkpointing.interval = 'now' (from -D execution.checkpointing.interval)"
        ),
        "{err}"
    );
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    let out = weir().args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = weir()
        .args(["run", "--parallelism", "0", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--parallelism"));
    let out = weir().args(["frobnicate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
