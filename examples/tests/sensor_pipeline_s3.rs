//! The sensor pipeline with its checkpoints and window results on S3 (a real
//! S3-compatible server that checks signatures, started by `scripts/s3.sh`): with only the
//! AWS variables the script prints, `--checkpoint-dir s3://weir/...` and `--output
//! s3://weir/...` take exactly-once checkpoints through five seeded failures and the output
//! equals the failure-free run; a savepoint on S3 restores after the server restarted;
//! wrong credentials and a missing bucket fail the run naming the URL but never the secret.

mod common;
#[path = "../../runtime/tests/s3/mod.rs"]
mod s3;

use common::{
    assert_same_outputs, example_bin, part_lines, run_sensor_outputs, run_sensor_outputs_with_env,
    spawn_command, JOB_TIMEOUT,
};
use std::process::Command;
use tempfile::TempDir;

const ARGS: [&str; 4] = ["--records", "100000", "--parallelism", "2"];

#[test]
fn five_seeded_failures_with_checkpoints_and_windows_on_s3_leave_the_output_of_the_failure_free_run(
) {
    let server = s3::server();
    let dir = TempDir::new().unwrap();
    let bin = example_bin("sensor_pipeline");
    let (clean, want) = run_sensor_outputs(&bin, dir.path(), "clean", &ARGS, &[]);
    clean.assert_success();
    assert!(
        want.iter().all(|l| !l.is_empty()),
        "the clean run wrote every output"
    );

    // Windows and checkpoints on S3 (with only the AWS variables), alerts and the top ten
    // in local directories.
    let local = |kind: &str| dir.path().join(format!("s3-{kind}"));
    let mut cmd = Command::new(&bin);
    cmd.args(ARGS)
        .args(["--checkpoint-interval-ms", "100"])
        .args(["--checkpoint-dir", "s3://weir/exactly-once/checkpoints"])
        .args(["--output", "s3://weir/exactly-once/windows"])
        .arg("--alerts-output")
        .arg(local("alerts"))
        .arg("--top-output")
        .arg(local("top"))
        .args([
            "--fail-randomly",
            "11:5",
            "--throttle-records-per-sec",
            "50000",
        ])
        .envs(server.env());
    let failing = spawn_command(cmd).finish(JOB_TIMEOUT);
    failing.assert_success().assert_failures_injected(5);
    let stored = server.list("exactly-once/checkpoints");
    assert!(
        stored
            .iter()
            .any(|k| k.contains("/chk-") && k.ends_with("/_metadata")),
        "a completed checkpoint is on S3: {stored:?}"
    );
    let sorted = |kind: &str| {
        let mut l = part_lines(&local(kind));
        l.sort();
        l
    };
    let open: Vec<String> = server
        .list("exactly-once/windows")
        .into_iter()
        .filter(|k| k.ends_with(".upload"))
        .collect();
    assert!(
        open.is_empty(),
        "every upload completed or aborted: {open:?}"
    );
    let got = [
        server.part_lines("exactly-once/windows"),
        sorted("alerts"),
        sorted("top"),
    ];
    assert_same_outputs(&got, &want, "failure-free");
}

#[test]
fn a_savepoint_on_s3_restores_after_the_server_restarts_and_the_output_is_the_uninterrupted_one() {
    // A server of this test's own: the restart would cut off the other tests' requests.
    let server = s3::start_own();
    let dir = TempDir::new().unwrap();
    let bin = example_bin("sensor_pipeline");
    // The first run asks for its savepoint after 20 000 readings, at 40 000 a second; the
    // savepoint's barrier cuts the input wherever the sources are by then. 200 000 readings
    // leave the resumed run more than its fail point's 10 000 even if that takes 4 s.
    let base = ["--records", "200000", "--parallelism", "2"];
    let (clean, want) = run_sensor_outputs(&bin, dir.path(), "clean", &base, &[]);
    clean.assert_success();
    let with = |extra: &[&str]| -> Vec<String> {
        [
            "--checkpoint-interval-ms",
            "100",
            "--checkpoint-dir",
            "s3://weir/restart/checkpoints",
            "--throttle-records-per-sec",
            "40000",
        ]
        .iter()
        .chain(extra)
        .map(|a| a.to_string())
        .collect()
    };
    let stop = with(&[
        "--stop-with-savepoint-after-records",
        "20000",
        "--savepoint-dir",
        "s3://weir/restart/savepoints",
    ]);
    let run = |extra: &[String], parallelism: &str| {
        let mut args = base;
        args[3] = parallelism;
        run_sensor_outputs_with_env(&bin, dir.path(), "resumed", &args, extra, &server.env())
    };
    let (first, partial) = run(&stop, "2");
    first.assert_success();
    let savepoint = first
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("savepoint: "))
        .unwrap_or_else(|| panic!("no savepoint line: {}", first.stdout))
        .to_string();
    assert!(
        savepoint.starts_with("s3://weir/restart/savepoints/savepoint-"),
        "{savepoint}"
    );
    assert!(
        partial[0].len() < want[0].len(),
        "the first run stopped midway"
    );

    // A new server process on the same address, with the objects copied over: the
    // savepoint, and then the second run's checkpoints (one restored after a failure),
    // are read from it.
    server.command("restart");
    let (second, got) = run(
        &with(&[
            "--from-savepoint",
            &savepoint,
            "--fail-after-records",
            "10000",
        ]),
        "3",
    );
    second.assert_success();
    assert!(
        second.stderr.contains("injected failure at reading"),
        "{}",
        second.stderr
    );
    assert_same_outputs(&got, &want, "uninterrupted");
}

/// Runs the pipeline with checkpoints to `url` and the S3 settings `defines` (`-D`), no
/// AWS variables; returns its standard output and error.
fn run_refused(url: &str, defines: &[String]) -> (String, String) {
    let mut cmd = Command::new(example_bin("sensor_pipeline"));
    cmd.args(["--records", "1000", "--checkpoint-interval-ms", "100"])
        .args(["--checkpoint-dir", url]);
    for d in defines {
        cmd.args(["-D", d]);
    }
    for (k, _) in s3::server().env() {
        cmd.env_remove(k);
    }
    let out = spawn_command(cmd).finish(JOB_TIMEOUT);
    out.assert_failure();
    (out.stdout, out.stderr)
}

fn defines(secret: &str) -> Vec<String> {
    let s = s3::server();
    vec![
        format!("s3.endpoint={}", s.endpoint),
        format!("s3.access-key={}", s.access_key),
        format!("s3.secret-key={secret}"),
        "s3.path.style.access=true".into(),
    ]
}

#[test]
fn wrong_credentials_fail_the_run_naming_the_url_but_not_the_secret() {
    let wrong = "wrong-secret-0123456789";
    let (stdout, stderr) = run_refused("s3://weir/refused", &defines(wrong));
    assert!(stderr.contains("s3://weir/refused"), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert!(!text.contains(wrong), "the secret leaked: {text}");
    }
}

#[test]
fn a_missing_bucket_fails_the_run_naming_the_url_and_the_bucket() {
    let secret = s3::server().secret_key.clone();
    let (stdout, stderr) = run_refused("s3://no-such-bucket/ck", &defines(&secret));
    assert!(stderr.contains("s3://no-such-bucket/ck"), "{stderr}");
    assert!(
        stderr.contains("bucket 'no-such-bucket' does not exist"),
        "{stderr}"
    );
    for text in [&stdout, &stderr] {
        assert!(!text.contains(&secret), "the secret leaked: {text}");
    }
}
