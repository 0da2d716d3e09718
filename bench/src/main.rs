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
//! - `exchange`: 100-byte records -> keyed exchange between the two TaskManagers -> discard;
//!   the JSON line adds `mb_per_sec` (payload bytes through the exchange). With
//!   `--internal-tls` the connection between them speaks mutual TLS.
//! - `keyed-state`: rows `(k, twelve u64)` with `k` = the row's id modulo `--keys`
//!   (default ten million) -> key by `k` -> reduce (XOR of the values: one state read and
//!   one write per row) -> discard. With ten million keys the state is about 1 GB; the
//!   JSON line adds `keys`, `state_reads_per_sec` and `state_writes_per_sec`.
//! - `latency`: 100-byte records stamped with their creation time at a fixed `--rate`,
//!   keyed exchange, and a sink that measures end-to-end latency; run with
//!   `--buffer-timeout-ms` 0, 1 and 100. The JSON line adds `rate`, `buffer_timeout_ms`,
//!   `p50_ms` and `p99_ms`.
//!
//! - `kafka`: the sensor rows pre-filled into a Kafka topic -> 1 s windows per sensor ->
//!   a Kafka topic, exactly once with checkpoints every `--checkpoint-interval-ms` (default
//!   1000) against `--kafka-brokers` (or a broker started with `scripts/kafka.sh`); see
//!   `kafka.rs`. With `--flink-python PY` the same run also runs Flink's side
//!   (`bench/flink/kafka.py`) on the same broker and input and reports the ratio.
//! - `kafka-latency`: `--records` records produced at `--rate` into a topic, copied by an
//!   exactly-once Kafka job, and timed from production to visibility for `read_committed`
//!   (`p50_ms`, `p99_ms`, `max_ms`; see `kafka_latency.rs`), and Flink's copy job after it
//!   with `--flink-python PY`.
//! - `cluster-recovery`: a standalone cluster as processes (`weir jobmanager`, three
//!   `weir taskmanager`s with one slot each) running the `sensor_pipeline` example at
//!   parallelism 2, throttled to `--rate` readings per second per worker, with checkpoints
//!   every `--checkpoint-interval-ms` (default 500); reports the time from `weir run` to
//!   the first output and from `kill -9` of a TaskManager to the first output after the
//!   restore (see `cluster_recovery.rs`). With `--kill jobmanager` the cluster is highly
//!   available (ZooKeeper, two JobManagers) and the leader is killed instead (see
//!   `cluster_failover.rs`).
//!
//! - `scaling`: `stateless`, `keyed-count` and `sensor-window` at each parallelism of
//!   `--parallelisms` (default 1, 2, 4, … up to the cores) with `--records` rows per
//!   subtask; a JSON line per run with its speedup and efficiency, then a Markdown table
//!   (see `scaling.rs`).
//!
//! - `nexmark`: a Nexmark query (`--query q0` … `q22`) over `--events N` generated events
//!   (see `nexmark.rs`).
//!
//! `--taskmanagers N` sets the local mini-cluster's TaskManagers (default 2).
//!
//! `--checkpoint-interval-ms N` takes exactly-once checkpoints every N ms (into a
//! temporary directory, or `--checkpoint-dir URL` such as `s3://bucket/path`) and adds the
//! number of completed checkpoints, their median and largest duration, their largest size,
//! the median of the bytes each stored (less than its size when RocksDB checkpoints are
//! incremental, `--incremental true`, the default) and the
//! longest alignment to the JSON line. With
//! `--fail-after-records K` as well (`sensor-window`), a task fails once at record K, the
//! job restarts at once from the latest checkpoint, and `recovery_ms` is the time from the
//! failure to the first window result after the restore.

use anyhow::{bail, Result};
use clap::{Parser, ValueEnum};
use latency_sink::{now_ns, quantile_ms, LatencySink};
use recovery_probe::{fail_once_at, RecoveryProbe};
use std::time::{Duration, Instant};
use weir_api::sink::DiscardingSink;
use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::{AggregateFunction, StreamExecutionEnvironment};
use weir_examples::sensor_row;

mod cluster_failover;
mod cluster_recovery;
mod internal_tls;
mod kafka;
mod kafka_latency;
mod latency_sink;
mod nexmark;
mod recovery_probe;
mod report;
mod scaling;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Workload {
    /// Generator -> filter -> discard.
    Stateless,
    /// Generator -> key by -> running count per key -> discard.
    KeyedCount,
    /// Sensor rows -> 1 s tumbling event-time windows per sensor -> discard.
    SensorWindow,
    /// 100-byte records through a keyed exchange between two TaskManagers.
    Exchange,
    /// End-to-end latency of a keyed exchange at a fixed input rate.
    Latency,
    /// Read-modify-write of a 96-byte value per key over many keys (large state).
    KeyedState,
    /// Submission and recovery times of a standalone cluster of processes.
    ClusterRecovery,
    /// Sensor rows from Kafka -> 1 s windows per sensor -> Kafka, exactly once.
    Kafka,
    /// Produced -> visible to `read_committed` latency through an exactly-once Kafka job.
    KafkaLatency,
    /// `stateless`, `keyed-count` and `sensor-window` at rising parallelism.
    Scaling,
    /// A Nexmark query over generated events.
    Nexmark,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Stateless => "stateless",
            Workload::KeyedCount => "keyed-count",
            Workload::SensorWindow => "sensor-window",
            Workload::Exchange => "exchange",
            Workload::Latency => "latency",
            Workload::KeyedState => "keyed-state",
            Workload::ClusterRecovery => "cluster-recovery",
            Workload::Kafka => "kafka",
            Workload::KafkaLatency => "kafka-latency",
            Workload::Scaling => "scaling",
            Workload::Nexmark => "nexmark",
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
    /// Input rate in records per second (`latency` only).
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Network buffer timeout in milliseconds (default: the runtime's, 100 ms).
    #[arg(long)]
    buffer_timeout_ms: Option<u64>,
    /// Take an exactly-once checkpoint this often (off by default), into a temporary
    /// directory removed afterwards.
    #[arg(long)]
    checkpoint_interval_ms: Option<u64>,
    /// Where the checkpoints go instead of the temporary directory: a storage URL such as
    /// `s3://bucket/path` (S3 settings from the AWS variables or `WEIR_S3_*`); kept.
    #[arg(long, value_name = "URL", requires = "checkpoint_interval_ms")]
    checkpoint_dir: Option<String>,
    /// `sensor-window` with checkpoints: fail a task once, at this record, restart at once
    /// and report the time from the failure to the first window result after the restore.
    #[arg(long)]
    fail_after_records: Option<u64>,
    /// Keyed state backend: `memory` or `rocksdb` (needs the cargo feature `rocksdb`).
    #[arg(long, value_name = "memory|rocksdb", default_value = "memory")]
    state_backend: weir_api::StateBackendKind,
    /// Number of distinct keys (`keyed-state` only).
    #[arg(long, default_value_t = 10_000_000)]
    keys: u64,
    /// RocksDB checkpoints upload only new files (`state.backend.incremental`); `false`
    /// writes full snapshots.
    #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
    incremental: bool,
    /// The `weir` binary (`cluster-recovery`; default: beside this one).
    #[arg(long, value_name = "PATH")]
    weir: Option<std::path::PathBuf>,
    /// The job program (`cluster-recovery`; default: `examples/sensor_pipeline` beside this
    /// binary).
    #[arg(long, value_name = "PATH")]
    program: Option<std::path::PathBuf>,
    /// The process `cluster-recovery` kills: a TaskManager, or the leading JobManager of a
    /// highly available cluster (with ZooKeeper started by scripts/zookeeper.sh).
    #[arg(long, value_enum, default_value = "taskmanager")]
    kill: cluster_recovery::Kill,
    /// Kafka bootstrap servers (`kafka`; default: a broker started with scripts/kafka.sh).
    #[arg(long, value_name = "ADDR")]
    kafka_brokers: Option<String>,
    /// Python of a PyFlink environment (`kafka`, `kafka-latency`, `cluster-recovery --kill
    /// jobmanager`): also run Flink's side of the workload (`bench/flink/kafka.py`,
    /// `bench/flink/ha_failover.py`) on the same broker or ZooKeeper, and report the ratio.
    #[arg(long, value_name = "PATH")]
    flink_python: Option<std::path::PathBuf>,
    /// Data connections between the mini-cluster's TaskManagers speak mutual TLS
    /// (`security.ssl.internal.*`) with certificates made for the run.
    #[arg(long)]
    internal_tls: bool,
    /// TaskManagers of the local mini-cluster (each with as many slots as it needs).
    #[arg(long, default_value_t = 2)]
    taskmanagers: u32,
    /// `scaling`: the parallelisms to measure, ascending (default 1, 2, 4, … up to the
    /// machine's cores, and the core count).
    #[arg(long, value_delimiter = ',')]
    parallelisms: Vec<u16>,
    /// `scaling`: the workloads to measure (default stateless, keyed-count, sensor-window).
    #[arg(long, value_enum, value_delimiter = ',')]
    workloads: Vec<Workload>,
    /// `nexmark`: the query, `q0` to `q22`.
    #[arg(long, value_name = "qN")]
    query: Option<String>,
    /// `nexmark`: the number of events (default: `--records`).
    #[arg(long)]
    events: Option<u64>,
}

/// Bytes of one `exchange` record on the wire: the key (up to 3 bytes), a zero timestamp
/// (1 byte) and 96 payload bytes.
const EXCHANGE_RECORD_BYTES: u64 = 100;

/// A 100-byte record: key, creation time (ns since the epoch) and payload.
type Record100 = (u32, u64, [u8; 32], [u8; 32], [u8; 32]);

#[inline]
fn record100(id: u64, created_ns: u64) -> Record100 {
    let b = (id as u8).wrapping_mul(31);
    (
        (mix(id) % 10_000) as u32,
        created_ns,
        [b; 32],
        [b ^ 0x5a; 32],
        [b ^ 0xa5; 32],
    )
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
pub(crate) struct SensorStats;

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

/// A `keyed-state` row: key and 96 bytes of pseudo-random payload.
type StateRow = (u64, [u64; 12]);

#[inline]
fn state_row(id: u64, keys: u64) -> StateRow {
    let mut v = [0u64; 12];
    for (i, x) in v.iter_mut().enumerate() {
        *x = mix(id.wrapping_mul(13).wrapping_add(i as u64));
    }
    (id % keys, v)
}

/// Adds the job of `workload` to `env`: `n` generated rows into a discarding (or
/// measuring) sink.
fn build(
    env: &StreamExecutionEnvironment,
    workload: Workload,
    n: u64,
    (rate, keys): (u64, u64),
    latency: &LatencySink,
    fail_after: Option<u64>,
) {
    match workload {
        // Run processes or jobs of their own instead of this one (see `main`).
        Workload::ClusterRecovery
        | Workload::Kafka
        | Workload::KafkaLatency
        | Workload::Scaling
        | Workload::Nexmark => {}
        Workload::KeyedState => {
            env.from_generator(GeneratorSource::new(Some(n), move |id| state_row(id, keys)))
                .key_by(|r: &StateRow| r.0)
                .reduce(|a: StateRow, b: StateRow| {
                    let mut v = a.1;
                    for (x, y) in v.iter_mut().zip(b.1) {
                        *x ^= y;
                    }
                    (a.0, v)
                })
                .add_sink(DiscardingSink);
        }
        Workload::Exchange => {
            env.from_generator(GeneratorSource::new(Some(n), |id| record100(id, 0)))
                .key_by(|r: &Record100| r.0)
                .add_sink(DiscardingSink);
        }
        Workload::Latency => {
            env.from_generator(
                GeneratorSource::new(Some(n), |id| record100(id, now_ns())).with_rate_limit(rate),
            )
            .key_by(|r: &Record100| r.0)
            .add_sink(latency.clone());
        }
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
        Workload::SensorWindow => build_sensor_window(env, n, fail_after),
    }
}

/// Builds `sensor-window`: `n` sensor rows into 1 s tumbling event-time windows per sensor,
/// failing once at record `fail_after` (if given) and then probing for the recovery.
fn build_sensor_window(env: &StreamExecutionEnvironment, n: u64, fail_after: Option<u64>) {
    let readings = env.from_generator(GeneratorSource::new(Some(n), move |id| {
        sensor_row(id, n, 0)
    }));
    let readings = match fail_after {
        Some(at) => fail_once_at(readings, at),
        None => readings,
    };
    let windows = readings
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
        );
    if fail_after.is_some() {
        windows.add_sink(RecoveryProbe);
    } else {
        windows.add_sink(DiscardingSink);
    }
}

pub(crate) fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs one workload and prints its JSON line.
fn main() -> Result<()> {
    let args = Args::parse();
    check_args(&args)?;
    if args.workload == Workload::ClusterRecovery {
        return run_cluster_recovery(&args);
    }
    if args.workload == Workload::Scaling {
        return scaling::main(&args);
    }
    if args.workload == Workload::Nexmark {
        return nexmark::main(&args);
    }
    if args.workload == Workload::KafkaLatency {
        let line = kafka_latency::run(&kafka_latency::Settings {
            brokers: args.kafka_brokers.clone(),
            records: args.records,
            rate: args.rate,
            parallelism: args.parallelism,
            checkpoint_interval_ms: args.checkpoint_interval_ms.unwrap_or(1000),
            flink_python: args.flink_python.clone(),
        })?;
        println!("{line}");
        return Ok(());
    }
    if args.workload == Workload::Kafka {
        let line = kafka::run(&kafka::Settings {
            brokers: args.kafka_brokers.clone(),
            records: args.records,
            parallelism: args.parallelism,
            checkpoint_interval_ms: args.checkpoint_interval_ms.unwrap_or(1000),
            flink_python: args.flink_python.clone(),
        })?;
        println!("{line}");
        if let Some(kib) = peak_rss_kib() {
            eprintln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
        }
        return Ok(());
    }
    let env = StreamExecutionEnvironment::new();
    let checkpoint_dir = configure(&env, &args)?;
    let latency = LatencySink::default();
    if let Some(at) = args.fail_after_records {
        configure_injected_failure(&env, &args, at)?;
    }
    build(
        &env,
        args.workload,
        args.records,
        (args.rate, args.keys),
        &latency,
        args.fail_after_records,
    );
    let started = Instant::now();
    let result = env.execute(args.workload.name());
    let seconds = started.elapsed().as_secs_f64();
    if let Some(dir) = &checkpoint_dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let line = report::result_line(&args, &env, &latency, &result?, seconds);
    println!("{line}");
    if let Some(kib) = peak_rss_kib() {
        eprintln!("peak_rss_mib={:.1}", kib as f64 / 1024.0);
    }
    Ok(())
}

/// Rejects the argument values that every workload refuses.
fn check_args(args: &Args) -> Result<()> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    if args.keys == 0 {
        bail!("--keys must be at least 1");
    }
    if args.parallelism == 0 {
        bail!("--parallelism must be at least 1");
    }
    if args.taskmanagers == 0 {
        bail!("--taskmanagers must be at least 1");
    }
    if matches!(
        args.workload,
        Workload::Latency | Workload::ClusterRecovery | Workload::KafkaLatency
    ) && args.rate == 0
    {
        bail!("--rate must be at least 1");
    }
    Ok(())
}

/// Runs `cluster-recovery` (processes, not a job in this one) and prints its JSON line.
fn run_cluster_recovery(args: &Args) -> Result<()> {
    let line = cluster_recovery::run(&cluster_recovery::Settings {
        weir: args.weir.clone(),
        program: args.program.clone(),
        records: args.records,
        rate: args.rate,
        checkpoint_interval_ms: args.checkpoint_interval_ms.unwrap_or(500),
        kill: args.kill,
        flink_python: args.flink_python.clone(),
    })?;
    println!("{line}");
    Ok(())
}

/// Sets up the mini-cluster, state backend, buffer timeout and checkpoints from the
/// arguments; returns the temporary checkpoint directory to remove afterwards, if any.
pub(crate) fn configure(
    env: &StreamExecutionEnvironment,
    args: &Args,
) -> Result<Option<std::path::PathBuf>> {
    env.set_parallelism(args.parallelism)
        .set_local_taskmanagers(args.taskmanagers)
        .set_state_backend(args.state_backend);
    env.configure(|s| s.job.state_backend.incremental = args.incremental);
    if args.internal_tls {
        let tls = internal_tls::ephemeral()?;
        env.configure(|s| s.taskmanager.internal_tls = Some(tls));
    }
    if let Some(ms) = args.buffer_timeout_ms {
        env.set_buffer_timeout(Duration::from_millis(ms));
    }
    Ok(match args.checkpoint_interval_ms {
        Some(0) => bail!("--checkpoint-interval-ms must be at least 1"),
        Some(ms) if args.checkpoint_dir.is_some() => {
            let url = args.checkpoint_dir.as_deref().unwrap_or_default();
            env.enable_checkpointing(Duration::from_millis(ms), url);
            None
        }
        Some(ms) => {
            let dir =
                std::env::temp_dir().join(format!("weir-bench-checkpoints-{}", std::process::id()));
            env.enable_checkpointing(
                Duration::from_millis(ms),
                &format!("file://{}", dir.display()),
            );
            Some(dir)
        }
        None => None,
    })
}

/// Checks `--fail-after-records` against the other arguments and lets the job restart
/// once, at once, from the latest checkpoint.
fn configure_injected_failure(
    env: &StreamExecutionEnvironment,
    args: &Args,
    at: u64,
) -> Result<()> {
    if args.workload != Workload::SensorWindow || args.checkpoint_interval_ms.is_none() {
        bail!("--fail-after-records needs sensor-window with --checkpoint-interval-ms");
    }
    if at == 0 || at > args.records {
        bail!("--fail-after-records must be within 1..=--records");
    }
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 1,
            delay: Duration::ZERO,
        })
    });
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
    fn exchange_records_are_one_hundred_bytes_on_the_wire() {
        let mut buf = Vec::new();
        weir_api_codec_len(&record100(7, 0), &mut buf);
        // Key below 10,000 (1 to 3 varint bytes), zero timestamp (1 byte), 96 payload bytes.
        assert!((98..=100).contains(&buf.len()), "{}", buf.len());
    }

    fn weir_api_codec_len(r: &Record100, buf: &mut Vec<u8>) {
        let cfg = bincode::config::standard();
        buf.extend(bincode::serde::encode_to_vec(r, cfg).unwrap());
    }

    #[test]
    fn keyed_state_rows_cover_every_key_with_about_a_hundred_bytes_of_value() {
        let keys: std::collections::HashSet<u64> =
            (0..1_000).map(|id| state_row(id, 100).0).collect();
        assert_eq!(keys.len(), 100);
        let cfg = bincode::config::standard();
        let len = bincode::serde::encode_to_vec(state_row(5, 100).1, cfg)
            .unwrap()
            .len();
        assert!((90..=110).contains(&len), "{len}");
    }

    #[test]
    fn about_half_of_the_rows_pass_the_stateless_filter() {
        let pass = (0..100_000).filter(|id| datagen_row(*id).2 < 500).count();
        assert!((48_000..52_000).contains(&pass), "{pass}");
    }
}
