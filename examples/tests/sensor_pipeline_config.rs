//! The sensor pipeline configured without recompiling: job keys from `-D` flags, from
//! `WEIR_*` variables and from a `weir.toml` in the working directory turn checkpointing on,
//! and a malformed or unknown key fails the job naming it and its source.

mod common;

use common::{example_bin, run, spawn_command, Outcome, JOB_TIMEOUT};
use std::process::Command;

/// A run long enough for checkpoints every 100 ms: 40 000 readings at 20 000 per second.
const SLOW: &[&str] = &["--records", "40000", "--throttle-records-per-sec", "20000"];

fn checkpoints_completed(o: &Outcome) -> u64 {
    o.assert_success();
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("checkpoints completed: "))
        .unwrap_or_else(|| panic!("no checkpoint count in the summary\n{o}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn job_keys_given_with_dash_d_turn_checkpointing_on() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = format!("-Dstate.checkpoints.dir=file://{}", tmp.path().display());
    let mut args: Vec<&str> = SLOW.to_vec();
    args.extend(["-D", "execution.checkpointing.interval=100 ms", &ck]);
    let out = run(&example_bin("sensor_pipeline"), &args);
    assert!(checkpoints_completed(&out) > 0, "{out}");
    let without = run(&example_bin("sensor_pipeline"), &["--records", "1000"]);
    assert_eq!(checkpoints_completed(&without), 0);
}

#[test]
fn weir_toml_in_the_working_directory_and_weir_variables_configure_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("weir.toml"),
        format!(
            "[execution.checkpointing]\ninterval = \"100 ms\"\n\
             [state.checkpoints]\ndir = \"file://{}/ck\"\n",
            tmp.path().display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(example_bin("sensor_pipeline"));
    cmd.args(SLOW).current_dir(tmp.path());
    let out = spawn_command(cmd).finish(JOB_TIMEOUT);
    assert!(checkpoints_completed(&out) > 0, "{out}");
    // A variable overrides the file: an interval that does not parse names the variable.
    let mut cmd = Command::new(example_bin("sensor_pipeline"));
    cmd.args(["--records", "1000"]).current_dir(tmp.path()).env(
        "WEIR_EXECUTION_CHECKPOINTING_INTERVAL",
        "every now and then",
    );
    let out = spawn_command(cmd).finish(JOB_TIMEOUT);
    out.assert_failure().assert_stderr_contains(
        "execution.checkpointing.interval = 'every now and then' (from WEIR_EXECUTION_CHECKPOINTING_INTERVAL)",
    );
}

#[test]
fn a_malformed_or_unknown_key_fails_naming_it_and_its_source() {
    let bin = example_bin("sensor_pipeline");
    run(&bin, &["-D", "execution.checkpointing.interval=soon"])
        .assert_failure()
        .assert_stderr_contains(
            "execution.checkpointing.interval = 'soon' (from -D execution.checkpointing.interval)",
        );
    run(&bin, &["-D", "execution.checkpointing.intervall=1 s"])
        .assert_failure()
        .assert_stderr_contains(
            "unknown configuration key 'execution.checkpointing.intervall' in -D execution.checkpointing.intervall",
        );
    run(&bin, &["-D", "execution.checkpointing.interval=1 s"])
        .assert_failure()
        .assert_stderr_contains("but state.checkpoints.dir is not");
}
