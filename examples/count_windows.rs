//! Count windows, as Flink's `countWindow(size, slide)`: every `--slide` readings of a
//! sensor, the minimum, maximum and mean temperature of its last `--size` readings.
//!
//! ```text
//! cargo run --release --example count_windows -- --records 1000000 --size 10 --slide 5
//! ```
//!
//! Readings are the seeded sensor rows of the other examples (`--records N`, `--seed S`),
//! read by one source subtask so that each sensor's readings arrive in the order of their
//! sequence numbers (a count window's contents depend on the order within its key). Each
//! firing becomes the line `sensor_id,ts_ms,count,min,max,mean` with the timestamp of the
//! reading that fired it (part files in `--output`, or standard output). Each window keeps
//! its records in keyed state until it fires (`process` sees them all; `reduce` and
//! `aggregate` on a tumbling count window fold them as they come instead), so the job is
//! checkpointed, restored and rescaled as any keyed job;
//! readings that never complete a window, the last ones of a sensor, fire nothing, as in
//! Flink.

use anyhow::{bail, Context as _};
use clap::Parser;
use std::path::PathBuf;
use weir_api::functions::FnResult;
use weir_api::{GeneratorSource, StreamExecutionEnvironment};
use weir_examples::{sensor_row, write_lines, Reading};

/// Summarises each sensor's last readings, every few readings.
#[derive(Parser, Debug)]
#[command(name = "count_windows")]
struct Args {
    /// Number of generated readings.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Seed of the readings' temperatures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Readings of a sensor in one window.
    #[arg(long, default_value_t = 10)]
    size: u64,
    /// Readings of a sensor between two firings (the window's size: tumbling windows).
    #[arg(long)]
    slide: Option<u64>,
    /// Directory for the summaries' part files (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Parallelism of the windows.
    #[arg(long)]
    parallelism: Option<u16>,
}

fn main() -> anyhow::Result<()> {
    weir_examples::init_logging();
    let args = Args::parse();
    let slide = args.slide.unwrap_or(args.size);
    if args.records == 0 || args.size == 0 || slide == 0 {
        bail!("--records, --size and --slide must be at least 1");
    }
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let (n, seed) = (args.records, args.seed);
    let lines = env
        .from_generator(GeneratorSource::new(Some(n), move |id| {
            sensor_row(id, n, seed)
        }))
        .name("Readings")
        .set_parallelism(1)
        .key_by(|r: &Reading| r.0)
        .count_window_sliding(args.size, slide)
        .process(summarise)
        .uid("count-windows");
    write_lines(&lines, args.output.as_deref());
    env.execute("count-windows")
        .context("count windows failed")?;
    Ok(())
}

/// One window's line: the sensor, the time of its last reading, how many readings it holds,
/// and their minimum, maximum and mean temperature.
fn summarise(sensor: &u32, readings: Vec<Reading>, out: &mut Vec<String>) -> FnResult {
    let last = readings.last().map_or(0, |r| r.1);
    let (min, max, sum) = readings.iter().fold(
        (f64::INFINITY, f64::NEG_INFINITY, 0.0),
        |(min, max, sum), r| (min.min(r.2), max.max(r.2), sum + r.2),
    );
    let count = readings.len();
    let mean = sum / count as f64;
    out.push(format!(
        "{sensor},{last},{count},{min:.1},{max:.1},{mean:.2}"
    ));
    Ok(())
}
