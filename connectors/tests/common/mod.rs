//! A real Kafka broker for the tests of one test binary, started through
//! `scripts/kafka.sh` on loopback with its own ports and directory, and stopped by the
//! script's watcher when the test process exits (even when a test fails); plus helpers
//! to create topics, produce and read records.

#![allow(dead_code)]

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The broker of this test binary.
pub struct Broker {
    /// Its bootstrap address, `127.0.0.1:PORT`.
    pub bootstrap: String,
    /// Its run directory.
    pub dir: PathBuf,
}

/// Returns this test binary's broker, starting it on first use.
pub fn broker() -> &'static Broker {
    static BROKER: OnceLock<Broker> = OnceLock::new();
    BROKER.get_or_init(|| {
        // A start can fail when the machine is loaded (the readiness wait runs out): one
        // more try, then the failure with both outputs.
        let mut failures = Vec::new();
        for _ in 0..2 {
            match start() {
                Ok(b) => return b,
                Err(e) => failures.push(e),
            }
        }
        panic!(
            "scripts/kafka.sh start failed twice:\n{}",
            failures.join("\n---\n")
        );
    })
}

/// Starts a broker with `scripts/kafka.sh start`; the error is the script's output.
fn start() -> Result<Broker, String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("start")
        .env("WEIR_KAFKA_OWNER_PID", std::process::id().to_string())
        .output()
        .map_err(|e| format!("cannot run scripts/kafka.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dir="))
        .ok_or_else(|| format!("no dir= line in:\n{stdout}"))?;
    let bootstrap = stdout.lines().last().unwrap_or_default().trim();
    Ok(Broker {
        bootstrap: bootstrap.to_string(),
        dir: PathBuf::from(dir),
    })
}

/// Creates `topic` with `partitions` partitions.
pub fn create_topic(topic: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("admin client");
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        futures::executor::block_on(admin.create_topics(&[new], &options)).expect("create topics");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e:?}"));
    }
}

/// Produces `values` to `topic`, each `(partition, timestamp, value)`, and waits until
/// all are acknowledged.
pub fn produce(topic: &str, values: &[(i32, Option<i64>, Vec<u8>)]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for (partition, ts, value) in values {
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .partition(*partition)
            .payload(value.as_slice());
        if let Some(ts) = ts {
            record = record.timestamp(*ts);
        }
        let mut record = Some(record);
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(r) = record.take() {
            if let Err((e, r)) = producer.send(r) {
                assert!(Instant::now() < deadline, "cannot produce: {e}");
                producer.poll(Duration::from_millis(10));
                record = Some(r);
            }
        }
    }
    producer
        .flush(Duration::from_secs(30))
        .expect("all records acknowledged");
}

/// Commits `offset` of `topic` partition `partition` for consumer group `group`.
pub fn commit_offset(group: &str, topic: &str, partition: i32, offset: i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .unwrap();
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .expect("commit");
}

/// Reads every record of `topic` with `isolation` (`read_committed` or
/// `read_uncommitted`) up to the end of each partition, as UTF-8 values.
pub fn read_all(topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .set("group.id", "weir-test-reader")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p as i32, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut values = Vec::new();
    let mut ended = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ended < partitions {
        assert!(Instant::now() < deadline, "reading {topic} did not end");
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or(&[])).into_owned())
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => ended += 1,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    values
}

/// Grows `topic` to `partitions` partitions.
pub fn add_partitions(topic: &str, partitions: usize) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &broker().bootstrap)
        .create()
        .expect("admin client");
    let grow = rdkafka::admin::NewPartitions::new(topic, partitions);
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = futures::executor::block_on(admin.create_partitions(&[grow], &options))
        .expect("create partitions");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("cannot grow topic {t}: {e:?}"));
    }
}

/// Runs `scripts/kafka.sh <command> <this binary's broker dir>` and checks it succeeded.
pub fn broker_command(command: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(command)
        .arg(&broker().dir)
        .env("WEIR_KAFKA_OWNER_PID", std::process::id().to_string())
        .output()
        .expect("run scripts/kafka.sh");
    assert!(
        out.status.success(),
        "scripts/kafka.sh {command} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
