//! An interval join, as Flink's `IntervalJoinExample`: each sensor reading joined with every
//! thermostat setpoint issued for the same sensor within an interval of event time around
//! it.
//!
//! ```text
//! cargo run --release --example interval_join -- --records 1000000 --lower-ms -500 --upper-ms 500
//! ```
//!
//! Readings and setpoints are those of the `window_join` example (`--records N`, `--seed S`;
//! one setpoint per sensor and second of event time). A reading at `t` meets each setpoint
//! of its sensor at `t + lower_ms ..= t + upper_ms` and becomes the line
//! `sensor_id,reading_ts_ms,temperature,setpoint_ts_ms,setpoint` (part files in `--output`,
//! or standard output). Both sides wait in keyed state until the watermark passes the last
//! time a partner could come, so the join is checkpointed and restored like any keyed
//! operator.

use anyhow::{bail, Context as _};
use clap::Parser;
use std::path::PathBuf;
use weir_api::functions::FnResult;
use weir_api::join::IntervalJoinContext;
use weir_api::StreamExecutionEnvironment;
use weir_examples::{sensor_readings, setpoints, write_lines, Reading};

/// Joins sensor readings with the setpoints issued around them.
#[derive(Parser, Debug)]
#[command(name = "interval_join")]
struct Args {
    /// Number of generated readings.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Seed of the readings' temperatures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Start of the interval, in milliseconds relative to the reading (may be negative).
    #[arg(long, default_value_t = -500, allow_hyphen_values = true)]
    lower_ms: i64,
    /// End of the interval, in milliseconds relative to the reading (may be negative).
    #[arg(long, default_value_t = 500, allow_hyphen_values = true)]
    upper_ms: i64,
    /// Directory for the joined lines' part files (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Parallelism of every operator.
    #[arg(long)]
    parallelism: Option<u16>,
}

fn main() -> anyhow::Result<()> {
    weir_examples::init_logging();
    let args = Args::parse();
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let readings = sensor_readings(&env, args.records, args.seed).key_by(|r: &Reading| r.0);
    let setpoints = setpoints(&env, args.records).key_by(|s: &Reading| s.0);
    let lines = readings
        .interval_join(&setpoints)
        .between(args.lower_ms, args.upper_ms)
        .process(
            |r: Reading, s: Reading, ctx: &mut IntervalJoinContext<'_, String>| -> FnResult {
                ctx.collect(format!("{},{},{:.1},{},{:.1}", r.0, r.1, r.2, s.1, s.2));
                Ok(())
            },
        )
        .uid("join");
    write_lines(&lines, args.output.as_deref());
    env.execute("interval-join")
        .context("interval join failed")?;
    Ok(())
}
