//! Alerts against rules that change while the job runs, with Flink's broadcast state
//! pattern: a stream of threshold rules is broadcast to every subtask of a keyed operator,
//! which checks each sensor reading against the rule in force at the reading's event time.
//!
//! ```text
//! cargo run --release --example threshold_alerts -- --records 1000000 --period-ms 100
//! ```
//!
//! Readings are the seeded sensor rows of the other examples (`--records N`, `--seed S`).
//! Sensors form eight families (`sensor_id % 8`); every `--period-ms` of event time each
//! family gets a new threshold (one rule record per family and period, from a source of
//! its own). A reading above its family's threshold for the period it falls in becomes the
//! line `sensor_id,ts_ms,temperature,threshold` (part files in `--output`, or standard
//! output).
//!
//! The rules arrive when they arrive, before or after the readings they govern. So each
//! reading waits in the sensor's keyed list state for an event-time timer at its own time:
//! once the watermark, the minimum over both inputs, passes it, the rule of its period has
//! arrived and sits in the broadcast state, keyed by (family, period). The result is the
//! same however the two streams interleave, also after a restore from a checkpoint, which
//! holds each subtask's copy of the broadcast state and the waiting readings. The waiting
//! list has a time to live (`--pending-ttl-secs`, in processing time): a reading whose
//! rule never comes is dropped after that long instead of being kept forever.

use anyhow::{bail, Context as _};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use weir_api::broadcast::{
    BroadcastState, KeyedBroadcastContext, KeyedBroadcastProcessFunction, MapStateDescriptor,
};
use weir_api::functions::{FnResult, KeyedContext, RuntimeContext};
use weir_api::time::WatermarkStrategy;
use weir_api::{
    GeneratorSource, StateTtlConfig, StreamExecutionEnvironment, Timestamp, TtlListState,
};
use weir_examples::{
    event_seconds, sensor_readings, threshold_rule, write_lines, Reading, EVENT_BASE_MS, FAMILIES,
};

/// Checks sensor readings against per-family thresholds that change over event time.
#[derive(Parser, Debug)]
#[command(name = "threshold_alerts")]
struct Args {
    /// Number of generated readings.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Seed of the readings' temperatures.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How long each threshold rule is in force, in milliseconds of event time.
    #[arg(long, default_value_t = 100)]
    period_ms: u64,
    /// Time to live of a reading waiting for its rule, in seconds of processing time.
    #[arg(long, default_value_t = 3600)]
    pending_ttl_secs: u64,
    /// Directory for the alerts' part files (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Parallelism of every operator.
    #[arg(long)]
    parallelism: Option<u16>,
}

/// `(family, period, threshold)`.
type Rule = (u8, i64, f64);

/// The key of a rule in the broadcast state: `(family, period)`.
type RuleKey = (u8, i64);

fn main() -> anyhow::Result<()> {
    weir_examples::init_logging();
    let args = Args::parse();
    if args.records == 0 || args.period_ms == 0 || args.pending_ttl_secs == 0 {
        bail!("--records, --period-ms and --pending-ttl-secs must be at least 1");
    }
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let period_ms = i64::try_from(args.period_ms).context("--period-ms is too large")?;
    let periods = (event_seconds(args.records) * 1000).div_ceil(args.period_ms);
    let rules = env
        .from_generator(GeneratorSource::new(
            Some(periods * FAMILIES),
            threshold_rule,
        ))
        .name("Rules")
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(move |r: &Rule, _| EVENT_BASE_MS + r.1 * period_ms),
        )
        .set_parallelism(1);
    let ttl = StateTtlConfig::new_builder(Duration::from_secs(args.pending_ttl_secs))
        .cleanup_full_snapshot()
        .build();
    let alerts = sensor_readings(&env, args.records, args.seed)
        .key_by(|r: &Reading| r.0)
        .connect(&rules.broadcast_with(&MapStateDescriptor::new("thresholds")))
        .process(CheckThresholds { period_ms, ttl })
        .uid("check-thresholds");
    write_lines(&alerts, args.output.as_deref());
    env.execute("threshold-alerts")
        .context("threshold alerts failed")?;
    Ok(())
}

/// Keeps each reading until the watermark passes it, then checks it against the rule of its
/// family and period.
#[derive(Clone)]
struct CheckThresholds {
    period_ms: i64,
    ttl: StateTtlConfig,
}

impl KeyedBroadcastProcessFunction<u32, Reading, Rule, String, RuleKey, f64> for CheckThresholds {
    type State = TtlListState<u32, Reading>;

    fn open(&mut self, ctx: &RuntimeContext<u32>) -> FnResult<Self::State> {
        ctx.ttl_list_state("pending", &self.ttl)
    }

    fn process_element(
        &mut self,
        reading: Reading,
        pending: &mut Self::State,
        _rules: &BroadcastState<RuleKey, f64>,
        ctx: &mut KeyedContext<'_, u32, String>,
    ) -> FnResult {
        ctx.register_event_time_timer(reading.1);
        pending.add(reading)?;
        Ok(())
    }

    fn process_broadcast_element(
        &mut self,
        (family, period, threshold): Rule,
        _pending: &mut Self::State,
        rules: &mut BroadcastState<RuleKey, f64>,
        _ctx: &mut KeyedBroadcastContext<'_, u32, String>,
    ) -> FnResult {
        rules.put((family, period), threshold);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        pending: &mut Self::State,
        rules: &BroadcastState<RuleKey, f64>,
        ctx: &mut KeyedContext<'_, u32, String>,
    ) -> FnResult {
        let (due, later): (Vec<Reading>, Vec<Reading>) =
            pending.get()?.into_iter().partition(|r| r.1 <= timestamp);
        pending.update(later)?;
        for (sensor, ts, temperature) in due {
            let family = (u64::from(sensor) % FAMILIES) as u8;
            let period = (ts - EVENT_BASE_MS).div_euclid(self.period_ms);
            // The watermark passed `ts`, so the rule of its period (stamped with the
            // period's start) has arrived.
            let Some(&threshold) = rules.get(&(family, period)) else {
                continue;
            };
            if temperature > threshold {
                ctx.collect(format!("{sensor},{ts},{temperature:.1},{threshold:.1}"));
            }
        }
        Ok(())
    }
}
