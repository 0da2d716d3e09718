//! The sensor pipeline's generator of plausible readings: every sensor has its own level
//! (15 to 35 degrees) around which it wanders (a seeded per-sensor random walk, its steps
//! drawn every 2 s of event time and 250 ms for finer ripples, smoothly joined), with a
//! little measurement noise and, rarely (one reading in 4000), a spike of 40 to 55 degrees.
//!
//! Invariants: a reading is a pure function of `(seed, sequence number, sensor, event
//! time)`, so the generator splits across subtasks and replays after a restore exactly; the
//! sensor and event time of each sequence number are those of [`crate::sensor_row`] (the
//! benchmark rows), so window counts match the benchmark's; temperatures come in steps of
//! 1/16 degree, as a 12-bit digital sensor reports them: exact in binary, so a window's sum
//! does not depend on the order its readings arrive in (two sources interleave), and results
//! are identical from run to run, through failures and at any parallelism.

/// A 64-bit mix of `a` and `b` under `seed` (SplitMix64's finalizer).
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed
        ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x` as a number in `[0, 1)`.
fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The walk of `sensor` at `ts_ms`: steps of up to `amplitude` drawn every `period_ms`,
/// joined by cosine interpolation.
fn walk(seed: u64, sensor: u64, ts_ms: i64, period_ms: i64, amplitude: f64) -> f64 {
    let knot = ts_ms.div_euclid(period_ms);
    let within = ts_ms.rem_euclid(period_ms) as f64 / period_ms as f64;
    let level = |k: i64| unit(mix(seed, sensor, k as u64 ^ ((period_ms as u64) << 48))) * 2.0 - 1.0;
    let (a, b) = (level(knot), level(knot + 1));
    let w = (1.0 - (std::f64::consts::PI * within).cos()) / 2.0;
    amplitude * (a + (b - a) * w)
}

/// The temperature of reading `id` of `sensor` at `ts_ms`, for `seed`.
pub fn plausible_temperature(id: u64, sensor: u32, ts_ms: i64, seed: u64) -> f64 {
    let s = u64::from(sensor);
    let level = 15.0 + 20.0 * unit(mix(seed, s, u64::MAX));
    let wander = walk(seed, s, ts_ms, 2_000, 6.0) + walk(seed, s, ts_ms, 250, 1.0);
    let noise = (unit(mix(seed, id, 1)) - 0.5) * 0.4;
    let spike = if mix(seed, id, 2).is_multiple_of(4_000) {
        40.0 + 15.0 * unit(mix(seed, id, 3))
    } else {
        0.0
    };
    ((level + wander + noise + spike) * 16.0).round() / 16.0
}

/// The generator's reading `id` of `n` for `seed`: `(sensor, event time ms, temperature)`.
pub fn sensor_reading(id: u64, n: u64, seed: u64) -> (u32, i64, f64) {
    let (sensor, ts_ms) = crate::sensor_and_time(id, n);
    (
        sensor,
        ts_ms,
        plausible_temperature(id, sensor, ts_ms, seed),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_deterministic_per_seed_and_sensors_differ() {
        let n = 200_000;
        assert_eq!(sensor_reading(12_345, n, 7), sensor_reading(12_345, n, 7));
        assert_ne!(
            sensor_reading(12_345, n, 7).2,
            sensor_reading(12_345, n, 8).2
        );
        // Per-sensor averages over many readings are spread, not tied.
        let mut sums = std::collections::HashMap::<u32, (f64, u32)>::new();
        for id in 0..n {
            let (s, _, t) = sensor_reading(id, n, 0);
            let e = sums.entry(s).or_default();
            e.0 += t;
            e.1 += 1;
        }
        let mut avgs: Vec<f64> = sums.values().map(|(t, c)| t / f64::from(*c)).collect();
        avgs.sort_by(f64::total_cmp);
        let top: Vec<f64> = avgs.iter().rev().take(10).copied().collect();
        assert!(top.windows(2).all(|w| w[0] > w[1]), "{top:?}");
        assert!(avgs[0] > 5.0 && avgs[avgs.len() - 1] < 45.0, "{avgs:?}");
    }

    #[test]
    fn readings_are_exact_sixteenths_so_sums_do_not_depend_on_order() {
        for id in 0..10_000 {
            let t = sensor_reading(id, 20_000, 3).2;
            assert_eq!((t * 16.0).fract(), 0.0, "{t}");
        }
        let r: Vec<f64> = (0..1000)
            .map(|id| sensor_reading(id, 20_000, 3).2)
            .collect();
        let forward: f64 = r.iter().sum();
        let backward: f64 = r.iter().rev().sum();
        assert_eq!(forward, backward);
    }

    #[test]
    fn a_sensor_wanders_smoothly_and_spikes_are_rare() {
        let steps: Vec<f64> = (0..100)
            .map(|i| {
                plausible_temperature(0, 42, 1_000 + i * 10, 0)
                    - plausible_temperature(0, 42, 1_000 + i * 10 + 10, 0)
            })
            .collect();
        assert!(steps.iter().all(|d| d.abs() < 1.0), "{steps:?}");
        let spikes = (0..400_000u64)
            .filter(|id| plausible_temperature(*id, 1, 0, 0) > 60.0)
            .count();
        assert!(
            (50..=150).contains(&spikes),
            "{spikes} spikes in 400000 readings"
        );
    }
}
