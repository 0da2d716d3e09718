//! Runs the real `window_join` example binary: its part files hold exactly the (reading,
//! setpoint) pairs of a sensor within one tumbling window, as a nested loop over the
//! generated rows finds them; bad arguments fail with a message that names them.

mod common;

use common::{example_bin, part_lines, run};
use std::collections::BTreeMap;
use weir_examples::{event_seconds, sensor_row, setpoint, SENSORS};

/// The lines the example writes for `n` readings and windows of `window_ms`, sorted.
fn reference(n: u64, window_ms: i64) -> Vec<String> {
    let mut setpoints: BTreeMap<(u32, i64), Vec<(i64, f64)>> = BTreeMap::new();
    for id in 0..event_seconds(n) * SENSORS {
        let (sensor, ts, degrees) = setpoint(id);
        let window = ts - ts.rem_euclid(window_ms);
        setpoints
            .entry((sensor, window))
            .or_default()
            .push((ts, degrees));
    }
    let mut lines = Vec::new();
    for id in 0..n {
        let (sensor, ts, t) = sensor_row(id, n, 0);
        let window = ts - ts.rem_euclid(window_ms);
        for (s_ts, s) in setpoints.get(&(sensor, window)).into_iter().flatten() {
            lines.push(format!("{sensor},{ts},{t:.1},{s_ts},{s:.1},{:.1}", t - s));
        }
    }
    lines.sort();
    lines
}

#[test]
fn window_join_writes_every_pair_of_a_sensor_within_a_window() {
    let out = tempfile::tempdir().unwrap();
    let n = 60_000;
    run(
        &example_bin("window_join"),
        &[
            "--records",
            &n.to_string(),
            "--window-ms",
            "250",
            // An odd parallelism: the readings keep their own two readers.
            "--parallelism",
            "3",
            "--output",
            out.path().to_str().unwrap(),
        ],
    )
    .assert_success();
    let mut lines = part_lines(out.path());
    lines.sort();
    let expected = reference(n, 250);
    assert!(
        expected.len() > 10_000,
        "the readings meet setpoints: {}",
        expected.len()
    );
    assert!(
        lines == expected,
        "{} lines against {} expected",
        lines.len(),
        expected.len()
    );
}

#[test]
fn window_join_refuses_a_window_of_zero_milliseconds() {
    run(&example_bin("window_join"), &["--window-ms", "0"])
        .assert_failure()
        .assert_stderr_contains("--window-ms");
}
