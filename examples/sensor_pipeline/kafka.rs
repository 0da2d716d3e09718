//! The sensor pipeline's Kafka mode: readings come from a topic (CSV lines
//! `sensor_id,ts_ms,temperature`, no header, any key, any number of partitions), with
//! per-partition watermarks; window results and alerts go to topics as exactly the lines
//! the file outputs have. With checkpoints the Kafka sinks are exactly-once.
//!
//! `--produce-readings N` fills the input topic with N readings of the seeded generator
//! and exits, so a run needs nothing but a broker.

use anyhow::Context as _;
use std::time::Duration;
use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::{BadRecordPolicy, DataStream, StreamExecutionEnvironment};
use weir_connectors::kafka::{Csv, DeliveryGuarantee, KafkaSink, KafkaSource, Utf8};
use weir_examples::{sensor_reading, SensorReading};

/// Where the Kafka mode reads and writes.
pub struct KafkaIo {
    pub brokers: String,
    pub input_topic: String,
    pub output_topic: Option<String>,
    pub alerts_topic: Option<String>,
}

/// Reads the readings of the input topic to its current end, with per-partition
/// watermarks from `strategy`.
pub fn readings(
    env: &StreamExecutionEnvironment,
    io: &KafkaIo,
    strategy: WatermarkStrategy<SensorReading>,
    policy: BadRecordPolicy,
) -> (
    DataStream<SensorReading>,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let source = KafkaSource::new(&io.brokers, Csv::<SensorReading>::new())
        .topics([io.input_topic.as_str()])
        .bounded()
        .on_bad_record(policy)
        .with_watermarks(strategy);
    let skipped = source.skipped_counter();
    let stream = env
        .add_source(source, "Kafka Readings")
        .uid("sensor-source");
    (stream, skipped)
}

/// A sink of text lines into `topic`: exactly-once when the job checkpoints (transactional
/// ids prefixed by `sensor-pipeline-<topic>`), at-least-once otherwise.
pub fn lines_sink(io: &KafkaIo, topic: &str, checkpointing: bool) -> KafkaSink<String> {
    let guarantee = if checkpointing {
        DeliveryGuarantee::ExactlyOnce
    } else {
        DeliveryGuarantee::AtLeastOnce
    };
    KafkaSink::new(&io.brokers, topic, Utf8)
        .delivery_guarantee(guarantee)
        .transactional_id_prefix(&format!("sensor-pipeline-{topic}"))
        .key(|line: &String| line.split(',').next().map(|k| k.as_bytes().to_vec()))
}

/// Writes `n` generator readings (seed `seed`) into the input topic, keyed by sensor.
pub fn produce_readings(
    io: &KafkaIo,
    n: u64,
    seed: u64,
    parallelism: Option<u16>,
) -> anyhow::Result<()> {
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = parallelism {
        env.set_parallelism(p);
    }
    env.from_generator(GeneratorSource::new(Some(n), move |id| {
        let (s, ts_ms, temperature) = sensor_reading(id, n, seed);
        format!("sensor-{s:04},{ts_ms},{temperature}")
    }))
    .add_sink(
        KafkaSink::new(&io.brokers, &io.input_topic, Utf8)
            .request_timeout(Duration::from_secs(60))
            .key(|line: &String| line.split(',').next().map(|k| k.as_bytes().to_vec())),
    )
    .name("Kafka Readings");
    env.execute("sensor-readings-producer")
        .with_context(|| format!("cannot fill topic '{}'", io.input_topic))?;
    println!("produced {n} readings into topic '{}'", io.input_topic);
    Ok(())
}
