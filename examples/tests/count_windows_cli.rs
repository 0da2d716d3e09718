//! Runs the real `count_windows` example binary: its part files hold exactly the windows a
//! per-sensor replay of the generated rows fires, tumbling and sliding, at any parallelism;
//! bad arguments fail with a message that names them.

mod common;

use common::{assert_same_lines, example_bin, run, sorted_output_of};
use std::collections::HashMap;
use weir_examples::sensor_row;

/// The lines the example writes for `n` readings and windows of `size` sliding by `slide`,
/// sorted: every `slide`th reading of a sensor fires over its last `size` (fewer at first).
fn reference(n: u64, size: usize, slide: usize) -> Vec<String> {
    let mut seen: HashMap<u32, Vec<(i64, f64)>> = HashMap::new();
    let mut lines = Vec::new();
    for id in 0..n {
        let (sensor, ts, t) = sensor_row(id, n, 0);
        let readings = seen.entry(sensor).or_default();
        readings.push((ts, t));
        if !readings.len().is_multiple_of(slide) {
            continue;
        }
        let window = &readings[readings.len().saturating_sub(size)..];
        let temps = window.iter().map(|r| r.1);
        let min = temps.clone().fold(f64::INFINITY, f64::min);
        let max = temps.clone().fold(f64::NEG_INFINITY, f64::max);
        let mean = temps.sum::<f64>() / window.len() as f64;
        let count = window.len();
        lines.push(format!("{sensor},{ts},{count},{min:.1},{max:.1},{mean:.2}"));
    }
    lines.sort();
    lines
}

#[test]
fn count_windows_fire_every_slide_readings_of_a_sensor_over_its_last_size() {
    let n = 100_000;
    for (size, slide, parallelism) in [(4, 4, 2), (5, 2, 3)] {
        let expected = reference(n, size, slide);
        assert!(expected.len() > 10_000, "windows fire: {}", expected.len());
        let args = [
            ("--records", n),
            ("--size", size as u64),
            ("--slide", slide as u64),
        ];
        let mut args: Vec<String> = args
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect();
        args.extend(["--parallelism".into(), parallelism.to_string()]);
        let lines = sorted_output_of("count_windows", &args);
        assert_same_lines(&lines, &expected, &format!("size {size}, slide {slide}"));
    }
}

#[test]
fn count_windows_refuses_a_size_of_zero() {
    run(&example_bin("count_windows"), &["--size", "0"])
        .assert_failure()
        .assert_stderr_contains("--size");
}
