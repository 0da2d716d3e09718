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
    assert_eq!(out.status.code(), Some(2), "a bad -D is a bad argument");
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

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_arguments_exit_2_with_one_clear_message() {
    let o = weir()
        .args(["taskmanager", "--slots", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("--slots").count(), 1, "{}", stderr(&o));
    let o = weir().args(["info", "not-a-job"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("'not-a-job' is not a job id"),
        "{}",
        stderr(&o)
    );
    let o = weir()
        .args(["run", "--detached", "/bin/true"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--detached needs --jobmanager"),
        "{}",
        stderr(&o)
    );
    let o = weir()
        .args(["-D", "no.such.key=1", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown configuration key 'no.such.key' in -D no.such.key"));
    let o = weir()
        .args(["-D", "taskmanager.numberOfTaskSlots=many", "taskmanager"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // A job key the CLI's own verbs use is accepted by -D like any other.
    let o = weir()
        .args([
            "-D",
            "state.savepoints.dir=/tmp/sp",
            "savepoint",
            "00000000000000ff",
        ])
        .args(["--jobmanager", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot reach the JobManager"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_unreachable_jobmanager_is_named_once_and_a_taskmanager_gives_up_after_its_registration_timeout(
) {
    let o = weir()
        .args(["list", "--jobmanager", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).matches("Connection refused").count(),
        1,
        "{}",
        stderr(&o)
    );
    let o = weir()
        .args(["-D", "taskmanager.registration.timeout=1 s", "taskmanager"])
        .args(["--jobmanager", "127.0.0.1:1"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: taskmanager: no JobManager at 127.0.0.1:1 took the registration within 1000 ms (taskmanager.registration.timeout)"),
        "{err}"
    );
    assert_eq!(last.matches("Connection refused").count(), 1, "{last}");
    assert!(
        err.matches("retrying").count() >= 2,
        "it retried with backoff: {err}"
    );
}
