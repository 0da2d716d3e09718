//! Checkpoints under back-pressure: the real `sensor_pipeline` binary with its window
//! results' sinks throttled to a tenth of what the source produces. Aligned barriers wait
//! behind the queued results and the checkpoints time out; unaligned barriers overtake
//! them, the checkpoints store the data in flight and complete; with buffer debloating the
//! queues hold about a second of the sinks' pace and aligned checkpoints complete too. Each
//! run writes exactly the failure-free output, and so does a back-pressured run with
//! unaligned checkpoints and five seeded failures, whose restores put the data in flight
//! back. With an
//! aligned-checkpoint timeout the barriers start aligned and overtake once they waited:
//! checkpoints complete, and five seeded failures again leave the failure-free output.

mod common;

use common::{
    assert_same_outputs, example_bin, run_sensor_outputs, run_sensor_outputs_with_env, Outcome,
};
use tempfile::TempDir;

/// 2,000,000 readings at 400,000 per second: ten one-second windows of 10,000 results, four
/// windows per second of input, while the sinks take 2 × 2,000 results per second. Each
/// window fires once the next one starts (the readings of a subtask are in order).
const ARGS: [&str; 8] = [
    "--records",
    "2000000",
    "--parallelism",
    "2",
    "--throttle-records-per-sec",
    "400000",
    "--max-out-of-orderness-ms",
    "0",
];

/// Runs the back-pressured job with checkpoints every 500 ms (aborted after 10 s, failures
/// tolerated) and `settings` (`-D` values); returns the outcome and the outputs. The
/// results queued between the window task and its sinks (up to about 2 × 39,000 per
/// subtask) take the sinks far longer than the timeout.
fn back_pressured(dir: &TempDir, tag: &str, settings: &[&str]) -> (Outcome, [Vec<String>; 3]) {
    let checkpoints = format!("file://{}", dir.path().join(tag).display());
    let mut extra: Vec<String> = [
        "--checkpoint-interval-ms",
        "500",
        "--checkpoint-dir",
        &checkpoints,
        "--sink-throttle-records-per-sec",
        "2000",
        "-D",
        "execution.checkpointing.timeout=10s",
        "-D",
        "execution.checkpointing.tolerable-failed-checkpoints=1000",
        // Deep queues: 60 buffers of 32 KiB (about 650 results each) per channel.
        "-D",
        "taskmanager.network.memory.buffers-per-channel=20",
        "-D",
        "taskmanager.network.memory.floating-buffers-per-gate=40",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    with_settings(&mut extra, settings);
    run_sensor_outputs_with_env(
        &example_bin("sensor_pipeline"),
        dir.path(),
        tag,
        &ARGS,
        &extra,
        &task_log(),
    )
}

const UNALIGNED: &str = "execution.checkpointing.unaligned.enabled=true";

/// Appends each of `settings` (`key=value`) to `extra` as a `-D` setting.
fn with_settings(extra: &mut Vec<String>, settings: &[&str]) {
    for s in settings {
        extra.extend(["-D".to_string(), s.to_string()]);
    }
}

/// Logs the tasks' checkpoint decisions (which the tests read) and warnings.
fn task_log() -> [(String, String); 1] {
    [("RUST_LOG".into(), "warn,weir_runtime::task=info".into())]
}

/// The tests of this file run one at a time: each needs the machine's cores for its timing.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn timed_out(outcome: &Outcome) -> usize {
    outcome.stderr.matches("not complete within 10s").count()
}

#[test]
fn with_a_sink_at_a_tenth_of_the_rate_aligned_checkpoints_time_out_and_unaligned_or_debloated_ones_complete(
) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new().unwrap();
    let (clean, want) = run_sensor_outputs(
        &example_bin("sensor_pipeline"),
        dir.path(),
        "clean",
        &ARGS,
        &[],
    );
    clean.assert_success();

    let (aligned, got) = back_pressured(&dir, "aligned", &[]);
    aligned.assert_success();
    assert_same_outputs(&got, &want, "failure-free (aligned)");
    let (unaligned, got) = back_pressured(&dir, "unaligned", &[UNALIGNED]);
    unaligned.assert_success();
    assert_same_outputs(&got, &want, "failure-free (unaligned)");
    let debloat = "taskmanager.network.memory.buffer-debloat.enabled=true";
    let (debloated, got) = back_pressured(&dir, "debloated", &[debloat]);
    debloated.assert_success();
    assert_same_outputs(&got, &want, "failure-free (aligned, debloated)");

    // Aligned barriers wait behind the queued results for longer than the timeout; the
    // unaligned ones overtake them (the first checkpoints, before the queues fill, and
    // the last ones complete either way; a window firing into full buffers can hold an
    // unaligned barrier back for a few seconds).
    let (a, u) = (completed(&aligned), completed(&unaligned));
    assert!(
        timed_out(&aligned) >= 2 && a <= 4,
        "aligned: {a} completed, {} timed out: {}",
        timed_out(&aligned),
        aligned.stderr
    );
    assert!(
        u >= 10 && u >= 3 * a,
        "unaligned: {u} completed against {a} aligned: {}",
        unaligned.stderr
    );
    // Debloated buffers hold about a second of what the sinks take: aligned barriers wait
    // that long behind them, plus a window firing.
    let d = completed(&debloated);
    assert!(
        d >= 5 && d > a,
        "debloated: {d} completed against {a} aligned: {}",
        debloated.stderr
    );
}

#[test]
fn with_an_aligned_checkpoint_timeout_barriers_overtake_once_they_waited_and_checkpoints_complete()
{
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = TempDir::new().unwrap();
    let bin = example_bin("sensor_pipeline");
    let (clean, want) = run_sensor_outputs(&bin, dir.path(), "clean", &ARGS, &[]);
    clean.assert_success();
    let timeout = "execution.checkpointing.aligned-checkpoint-timeout=200ms";
    let (run, got) = back_pressured(&dir, "timeout", &[UNALIGNED, timeout]);
    run.assert_success();
    assert_same_outputs(&got, &want, "failure-free (aligned-checkpoint timeout)");
    // The barriers start aligned; behind the queued results they wait, then overtake them
    // from the window task's output queues.
    assert!(
        run.stderr
            .contains("aligned barriers timed out in the output queues"),
        "{}",
        run.stderr
    );
    let done = completed(&run);
    assert!(done >= 10, "{done} completed: {}", run.stderr);
}

/// The checkpoints a run completed, from its summary.
fn completed(o: &Outcome) -> u32 {
    o.stdout
        .lines()
        .find_map(|l| l.strip_prefix("checkpoints completed: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn five_seeded_failures_with_unaligned_checkpoints_under_back_pressure_leave_the_output_of_the_failure_free_run(
) {
    let restored = seeded_failures(&[UNALIGNED]);
    assert!(
        restored.contains("data in flight restored"),
        "a restore put data in flight back: {restored}"
    );
}

#[test]
fn five_seeded_failures_with_an_aligned_checkpoint_timeout_leave_the_output_of_the_failure_free_run(
) {
    let log = seeded_failures(&[
        UNALIGNED,
        "execution.checkpointing.aligned-checkpoint-timeout=50ms",
    ]);
    assert!(
        log.contains("aligned barriers timed out in the output queues"),
        "barriers overtook: {log}"
    );
}

/// Runs the job back-pressured with five seeded failures, checkpoints every 100 ms and
/// `settings`; checks its output is the failure-free run's and returns its log.
fn seeded_failures(settings: &[&str]) -> String {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // 400,000 readings: four windows, the failures spread over them, the later ones while
    // the sinks hold the job back.
    let args = ["--records", "400000", "--parallelism", "2"];
    let dir = TempDir::new().unwrap();
    let bin = example_bin("sensor_pipeline");
    let (clean, want) = run_sensor_outputs(&bin, dir.path(), "clean", &args, &[]);
    clean.assert_success();
    let checkpoints = format!("file://{}", dir.path().join("checkpoints").display());
    let mut extra: Vec<String> = [
        "--checkpoint-interval-ms",
        "100",
        "--checkpoint-dir",
        &checkpoints,
        "--fail-randomly",
        "7:5",
        "--throttle-records-per-sec",
        "200000",
        "--sink-throttle-records-per-sec",
        "2000",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    with_settings(&mut extra, settings);
    let (failing, got) =
        run_sensor_outputs_with_env(&bin, dir.path(), "failing", &args, &extra, &task_log());
    failing.assert_success().assert_failures_injected(5);
    assert_same_outputs(&got, &want, "failure-free");
    failing.stderr
}
