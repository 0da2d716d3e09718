//! A window join, as Flink's `WindowJoin` example: each sensor's readings joined with the
//! thermostat setpoints issued for the same sensor in the same tumbling event-time window.
//!
//! ```text
//! cargo run --release --example window_join -- --records 1000000 --output /tmp/deviations
//! ```
//!
//! Readings are the seeded sensor rows of the other examples (`--records N`, `--seed S`;
//! 10,000 sensors); each sensor gets one setpoint per second of event time, at a time of its
//! own within the second, for as long as the readings last. Every (reading, setpoint) pair of
//! a sensor within one window of `--window-ms` becomes the line
//! `sensor_id,reading_ts_ms,temperature,setpoint_ts_ms,setpoint,deviation` (part files in
//! `--output`, or standard output).

use anyhow::{bail, Context as _};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use weir_api::window::TumblingEventTimeWindows;
use weir_api::StreamExecutionEnvironment;
use weir_examples::{sensor_readings, setpoints, write_lines, Reading};

/// Joins sensor readings with thermostat setpoints in tumbling windows.
#[derive(Parser, Debug)]
#[command(name = "window_join")]
struct Args {
    /// Number of generated readings.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Seed of the readings' temperatures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Tumbling window length in milliseconds of event time.
    #[arg(long, default_value_t = 1000)]
    window_ms: u64,
    /// Directory for the joined lines' part files (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Parallelism of every operator.
    #[arg(long)]
    parallelism: Option<u16>,
}

type Setpoint = Reading;

fn main() -> anyhow::Result<()> {
    weir_examples::init_logging();
    let args = Args::parse();
    if args.records == 0 || args.window_ms == 0 {
        bail!("--records and --window-ms must be at least 1");
    }
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let readings = sensor_readings(&env, args.records, args.seed);
    let setpoints = setpoints(&env, args.records);
    let lines = readings
        .join(&setpoints)
        .r#where(|r: &Reading| r.0)
        .equal_to(|s: &Setpoint| s.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            args.window_ms,
        )))
        .apply(|r: Reading, s: Setpoint| {
            format!(
                "{},{},{:.1},{},{:.1},{:.1}",
                r.0,
                r.1,
                r.2,
                s.1,
                s.2,
                r.2 - s.2
            )
        })
        .uid("join");
    write_lines(&lines, args.output.as_deref());
    env.execute("window-join").context("window join failed")?;
    Ok(())
}
