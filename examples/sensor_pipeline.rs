//! The sensor pipeline: per-sensor tumbling event-time windows (count, average, maximum),
//! alerts for hot readings, and the ten hottest sensors of every window.
//!
//! ```text
//! cargo run --release --example sensor_pipeline -- --input readings.csv --output out/
//! cargo run --release --example sensor_pipeline            # seeded generator, summary only
//! ```
//!
//! Input CSV has the header `sensor_id,ts_ms,temperature`. Window results are written as
//! `sensor_id,window_start_ms,window_end_ms,count,avg_temperature,max_temperature` lines into
//! part files `part-*` of `--output`; alerts (`sensor_id,ts_ms,temperature`) go to
//! `--alerts-output` and the top ten (`window_start_ms,window_end_ms,rank,sensor_id,
//! avg_temperature,max_temperature`) to `--top-output`, or are summarised on stdout.
//!
//! With an input file the watermark generator runs beside the single file reader and emits
//! after every record, so which records are late depends only on the file's order: the
//! output is the same on every run.
//!
//! PostgreSQL: `--postgres-url URL --output-table NAME` writes the window results into a
//! table (see `sensor_pipeline/postgres.rs`).
//!
//! Kafka: `--kafka-brokers ADDR --input-topic T [--output-topic T2] [--alerts-topic T3]`
//! reads readings from a topic and writes window results and alerts to topics (see
//! `sensor_pipeline/kafka.rs`); `--produce-readings N` fills the input topic first.
//! `--fail-before-commit` fails once between a checkpoint's completion and the commit of a
//! Kafka output's transaction that holds records (see `sensor_pipeline/faults.rs`).
//!
//! Savepoints: `--stop-with-savepoint-after-records N` (with checkpoints on) stops the job
//! with a savepoint once N readings passed and prints `savepoint: URL`; a later run with
//! `--from-savepoint URL` (at any `--parallelism`) resumes from it, and together the two
//! runs write exactly the output of one uninterrupted run.

use anyhow::{bail, Context as _};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use weir_api::sink::{CollectSink, FileSink};
use weir_api::source::{CsvSource, GeneratorSource};
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::{
    AggregateFunction, BadRecordPolicy, DataStream, FnResult, SavepointRestoreSettings,
    StateBackendKind, StreamExecutionEnvironment,
};
use weir_examples::{sensor_reading, CountingSink, SensorReading};

#[path = "sensor_pipeline/checks.rs"]
mod checks;
#[path = "sensor_pipeline/faults.rs"]
mod faults;
#[cfg(feature = "kafka")]
#[path = "sensor_pipeline/kafka.rs"]
mod kafka;
#[cfg(feature = "postgres")]
#[path = "sensor_pipeline/postgres.rs"]
mod postgres;
#[path = "sensor_pipeline/summary.rs"]
mod summary;

use faults::{parse_fail_randomly, random_points, Faults};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum OnBadRecord {
    /// Count, log (file and line) and skip malformed rows.
    Skip,
    /// Fail the job on the first malformed row.
    Fail,
}

/// Per-sensor windowed statistics, alerts and top-10 over sensor readings.
#[derive(Parser, Debug)]
#[command(name = "sensor_pipeline")]
struct Args {
    /// CSV input with header `sensor_id,ts_ms,temperature`; without it the seeded generator runs.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Directory for window results (part files `part-*`).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Bound on out-of-order event time, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    max_out_of_orderness_ms: u64,
    /// Tumbling window size, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    window_ms: u64,
    /// Parallelism of the job (default: number of CPU cores).
    #[arg(long)]
    parallelism: Option<u16>,
    /// Readings above this temperature are alerts.
    #[arg(long, default_value_t = 75.0)]
    alert_threshold: f64,
    /// Directory for alerts (part files); without it alerts are summarised on stdout.
    #[arg(long)]
    alerts_output: Option<PathBuf>,
    /// Directory for the top 10 per window (part files); without it they are summarised.
    #[arg(long)]
    top_output: Option<PathBuf>,
    /// What to do with malformed CSV rows.
    #[arg(long, value_enum, default_value_t = OnBadRecord::Skip)]
    on_bad_record: OnBadRecord,
    /// Readings the generator produces (without --input).
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Seed of the generator's temperatures (without --input).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Take an exactly-once checkpoint this often (off by default); outputs are then
    /// committed per checkpoint, and failed tasks restart from the latest checkpoint.
    #[arg(long)]
    checkpoint_interval_ms: Option<u64>,
    /// Where checkpoints go: an object-store URL (default: file://<temp dir>/weir-checkpoints).
    #[arg(long)]
    checkpoint_dir: Option<String>,
    /// Fail point: panic a task when the N-th reading (counted across restarts) passes;
    /// may repeat.
    #[arg(long = "fail-after-records", value_name = "N")]
    fail_after_records: Vec<u64>,
    /// Fail points at COUNT seeded random readings: SEED:COUNT.
    #[arg(long, value_name = "SEED:COUNT", value_parser = parse_fail_randomly)]
    fail_randomly: Option<(u64, u64)>,
    /// Fail once between a checkpoint's completion and the commit of a Kafka output's
    /// transaction that holds records (exactly-once Kafka outputs only): a restore aborts
    /// that transaction and commits its records anew.
    #[arg(long)]
    fail_before_commit: bool,
    /// Slow the readings down to this many per second (so a small input runs long enough
    /// for checkpoints and failures to interleave).
    #[arg(long, value_name = "N")]
    throttle_records_per_sec: Option<u64>,
    /// Slow each subtask of the window results' sinks down to N records per second, so the
    /// job runs back-pressured (checkpoints under back-pressure).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    sink_throttle_records_per_sec: Option<u64>,
    /// Stop the job with a savepoint once N readings passed (needs
    /// --checkpoint-interval-ms); prints `savepoint: URL`.
    #[arg(long, value_name = "N")]
    stop_with_savepoint_after_records: Option<u64>,
    /// Where savepoints go: a URL or a path (default: <temp dir>/weir-savepoints).
    #[arg(long, value_name = "DIR")]
    savepoint_dir: Option<String>,
    /// Start from this savepoint (a URL or a path), at any parallelism.
    #[arg(long, value_name = "PATH")]
    from_savepoint: Option<String>,
    /// With --from-savepoint: skip savepoint state of operators this job does not have.
    #[arg(long)]
    allow_non_restored_state: bool,
    /// Keyed state backend: `memory` or `rocksdb` (`rocksdb` needs a build with the
    /// cargo feature `rocksdb`) [default: state.backend.type, memory].
    #[arg(long, value_name = "memory|rocksdb")]
    state_backend: Option<StateBackendKind>,
    /// Sets a job configuration key (`execution.checkpointing.timeout=1 min`; repeatable);
    /// overrides weir.toml and WEIR_* variables, and the flags above override it.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    define: Vec<String>,
    /// RocksDB working directories (default: the temp dir).
    #[arg(long, value_name = "DIR")]
    rocksdb_local_dir: Option<PathBuf>,
    /// Kafka bootstrap servers (`HOST:PORT[,...]`): read readings from --input-topic.
    #[arg(long, value_name = "ADDR")]
    kafka_brokers: Option<String>,
    /// Topic of the readings (CSV lines `sensor_id,ts_ms,temperature`, no header).
    #[arg(long, value_name = "T", requires = "kafka_brokers")]
    input_topic: Option<String>,
    /// Topic for window results (the lines of --output).
    #[arg(long, value_name = "T", requires = "input_topic")]
    output_topic: Option<String>,
    /// Topic for alerts (the lines of --alerts-output).
    #[arg(long, value_name = "T", requires = "input_topic")]
    alerts_topic: Option<String>,
    /// Fill --input-topic with N generator readings (seeded by --seed), then exit.
    #[arg(long, value_name = "N", requires = "input_topic")]
    produce_readings: Option<u64>,
    /// PostgreSQL connection URL (`postgres://USER[:PASSWORD]@HOST:PORT/DB`): write window
    /// results into --output-table (exactly-once with checkpoints).
    #[arg(long, value_name = "URL", requires = "output_table")]
    postgres_url: Option<String>,
    /// Table for window results (created if missing).
    #[arg(long, value_name = "NAME", requires = "postgres_url")]
    output_table: Option<String>,
}

/// The statistics of one sensor in one window.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct WindowStats {
    sensor_id: String,
    window_start_ms: i64,
    window_end_ms: i64,
    count: u64,
    avg_temperature: f64,
    max_temperature: f64,
}

#[derive(Clone)]
struct Stats;

impl AggregateFunction<SensorReading, (u64, f64, f64), (u64, f64, f64)> for Stats {
    fn create_accumulator(&self) -> (u64, f64, f64) {
        (0, 0.0, f64::NEG_INFINITY)
    }
    fn add(&self, r: SensorReading, acc: &mut (u64, f64, f64)) {
        acc.0 += 1;
        acc.1 += r.temperature;
        acc.2 = acc.2.max(r.temperature);
    }
    fn get_result(&self, acc: &(u64, f64, f64)) -> (u64, f64, f64) {
        *acc
    }
    fn merge(&self, a: (u64, f64, f64), b: (u64, f64, f64)) -> (u64, f64, f64) {
        (a.0 + b.0, a.1 + b.1, a.2.max(b.2))
    }
}

fn stats_line(s: &WindowStats, line: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        line,
        "{},{},{},{},{},{}",
        s.sensor_id,
        s.window_start_ms,
        s.window_end_ms,
        s.count,
        s.avg_temperature,
        s.max_temperature
    );
}

/// Orders one window's statistics hottest first (by average, then maximum, then id).
fn top_ten(
    _key: &i64,
    w: &TimeWindow,
    mut all: Vec<WindowStats>,
    out: &mut Vec<String>,
) -> FnResult {
    all.sort_by(|a, b| {
        b.avg_temperature
            .total_cmp(&a.avg_temperature)
            .then(b.max_temperature.total_cmp(&a.max_temperature))
            .then(a.sensor_id.cmp(&b.sensor_id))
    });
    for (rank, s) in all.iter().take(10).enumerate() {
        out.push(format!(
            "{},{},{},{},{},{}",
            w.start,
            w.end,
            rank + 1,
            s.sensor_id,
            s.avg_temperature,
            s.max_temperature
        ));
    }
    Ok(())
}

fn lines(dir: &Path) -> FileSink<String> {
    FileSink::new(dir, |l: &String, out: &mut String| out.push_str(l))
}

fn main() -> anyhow::Result<()> {
    weir_examples::init_logging();
    let args = Args::parse();
    checks::check_dirs(&args)?;
    #[cfg(feature = "kafka")]
    let kafka_io = args.kafka_brokers.as_ref().map(|brokers| kafka::KafkaIo {
        brokers: brokers.clone(),
        input_topic: args.input_topic.clone().unwrap_or_default(),
        output_topic: args.output_topic.clone(),
        alerts_topic: args.alerts_topic.clone(),
    });
    #[cfg(feature = "kafka")]
    if let (Some(io), Some(n)) = (&kafka_io, args.produce_readings) {
        return kafka::produce_readings(io, n, args.seed, args.parallelism);
    }
    let env = StreamExecutionEnvironment::with_properties(&args.define)?;
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    env.configure(|s| {
        if let Some(kind) = args.state_backend {
            s.job.state_backend.kind = kind;
        }
        if let Some(dir) = &args.rocksdb_local_dir {
            s.job.state_backend.rocksdb.local_dir = Some(dir.clone());
        }
    });
    if let Some(ms) = args.checkpoint_interval_ms {
        let configured = env.settings().checkpoint_defaults.dir;
        let dir = args.checkpoint_dir.clone().unwrap_or_else(|| {
            if !configured.is_empty() {
                return configured;
            }
            format!(
                "file://{}",
                std::env::temp_dir().join("weir-checkpoints").display()
            )
        });
        env.enable_checkpointing(Duration::from_millis(ms), &dir);
    }
    if let Some(path) = &args.from_savepoint {
        env.restore_from_savepoint(SavepointRestoreSettings {
            path: path.clone(),
            allow_non_restored_state: args.allow_non_restored_state,
        });
    }
    let mut points = args.fail_after_records.clone();
    if let Some((seed, count)) = args.fail_randomly {
        points.extend(random_points(seed, count, args.records));
    }
    points.sort_unstable();
    points.dedup();
    let faults = std::sync::Arc::new(Faults {
        seen: Default::default(),
        points,
        next: Default::default(),
        rate: args.throttle_records_per_sec,
        started: Instant::now(),
    });
    let use_faults = !faults.points.is_empty()
        || faults.rate.is_some()
        || args.stop_with_savepoint_after_records.is_some();
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(
        args.max_out_of_orderness_ms,
    ))
    .with_timestamp_assigner(|r: &SensorReading, _| r.ts_ms);

    let mut skipped = None;
    let policy = match args.on_bad_record {
        OnBadRecord::Skip => BadRecordPolicy::Skip,
        OnBadRecord::Fail => BadRecordPolicy::Fail,
    };
    #[cfg(feature = "kafka")]
    let from_kafka = kafka_io.as_ref().map(|io| {
        let (stream, counter) = kafka::readings(&env, io, strategy.clone(), policy);
        skipped = Some(counter);
        stream
    });
    #[cfg(not(feature = "kafka"))]
    let from_kafka: Option<DataStream<SensorReading>> = None;
    let readings: DataStream<SensorReading> = match (&args.input, from_kafka) {
        (_, Some(stream)) => stream,
        (Some(path), None) => {
            env.set_auto_watermark_interval(Duration::ZERO);
            let source = CsvSource::<SensorReading>::new(path).on_bad_record(policy);
            skipped = Some(source.skipped_counter());
            let raw = env.read_csv_with(source).uid("sensor-source");
            let p = raw.parallelism();
            raw.assign_timestamps_and_watermarks(strategy)
                .set_parallelism(p)
        }
        (None, None) => {
            let (n, seed) = (args.records, args.seed);
            env.from_generator(GeneratorSource::new(Some(n), move |id| {
                let (s, ts_ms, temperature) = sensor_reading(id, n, seed);
                SensorReading {
                    sensor_id: format!("sensor-{s:04}"),
                    ts_ms,
                    temperature,
                }
            }))
            .name("Sensor Generator")
            .uid("sensor-source")
            .assign_timestamps_and_watermarks(strategy)
        }
    };

    let readings = if use_faults {
        let f = faults.clone();
        readings
            .map(move |r: SensorReading| {
                f.pass();
                r
            })
            .name("Fail Points")
    } else {
        readings
    };
    let window = Duration::from_millis(args.window_ms);
    let stats = readings
        .key_by(|r: &SensorReading| r.sensor_id.clone())
        .window(TumblingEventTimeWindows::of(window))
        .aggregate_with_window(
            Stats,
            |k: &String, w: &TimeWindow, (count, sum, max): (u64, f64, f64)| WindowStats {
                sensor_id: k.clone(),
                window_start_ms: w.start,
                window_end_ms: w.end,
                count,
                avg_temperature: sum / count as f64,
                max_temperature: max,
            },
        )
        .uid("sensor-window-stats")
        .name("Sensor Window Stats");
    let window_count = CountingSink::default();
    let rate = args.sink_throttle_records_per_sec;
    // Throttled sinks run as tasks of their own, so the window task sees back-pressure
    // through its output buffers rather than sleeping itself.
    let own_task = |sink: weir_api::DataStreamSink| match rate {
        Some(_) => sink.disable_chaining(),
        None => sink,
    };
    own_task(stats.add_sink(faults::throttled(window_count.clone(), rate)))
        .name("Count Windows")
        .uid("sensor-window-count");
    if let Some(dir) = &args.output {
        own_task(stats.add_sink(faults::throttled(FileSink::new(dir, stats_line), rate)))
            .name("Window Results")
            .uid("sensor-window-files");
    }

    #[cfg(feature = "postgres")]
    if let (Some(url), Some(table)) = (&args.postgres_url, &args.output_table) {
        postgres::add_table_sink(&stats, url, table, args.checkpoint_interval_ms.is_some());
    }

    let threshold = args.alert_threshold;
    let alerts = readings
        .filter(move |r: &SensorReading| r.temperature > threshold)
        .uid("sensor-alerts")
        .name("Alerts")
        .map(|r: SensorReading| format!("{},{},{}", r.sensor_id, r.ts_ms, r.temperature));
    let alert_count = CountingSink::default();
    alerts
        .add_sink(alert_count.clone())
        .name("Count Alerts")
        .uid("sensor-alert-count");
    if let Some(dir) = &args.alerts_output {
        alerts
            .sink_to_files(lines(dir))
            .name("Alert Files")
            .uid("sensor-alert-files");
    }

    #[cfg(feature = "kafka")]
    if let Some(io) = &kafka_io {
        let checkpointing = args.checkpoint_interval_ms.is_some();
        let sink = |topic: &str| faults::SinkFaults {
            sink: kafka::lines_sink(io, topic, checkpointing),
            fail_before_commit: args.fail_before_commit,
            throttle: None,
        };
        if let Some(topic) = &io.output_topic {
            stats
                .map(|s: WindowStats| {
                    let mut line = String::new();
                    stats_line(&s, &mut line);
                    line
                })
                .add_sink(sink(topic))
                .name("Window Results to Kafka")
                .uid("sensor-window-kafka");
        }
        if let Some(topic) = &io.alerts_topic {
            alerts
                .add_sink(sink(topic))
                .name("Alerts to Kafka")
                .uid("sensor-alerts-kafka");
        }
    }

    let top = stats
        .key_by(|s: &WindowStats| s.window_start_ms)
        .window(TumblingEventTimeWindows::of(window))
        .process(top_ten)
        .uid("sensor-top10")
        .name("Top 10");
    let top_summary: Option<CollectSink<String>> = match &args.top_output {
        Some(dir) => {
            top.sink_to_files(lines(dir))
                .name("Top 10 Files")
                .uid("sensor-top10-files");
            None
        }
        None => Some(top.collect()),
    };

    let started = Instant::now();
    let client = env
        .execute_async("sensor-pipeline")
        .context("sensor pipeline failed")?;
    if let Some(n) = args.stop_with_savepoint_after_records {
        let seen = || faults.seen.load(std::sync::atomic::Ordering::Relaxed);
        while seen() < n {
            if let Some(result) = client.wait_timeout(Duration::from_millis(10)) {
                result.context("sensor pipeline failed")?;
                bail!("the job ended after {} readings, before --stop-with-savepoint-after-records {n}", seen());
            }
        }
        let dir = args.savepoint_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir()
                .join("weir-savepoints")
                .display()
                .to_string()
        });
        let savepoint = client
            .stop_with_savepoint(Some(&dir))
            .context("stop-with-savepoint failed")?;
        println!("savepoint: {savepoint}");
    }
    let result = client.wait().context("sensor pipeline failed")?;
    let secs = started.elapsed().as_secs_f64();
    println!("job {} finished in {secs:.2} s", result.job_id);
    println!("checkpoints completed: {}", result.checkpoints.len());
    println!("window results: {}", window_count.count());
    println!("alerts above {threshold}: {}", alert_count.count());
    if let Some(s) = skipped {
        println!(
            "malformed records skipped: {}",
            s.load(std::sync::atomic::Ordering::Relaxed)
        );
    }
    if let Some(top) = top_summary {
        summary::print_last_window(top.take());
    }
    Ok(())
}
