//! `weir-bench kafka`: the sensor rows of `sensor-window` pre-filled into a Kafka topic,
//! then read back (bounded, per-partition watermarks) -> 1 s tumbling windows per sensor ->
//! window results written to a topic exactly once, with checkpoints every
//! `--checkpoint-interval-ms` (default 1000). `seconds` runs from `execute` to the job's end,
//! the final checkpoint and its commits included.
//!
//! The broker is `--kafka-brokers`, or one this run starts with `scripts/kafka.sh` (and
//! stops at the end). Topics are created per run and named after the process.
//!
//! Every run reads the output topic as a `read_committed` consumer: `output_windows` window
//! results counting `output_readings` readings (equal to `records` unless some were late). With `--flink-python PY` the same run then runs Flink's side,
//! `bench/flink/kafka.py` (Flink SQL with `flink-connector-kafka`), on the same broker and
//! the same input topic into a fresh output topic, counts its windows too, and reports
//! Flink's line under `flink` and Weir's records/s over Flink's as `ratio`.

use anyhow::{Context, Result};
use std::process::Command;
use std::time::{Duration, Instant};
use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::StreamExecutionEnvironment;
pub(crate) use weir_bench::kafka_topics::create_topics;
use weir_bench::kafka_topics::read_committed;
use weir_bench::server_script::ScriptServer;
use weir_connectors::kafka::{
    Csv, DeliveryGuarantee, KafkaSerializer, KafkaSink, KafkaSource, Utf8,
};
use weir_examples::sensor_row;

/// What one run measures.
pub struct Settings {
    pub brokers: Option<String>,
    pub records: u64,
    pub parallelism: u16,
    pub checkpoint_interval_ms: u64,
    /// The Python of a PyFlink environment: also run Flink's side.
    pub flink_python: Option<std::path::PathBuf>,
}

/// Returns `given`, or a broker started for this run (stopped when the guard drops).
pub(crate) fn broker(given: Option<&str>) -> Result<(Option<ScriptServer>, String)> {
    match given {
        Some(b) => Ok((None, b.to_string())),
        None => {
            let (own, address) =
                weir_bench::server_script::start("kafka.sh", "WEIR_KAFKA_OWNER_PID")?;
            Ok((Some(own), address))
        }
    }
}

/// Writes a record's line as it is (the record's id only chooses its partition).
struct Line;

impl KafkaSerializer<(u64, String)> for Line {
    fn serialize(&self, record: &(u64, String), out: &mut Vec<u8>) -> Result<(), String> {
        out.extend_from_slice(record.1.as_bytes());
        Ok(())
    }
}

/// Writes the `n` sensor rows into `topic` (`2 * parallelism` partitions) as CSV lines.
/// Generator subtask `s` writes its contiguous range of ids, in ascending event time, to
/// partitions `2s` and `2s + 1` only (alternating blocks of 4096), so every partition is in
/// event-time order and no reading is late for the per-partition watermarks.
fn fill(brokers: &str, topic: &str, n: u64, parallelism: u16) -> Result<f64> {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    let p = u64::from(parallelism);
    env.from_generator(GeneratorSource::new(Some(n), move |id| {
        let (s, ts, t) = sensor_row(id, n, 0);
        (id, format!("{s},{ts},{t}"))
    }))
    .add_sink(
        KafkaSink::new(brokers, topic, Line)
            .partition(move |(id, _)| {
                let subtask = (u128::from(*id) * u128::from(p) / u128::from(n.max(1))) as u64;
                Some((subtask * 2 + (id / 4096) % 2) as i32)
            })
            .request_timeout(Duration::from_secs(120)),
    );
    let started = Instant::now();
    env.execute("kafka-fill")?;
    Ok(started.elapsed().as_secs_f64())
}

/// Runs the workload and returns its JSON line.
pub fn run(s: &Settings) -> Result<String> {
    let (_own, brokers) = broker(s.brokers.as_deref())?;
    let tag = format!("weir-bench-{}", std::process::id());
    let (input, output) = (format!("{tag}-in"), format!("{tag}-out"));
    create_topics(
        &brokers,
        &[(&input, i32::from(s.parallelism) * 2), (&output, 2)],
    )?;
    let fill_seconds = fill(&brokers, &input, s.records, s.parallelism)?;

    let dir = checkpoint_dir(&tag);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(s.parallelism);
    env.enable_checkpointing(
        Duration::from_millis(s.checkpoint_interval_ms),
        &format!("file://{}", dir.display()),
    );
    let strategy = WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(3))
        .with_timestamp_assigner(|r: &(u32, i64, f64), _| r.1);
    let source = KafkaSource::new(&brokers, Csv::<(u32, i64, f64)>::new())
        .topics([input.as_str()])
        .bounded()
        .with_watermarks(strategy);
    env.add_source(source, "Kafka Readings")
        .key_by(|r: &(u32, i64, f64)| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .aggregate_with_window(
            super::SensorStats,
            |k: &u32, w: &TimeWindow, (c, sum, max): (u64, f64, f64)| {
                format!("{k},{},{},{},{max},{c}", w.start, w.end, sum / c as f64)
            },
        )
        .add_sink(
            KafkaSink::new(&brokers, &output, Utf8)
                .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
                .transactional_id_prefix(&tag),
        );
    let started = Instant::now();
    let result = env.execute("kafka");
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let result = result?;
    let records_per_sec = s.records as f64 / seconds;
    let mut line = serde_json::json!({
        "workload": "kafka",
        "records": s.records,
        "seconds": seconds,
        "records_per_sec": records_per_sec,
        "fill_seconds": fill_seconds,
        "checkpoints": result.checkpoints.len(),
        "checkpoint_interval_ms": s.checkpoint_interval_ms,
    });
    let seen = read_output(&brokers, &output)?;
    line["output_windows"] = seen.windows.into();
    line["output_readings"] = seen.readings.into();
    if let Some(python) = &s.flink_python {
        let flink_output = format!("{tag}-flink-out");
        create_topics(&brokers, &[(&flink_output, 2)])?;
        let mut flink = run_flink(python, &brokers, &input, &flink_output, s)?;
        let seen = read_output(&brokers, &flink_output)?;
        flink["output_windows"] = seen.windows.into();
        flink["output_readings"] = seen.readings.into();
        if let Some(rate) = flink["records_per_sec"].as_f64() {
            line["ratio"] = (records_per_sec / rate).into();
        }
        line["flink"] = flink;
    }
    Ok(line.to_string())
}

/// Flink's side of the Kafka workloads.
pub(crate) const FLINK_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/flink/kafka.py");

/// What Flink's side of a Kafka workload reads, writes and how it checkpoints.
pub(crate) struct FlinkJob<'a> {
    pub brokers: &'a str,
    pub input: &'a str,
    pub output: &'a str,
    pub parallelism: u16,
    pub checkpoint_interval_ms: u64,
}

impl FlinkJob<'_> {
    /// `python FLINK_SCRIPT` with this job's arguments and `extra` ones.
    pub(crate) fn command(&self, python: &std::path::Path, extra: &[&str]) -> Command {
        let mut cmd = Command::new(python);
        cmd.arg(FLINK_SCRIPT)
            .args(["--brokers", self.brokers, "--input-topic", self.input])
            .args(["--output-topic", self.output])
            .args(["--parallelism", &self.parallelism.to_string()])
            .args([
                "--checkpoint-interval-ms",
                &self.checkpoint_interval_ms.to_string(),
            ])
            .args(extra);
        cmd
    }
}

/// The checkpoint directory of the run tagged `tag`.
pub(crate) fn checkpoint_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{tag}-checkpoints"))
}

/// Runs `bench/flink/kafka.py` with `python` and returns its JSON line.
fn run_flink(
    python: &std::path::Path,
    brokers: &str,
    input: &str,
    output: &str,
    s: &Settings,
) -> Result<serde_json::Value> {
    let job = FlinkJob {
        brokers,
        input,
        output,
        parallelism: s.parallelism,
        checkpoint_interval_ms: s.checkpoint_interval_ms,
    };
    let out = job
        .command(python, &["--records", &s.records.to_string()])
        .output()
        .with_context(|| format!("cannot run {} {FLINK_SCRIPT}", python.display()))?;
    crate::cluster_recovery::script_report(&out, FLINK_SCRIPT)
}

/// What a `read_committed` consumer sees in an output topic.
struct Output {
    /// Window results.
    windows: u64,
    /// Readings they count (the last field of each line): all of them unless some were
    /// dropped as late.
    readings: u64,
}

/// Reads the window results of `topic` as a `read_committed` consumer, every partition to
/// its end (the job has finished, so nothing is left open).
fn read_output(brokers: &str, topic: &str) -> Result<Output> {
    let mut out = Output {
        windows: 0,
        readings: 0,
    };
    read_committed(brokers, topic, Duration::from_secs(120), |payload| {
        let line = std::str::from_utf8(payload).unwrap_or_default();
        out.windows += 1;
        out.readings += line
            .rsplit(',')
            .next()
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(())
    })?;
    Ok(out)
}
