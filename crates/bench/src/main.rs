//! `weir-bench`: throughput of Weir on the workloads of the Flink reference harness.
//!
//! ```text
//! cargo run --release -p weir-bench -- WORKLOAD --records N --parallelism P
//! ```
//!
//! Prints one JSON line `{"workload", "records", "seconds", "records_per_sec"}` on stdout
//! (and the process's peak resident memory on stderr). `seconds` runs from `execute` to the
//! job's end on a fresh local mini-cluster with two TaskManagers, so data crosses loopback
//! TCP wherever an exchange partitions it.
//!
//! Workloads (rows as in the harness's README):
//! - `stateless`: generated `(id, k, v)` rows (`k` in 0..9999, `v` in 0..999, uniform
//!   pseudo-random from `id`) -> `v < 500` -> discard. Flink harness workload `a`.
//! - `keyed-count`: the same rows -> key by `k` -> running count per key (one update per
//!   row) -> discard. Harness workload `b`.
//! - `sensor-window`: the harness's sensor rows (10,000 sensors, event time, watermark
//!   3 s behind) -> 1 s tumbling event-time windows per sensor with count, average and
//!   maximum -> discard. Harness workload `c`.

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use std::time::{Duration, Instant};
use weir_api::sink::DiscardingSink;
use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::{AggregateFunction, StreamExecutionEnvironment};
use weir_examples::sensor_row;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Workload {
    /// Generator -> filter -> discard.
    Stateless,
    /// Generator -> key by -> running count per key -> discard.
    KeyedCount,
    /// Sensor rows -> 1 s tumbling event-time windows per sensor -> discard.
    SensorWindow,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Stateless => "stateless",
            Workload::KeyedCount => "keyed-count",
            Workload::SensorWindow => "sensor-window",
        }
    }
}

/// Measures Weir's throughput on one workload.
#[derive(Parser, Debug)]
#[command(name = "weir-bench")]
struct Args {
    /// The workload to run.
    #[arg(value_enum)]
    workload: Workload,
    /// Number of generated rows.
    #[arg(long, default_value_t = 10_000_000)]
    records: u64,
    /// Parallelism of every operator.
    #[arg(long, default_value_t = 2)]
    parallelism: u16,
}

/// A stateless SplitMix64 step: uniform pseudo-random bits from a sequence number.
#[inline]
fn mix(id: u64) -> u64 {
    let mut z = id.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `(id, k, v)` row of the harness's `datagen` table.
#[inline]
fn datagen_row(id: u64) -> (u64, u32, u32) {
    let r = mix(id);
    (id, (r % 10_000) as u32, ((r >> 32) % 1000) as u32)
}

#[derive(Clone)]
struct SensorStats;

impl AggregateFunction<(u32, i64, f64), (u64, f64, f64), (u64, f64, f64)> for SensorStats {
    fn create_accumulator(&self) -> (u64, f64, f64) {
        (0, 0.0, f64::NEG_INFINITY)
    }
    #[inline]
    fn add(&self, r: (u32, i64, f64), acc: &mut (u64, f64, f64)) {
        acc.0 += 1;
        acc.1 += r.2;
        acc.2 = acc.2.max(r.2);
    }
    fn get_result(&self, acc: &(u64, f64, f64)) -> (u64, f64, f64) {
        *acc
    }
    fn merge(&self, a: (u64, f64, f64), b: (u64, f64, f64)) -> (u64, f64, f64) {
        (a.0 + b.0, a.1 + b.1, a.2.max(b.2))
    }
}

fn build(env: &StreamExecutionEnvironment, workload: Workload, n: u64) {
    match workload {
        Workload::Stateless => {
            env.from_generator(GeneratorSource::new(Some(n), datagen_row))
                .filter(|r: &(u64, u32, u32)| r.2 < 500)
                .add_sink(DiscardingSink);
        }
        Workload::KeyedCount => {
            env.from_generator(GeneratorSource::new(Some(n), datagen_row))
                .map(|r: (u64, u32, u32)| (r.1, 1u64))
                .key_by(|r: &(u32, u64)| r.0)
                .reduce(|a, b| (a.0, a.1 + b.1))
                .add_sink(DiscardingSink);
        }
        Workload::SensorWindow => {
            env.from_generator(GeneratorSource::new(Some(n), move |id| {
                sensor_row(id, n, 0)
            }))
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(3))
                    .with_timestamp_assigner(|r: &(u32, i64, f64), _| r.1),
            )
            .key_by(|r: &(u32, i64, f64)| r.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .aggregate_with_window(
                SensorStats,
                |k: &u32, w: &TimeWindow, (c, sum, max): (u64, f64, f64)| {
                    (*k, w.start, w.end, sum / c as f64, max, c)
                },
            )
            .add_sink(DiscardingSink);
        }
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    if args.parallelism == 0 {
        bail!("--parallelism must be at least 1");
    }
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(args.parallelism)
        .set_local_taskmanagers(2);
    build(&env, args.workload, args.records);
    let started = Instant::now();
    env.execute(args.workload.name())?;
    let seconds = started.elapsed().as_secs_f64();
    let line = serde_json::json!({
        "workload": args.workload.name(),
        "records": args.records,
        "seconds": seconds,
        "records_per_sec": args.records as f64 / seconds,
    });
    println!("{line}");
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagen_rows_stay_in_the_harness_ranges() {
        for id in 0..10_000 {
            let (i, k, v) = datagen_row(id);
            assert_eq!(i, id);
            assert!(k < 10_000 && v < 1000);
        }
    }

    #[test]
    fn about_half_of_the_rows_pass_the_stateless_filter() {
        let pass = (0..100_000).filter(|id| datagen_row(*id).2 < 500).count();
        assert!((48_000..52_000).contains(&pass), "{pass}");
    }
}
