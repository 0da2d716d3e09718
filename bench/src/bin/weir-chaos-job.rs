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
//! With `--postgres URL`, the sequence lines go into the PostgreSQL table
//! [`RECORDS_TABLE`] (one `line` per row) through the exactly-once PostgreSQL sink instead;
//! with `--kafka BROKERS`, the window lines go into the Kafka topic [`WINDOWS_TOPIC`]
//! (which must exist) through the exactly-once Kafka sink. What has no server goes into
//! the files.
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
use weir_api::{DataStream, StreamExecutionEnvironment, ValueState, VoidNamespace};
use weir_bench::chaos_job::{window_line, RECORDS_TABLE, WINDOW, WINDOWS_TOPIC};
use weir_connectors::kafka::{KafkaSink, Utf8};
use weir_connectors::postgres::PostgresSink;
use weir_connectors::DeliveryGuarantee;

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
    /// Connection URL of a PostgreSQL database for the sequence lines.
    #[arg(long)]
    postgres: Option<String>,
    /// Kafka brokers for the window lines.
    #[arg(long)]
    kafka: Option<String>,
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
    route_output(&args, checked, windows);
    env.execute("chaos-sequences")
        .context("the sequence job failed")?;
    Ok(())
}

/// Sends the sequence lines `checked` to PostgreSQL and the window lines `windows` to
/// Kafka where the arguments name a server, the rest into the transactional file sink.
fn route_output(args: &Args, checked: DataStream<String>, windows: DataStream<String>) {
    let mut to_files = Vec::new();
    match &args.postgres {
        Some(url) => {
            checked
                .add_sink(records_sink(url))
                .name("Sequences to PostgreSQL")
                .uid("records-postgres");
        }
        None => to_files.push(checked),
    }
    match &args.kafka {
        Some(brokers) => {
            windows
                .add_sink(windows_sink(brokers))
                .name("Windows to Kafka")
                .uid("windows-kafka");
        }
        None => to_files.push(windows),
    }
    if let Some((first, rest)) = to_files.split_first() {
        let rest: Vec<_> = rest.iter().collect();
        first.union(&rest).sink_to_files(FileSink::new(
            &args.output,
            |l: &String, out: &mut String| out.push_str(l),
        ));
    }
}

/// The sequence lines into [`RECORDS_TABLE`], exactly once.
fn records_sink(url: &str) -> PostgresSink<String, (String,)> {
    PostgresSink::new(
        url,
        &format!("INSERT INTO {RECORDS_TABLE} (line) VALUES ($1)"),
        |l: &String| (l.clone(),),
    )
    .setup(&format!(
        "CREATE TABLE IF NOT EXISTS {RECORDS_TABLE} (line text NOT NULL)"
    ))
    .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
}

/// The window lines into [`WINDOWS_TOPIC`], exactly once, keyed by their key.
fn windows_sink(brokers: &str) -> KafkaSink<String> {
    KafkaSink::new(brokers, WINDOWS_TOPIC, Utf8)
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix("weir-chaos-windows")
        .key(|l: &String| l.split(',').nth(1).map(|k| k.as_bytes().to_vec()))
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
