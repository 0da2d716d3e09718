//! `weir-bench kafka`: the sensor rows of `sensor-window` pre-filled into a Kafka topic,
//! then read back (bounded, per-partition watermarks) -> 1 s tumbling windows per sensor ->
//! window results written to a topic exactly once, with checkpoints every
//! `--checkpoint-interval-ms` (default 1000). `seconds` runs from `execute` to the job's end,
//! the final checkpoint and its commits included.
//!
//! The broker is `--kafka-brokers`, or one this run starts with `scripts/kafka.sh` (and
//! stops at the end). Topics are created per run and named after the process.

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use std::process::Command;
use std::time::{Duration, Instant};
use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::StreamExecutionEnvironment;
use weir_connectors::kafka::{Csv, DeliveryGuarantee, KafkaSink, KafkaSource, Utf8};
use weir_examples::sensor_row;

/// What one run measures.
pub struct Settings {
    pub brokers: Option<String>,
    pub records: u64,
    pub parallelism: u16,
    pub checkpoint_interval_ms: u64,
}

/// A broker this run started, stopped when dropped.
pub(crate) struct OwnBroker(String);

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.0)
            .output();
    }
}

fn script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh")
}

/// Starts a broker with `scripts/kafka.sh`; returns it and its address.
fn start_broker() -> Result<(OwnBroker, String)> {
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .env("WEIR_KAFKA_OWNER_PID", std::process::id().to_string())
        .output()
        .context("cannot run scripts/kafka.sh")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !out.status.success() {
        bail!(
            "scripts/kafka.sh start failed: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("dir="))
        .unwrap_or_default();
    let address = text.lines().last().unwrap_or_default().trim().to_string();
    Ok((OwnBroker(dir.to_string()), address))
}

/// Returns `given`, or a broker started for this run (stopped when the guard drops).
pub(crate) fn broker(given: Option<&str>) -> Result<(Option<OwnBroker>, String)> {
    match given {
        Some(b) => Ok((None, b.to_string())),
        None => {
            let (own, address) = start_broker()?;
            Ok((Some(own), address))
        }
    }
}

/// Creates `topics` (name, partitions).
pub(crate) fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<_> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for r in futures::executor::block_on(admin.create_topics(&new, &options))? {
        r.map_err(|(t, e)| anyhow::anyhow!("cannot create topic {t}: {e}"))?;
    }
    Ok(())
}

/// Writes the `n` sensor rows into `topic` as CSV lines.
fn fill(brokers: &str, topic: &str, n: u64, parallelism: u16) -> Result<f64> {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism);
    env.from_generator(GeneratorSource::new(Some(n), move |id| {
        let (s, ts, t) = sensor_row(id, n, 0);
        format!("{s},{ts},{t}")
    }))
    .add_sink(KafkaSink::new(brokers, topic, Utf8).request_timeout(Duration::from_secs(120)));
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

    let dir = std::env::temp_dir().join(format!("{tag}-checkpoints"));
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
    Ok(serde_json::json!({
        "workload": "kafka",
        "records": s.records,
        "seconds": seconds,
        "records_per_sec": s.records as f64 / seconds,
        "fill_seconds": fill_seconds,
        "checkpoints": result.checkpoints.len(),
        "checkpoint_interval_ms": s.checkpoint_interval_ms,
    })
    .to_string())
}
