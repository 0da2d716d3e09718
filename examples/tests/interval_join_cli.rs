//! Runs the real `interval_join` example binary: its part files hold exactly the (reading,
//! setpoint) pairs of a sensor whose times lie within the interval, as a scan over the
//! generated rows finds them; an empty interval fails with a message that names its bounds.

mod common;

use common::{assert_same_lines, example_bin, run, sorted_output_of};
use std::collections::HashMap;
use weir_examples::{event_seconds, sensor_row, setpoint, SENSORS};

/// The lines the example writes for `n` readings and the interval `lower..=upper`, sorted.
fn reference(n: u64, lower: i64, upper: i64) -> Vec<String> {
    let mut by_sensor: HashMap<u32, Vec<(i64, f64)>> = HashMap::new();
    for id in 0..event_seconds(n) * SENSORS {
        let (sensor, ts, degrees) = setpoint(id);
        by_sensor.entry(sensor).or_default().push((ts, degrees));
    }
    let mut lines = Vec::new();
    for id in 0..n {
        let (sensor, ts, t) = sensor_row(id, n, 0);
        let within = |s_ts: i64| ts + lower <= s_ts && s_ts <= ts + upper;
        for (s_ts, s) in by_sensor.get(&sensor).into_iter().flatten() {
            if within(*s_ts) {
                lines.push(format!("{sensor},{ts},{t:.1},{s_ts},{s:.1}"));
            }
        }
    }
    lines.sort();
    lines
}

#[test]
fn interval_join_writes_every_pair_of_a_sensor_within_the_interval() {
    let n = 150_000;
    let args = [
        "--records",
        &n.to_string(),
        "--lower-ms",
        "-300",
        "--upper-ms",
        "700",
    ];
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args.extend(["--parallelism".into(), "3".into()]);
    let lines = sorted_output_of("interval_join", &args);
    let expected = reference(n, -300, 700);
    assert!(
        expected.len() > 10_000,
        "the readings meet setpoints: {}",
        expected.len()
    );
    assert_same_lines(&lines, &expected, "interval join");
}

#[test]
fn interval_join_refuses_an_empty_interval_naming_its_bounds() {
    run(
        &example_bin("interval_join"),
        &["--records", "10", "--lower-ms", "5", "--upper-ms", "-5"],
    )
    .assert_failure()
    .assert_stderr_contains("between(5, -5)");
}
