//! `weir-bench kafka-latency`: end-to-end latency of an exactly-once Kafka pipeline, from a
//! record produced into the input topic to the same record visible to a `read_committed`
//! consumer of the output topic. A producer writes `--records` records at `--rate` records
//! per second, each carrying its production time; the job (unbounded Kafka source ->
//! exactly-once Kafka sink, checkpoints every `--checkpoint-interval-ms`, default 1000)
//! copies them; a consumer measures each record's latency. With exactly-once output a
//! record becomes visible when the checkpoint after it completes, so latency is about half
//! the interval plus the commit on average. One warm-up record goes through first, so the
//! job's start (deployment, fencing its transactional ids) is not measured.
//!
//! With `--flink-python PY` the same run then measures Flink's copy job
//! (`bench/flink/kafka.py --copy`: Flink SQL, `flink-connector-kafka`, the same checkpoint
//! interval and parallelism) on fresh topics of the same broker, reported under `flink`.

use super::kafka::{broker, create_topics, FlinkJob, FLINK_SCRIPT};
use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use weir_api::StreamExecutionEnvironment;
use weir_connectors::kafka::{DeliveryGuarantee, KafkaSink, KafkaSource, Utf8};

/// What one run measures.
pub struct Settings {
    pub brokers: Option<String>,
    pub records: u64,
    pub rate: u64,
    pub parallelism: u16,
    pub checkpoint_interval_ms: u64,
    /// The Python of a PyFlink environment: also measure Flink's copy job.
    pub flink_python: Option<std::path::PathBuf>,
}

/// Produces the one warm-up record.
fn produce_warm_up(brokers: &str, topic: &str) -> Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    producer
        .send(BaseRecord::<(), _>::to(topic).payload("warm-up,0"))
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Produces `n` records at `rate` per second into `topic`, each `"<seq>,<micros>"`.
fn produce_paced(brokers: &str, topic: &str, n: u64, rate: u64) -> Result<()> {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .create()?;
    let started = Instant::now();
    for seq in 0..n {
        let due = started + Duration::from_secs_f64(seq as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let value = format!("{seq},{}", crate::latency_sink::now_ns() / 1000);
        while let Err((e, _)) = producer.send(BaseRecord::<(), _>::to(topic).payload(&value)) {
            if started.elapsed() > Duration::from_secs(600) {
                bail!("cannot produce: {e}");
            }
            producer.poll(Duration::from_millis(1));
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60))?;
    Ok(())
}

/// Reads `n` records of `topic` as `read_committed`, returning each one's latency in µs;
/// `warm` is told when the warm-up record arrived.
fn consume_latencies(
    brokers: &str,
    topic: &str,
    n: u64,
    warm: std::sync::mpsc::Sender<()>,
) -> Result<Vec<u64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-reader"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut latencies = Vec::with_capacity(n as usize);
    let deadline = Instant::now() + Duration::from_secs(600);
    while (latencies.len() as u64) < n {
        if Instant::now() > deadline {
            bail!("only {} of {n} records became visible", latencies.len());
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        let seen = crate::latency_sink::now_ns() / 1000;
        let value = std::str::from_utf8(m.payload().unwrap_or_default()).unwrap_or_default();
        if value.starts_with("warm-up,") {
            let _ = warm.send(());
        } else if let Some(sent) = value.split(',').nth(1).and_then(|s| s.parse::<u64>().ok()) {
            latencies.push(seen.saturating_sub(sent));
        }
    }
    Ok(latencies)
}

/// The copy job under measurement.
enum Job {
    Weir(weir_api::JobClient),
    /// `bench/flink/kafka.py --copy`, which cancels its job when its stdin closes.
    Flink(Child),
}

impl Job {
    fn stop(self) -> Result<()> {
        match self {
            Job::Weir(client) => {
                client.cancel()?;
                let _ = client.wait();
            }
            Job::Flink(mut child) => {
                drop(child.stdin.take());
                let deadline = Instant::now() + Duration::from_secs(60);
                while child.try_wait()?.is_none() {
                    if Instant::now() > deadline {
                        child.kill()?;
                        bail!("Flink's copy job did not stop within 60 s of its stdin closing");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    }
}

/// Starts Weir's copy job from `input` to `output`.
fn start_weir(s: &Settings, brokers: &str, tag: &str, input: &str, output: &str) -> Result<Job> {
    let dir = crate::kafka::checkpoint_dir(tag);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(s.parallelism);
    env.enable_checkpointing(
        Duration::from_millis(s.checkpoint_interval_ms),
        &format!("file://{}", dir.display()),
    );
    let source = KafkaSource::new(brokers, Utf8)
        .topics([input])
        .partition_discovery_interval(None);
    env.add_source(source, "Kafka Input").add_sink(
        KafkaSink::new(brokers, output, Utf8)
            .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
            .transactional_id_prefix(tag),
    );
    Ok(Job::Weir(env.execute_async("kafka-latency")?))
}

/// Starts Flink's copy job (`bench/flink/kafka.py --copy`) with `python`.
fn start_flink(
    python: &Path,
    s: &Settings,
    brokers: &str,
    input: &str,
    output: &str,
) -> Result<Job> {
    let job = FlinkJob {
        brokers,
        input,
        output,
        parallelism: s.parallelism,
        checkpoint_interval_ms: s.checkpoint_interval_ms,
    };
    let child = job
        .command(python, &["--copy", "--records", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {} {FLINK_SCRIPT}", python.display()))?;
    Ok(Job::Flink(child))
}

/// Measures one engine's copy job on fresh topics named after `tag`.
fn measure(
    s: &Settings,
    brokers: &str,
    tag: &str,
    python: Option<&Path>,
) -> Result<serde_json::Value> {
    let (input, output) = (format!("{tag}-in"), format!("{tag}-out"));
    create_topics(brokers, &[(&input, i32::from(s.parallelism)), (&output, 1)])?;
    let job = match python {
        None => start_weir(s, brokers, tag, &input, &output)?,
        Some(python) => start_flink(python, s, brokers, &input, &output)?,
    };
    let (warm_tx, warm) = std::sync::mpsc::channel();
    let reader = {
        let (brokers, output, n) = (brokers.to_string(), output.clone(), s.records);
        std::thread::spawn(move || consume_latencies(&brokers, &output, n, warm_tx))
    };
    produce_warm_up(brokers, &input)?;
    if warm.recv_timeout(Duration::from_secs(300)).is_err() {
        let _ = job.stop();
        bail!("the warm-up record did not come through within 300 s");
    }
    produce_paced(brokers, &input, s.records, s.rate)?;
    let latencies = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reader panicked"));
    job.stop()?;
    let mut latencies = latencies??;
    let _ = std::fs::remove_dir_all(crate::kafka::checkpoint_dir(tag));
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    Ok(serde_json::json!({
        "p50_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
    }))
}

/// Runs the measurement (Weir's, then Flink's with `flink_python`) and returns its JSON line.
pub fn run(s: &Settings) -> Result<String> {
    let (_own, brokers) = broker(s.brokers.as_deref())?;
    let tag = format!("weir-bench-latency-{}", std::process::id());
    let mut line = measure(s, &brokers, &tag, None)?;
    line["workload"] = "kafka-latency".into();
    line["records"] = s.records.into();
    line["rate"] = s.rate.into();
    line["checkpoint_interval_ms"] = s.checkpoint_interval_ms.into();
    if let Some(python) = &s.flink_python {
        line["flink"] = measure(s, &brokers, &format!("{tag}-flink"), Some(python))?;
    }
    Ok(line.to_string())
}
