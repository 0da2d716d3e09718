//! Runs the real `threshold_alerts` example binary: its part files hold exactly the readings
//! above the threshold of their sensor's family in force at their event time, as a scan over
//! the generated rows finds them, whatever the parallelism; bad arguments fail with a
//! message that names them.

mod common;

use common::{assert_same_lines, example_bin, run, sorted_output_of};
use weir_examples::{sensor_row, threshold, EVENT_BASE_MS, FAMILIES};

/// The alerts the example writes for `n` readings and rules of `period_ms`, sorted.
fn reference(n: u64, period_ms: i64) -> Vec<String> {
    let mut lines: Vec<String> = (0..n)
        .filter_map(|id| {
            let (sensor, ts, t) = sensor_row(id, n, 0);
            let family = (u64::from(sensor) % FAMILIES) as u8;
            let limit = threshold(family, (ts - EVENT_BASE_MS).div_euclid(period_ms));
            (t > limit).then(|| format!("{sensor},{ts},{t:.1},{limit:.1}"))
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn threshold_alerts_checks_each_reading_against_the_rule_of_its_time() {
    let n = 120_000;
    let expected = reference(n, 50);
    assert!(
        expected.len() > 10_000 && expected.len() < n as usize / 2,
        "some readings alert, most do not: {}",
        expected.len()
    );
    for parallelism in [1, 3] {
        let args = [
            "--records",
            &n.to_string(),
            "--period-ms",
            "50",
            "--parallelism",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(parallelism.to_string());
        let lines = sorted_output_of("threshold_alerts", &args);
        assert_same_lines(&lines, &expected, &format!("parallelism {parallelism}"));
    }
}

#[test]
fn threshold_alerts_refuses_a_period_of_zero_milliseconds() {
    run(&example_bin("threshold_alerts"), &["--period-ms", "0"])
        .assert_failure()
        .assert_stderr_contains("--period-ms");
}
