//! The job `weir-chaos` runs on its cluster: a per-key sequence check (the idea of Flink's
//! `SemanticsCheckMapper`).
//!
//! Record `i` of a bounded generator is `(key, seq)` with `key = i % keys` and
//! `seq = i / keys + 1`. The generator's splits are interleaved (source subtask `s` of 2
//! reads `s, s + 2, s + 4, ...`) and `keys` is even, so each key comes from one source
//! subtask, in order. A keyed function holds each key's last `seq` in value state: a record
//! whose `seq` is not the last plus one is a violation of exactly-once state, written as
//! `violation,<key>,<last>,<seq>`; every record is written as `<key>,<seq>` into the
//! transactional file sink. With exactly-once, the committed lines of each key are
//! `1..=n` with no gap or repeat, and there is no violation line.
//!
//! Beside it, the same records (event time: their `seq`, in milliseconds) are counted and
//! summed per key in tumbling event-time windows of `weir_bench::chaos_job::WINDOW`,
//! one line `window,<key>,<start>,<count>,<sum>` per window into the same sink: with
//! exactly-once, each window's line is there once and equals the failure-free one.
//!
//! ```text
//! weir run --jobmanager HOST:PORT --parallelism 2 weir-chaos-job -- --records 1000000 \
//!     --keys 100 --rate 20000 --output /tmp/sequences -D execution.checkpointing.interval=500ms
//! ```

use anyhow::{bail, Context as _};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::sink::FileSink;
use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::{StreamExecutionEnvironment, ValueState, VoidNamespace};
use weir_bench::chaos_job::{window_line, WINDOW};

/// Subtasks of the generator: every key comes from exactly one of them.
const SOURCE_PARALLELISM: u16 = 2;

/// Emits every key's sequence and checks it against the key's state.
#[derive(Parser, Debug)]
#[command(name = "weir-chaos-job")]
struct Args {
    /// Records in all.
    #[arg(long)]
    records: u64,
    /// Keys (even: each key must come from one of the two source subtasks).
    #[arg(long, default_value_t = 100)]
    keys: u64,
    /// Records per second in all (unlimited when absent).
    #[arg(long)]
    rate: Option<u64>,
    /// Directory of the committed lines' part files.
    #[arg(long)]
    output: PathBuf,
    /// Sets a job configuration key (`execution.checkpointing.interval=500ms`; repeatable).
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    define: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    weir_api::logging::init("warn");
    let args = Args::parse();
    if args.keys == 0 || !args.keys.is_multiple_of(u64::from(SOURCE_PARALLELISM)) {
        bail!(
            "--keys {} must be a positive multiple of {SOURCE_PARALLELISM}",
            args.keys
        );
    }
    let env = StreamExecutionEnvironment::with_properties(&args.define)?;
    let keys = args.keys;
    let mut source = GeneratorSource::new(Some(args.records), move |i| (i % keys, i / keys + 1))
        .with_interleaved_splits();
    if let Some(rate) = args.rate {
        source = source.with_rate_limit(rate);
    }
    // Each source subtask's sequence numbers never decrease (each key is read in order);
    // the assigners run beside the source subtasks (forward), so each sees one of them.
    let by_seq = WatermarkStrategy::for_monotonous_timestamps()
        .with_timestamp_assigner(|r: &(u64, u64), _| r.1 as i64);
    let records = env
        .from_generator(source)
        .name("Sequences")
        .uid("sequences")
        .set_parallelism(SOURCE_PARALLELISM)
        .assign_timestamps_and_watermarks(by_seq)
        .set_parallelism(SOURCE_PARALLELISM)
        .uid("event-time");
    let checked = records
        .key_by(|r: &(u64, u64)| r.0)
        .process(CheckSequence)
        .uid("check-sequence");
    let windows = records
        .map(|(key, seq): (u64, u64)| (key, 1u64, seq))
        .uid("count-one")
        .key_by(|r: &(u64, u64, u64)| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(WINDOW)))
        .reduce_with_window(
            |a: (u64, u64, u64), b: (u64, u64, u64)| (a.0, a.1 + b.1, a.2 + b.2),
            |key: &u64, w: &TimeWindow, (_, count, sum): (u64, u64, u64)| {
                window_line(*key, w.start as u64, count, sum)
            },
        )
        .uid("windows");
    checked.union(&[&windows]).sink_to_files(FileSink::new(
        &args.output,
        |l: &String, out: &mut String| out.push_str(l),
    ));
    env.execute("chaos-sequences")
        .context("the sequence job failed")?;
    Ok(())
}

/// Checks each key's sequence against its last value in state.
#[derive(Clone)]
struct CheckSequence;

impl KeyedProcessFunction<u64, (u64, u64), String> for CheckSequence {
    type State = ValueState<u64, VoidNamespace, u64>;

    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        ctx.value_state("last-seq")
    }

    fn process_element(
        &mut self,
        (key, seq): (u64, u64),
        last: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, String>,
    ) -> FnResult {
        let before = last.value()?.unwrap_or(0);
        if seq != before + 1 {
            ctx.collect(format!("violation,{key},{before},{seq}"));
        }
        last.update(seq)?;
        ctx.collect(format!("{key},{seq}"));
        Ok(())
    }
}
