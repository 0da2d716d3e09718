//! Kafka topics of a benchmark run: created once, read back to their end as a
//! `read_committed` consumer.
//!
//! Invariant: a read ends only when each of the topic's partitions reported its end (the
//! job that wrote the topic has finished, so nothing is left open), or fails after its
//! timeout; a topic without partitions (missing) is an error.

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

/// Creates `topics` (name, partitions) on `brokers`.
pub fn create_topics(brokers: &str, topics: &[(&str, i32)]) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .with_context(|| format!("cannot create an admin client of {brokers}"))?;
    let new: Vec<_> = topics
        .iter()
        .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let created = futures::executor::block_on(admin.create_topics(&new, &options))
        .with_context(|| format!("cannot create topics on {brokers}"))?;
    for r in created {
        r.map_err(|(t, e)| anyhow::anyhow!("cannot create topic {t} on {brokers}: {e}"))?;
    }
    Ok(())
}

/// A consumer's context that reports client errors as librdkafka's default does, except
/// the end of a partition, which the reader waits for.
struct EndIsNoError;

impl ClientContext for EndIsNoError {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::PartitionEOF) {
            eprintln!("librdkafka: {error}: {reason}");
        }
    }
}

impl ConsumerContext for EndIsNoError {}

/// Passes the payload of every committed record of `topic` to `each`, every partition
/// read from its beginning to its end, for at most `timeout`.
pub fn read_committed(
    brokers: &str,
    topic: &str,
    timeout: Duration,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let consumer: BaseConsumer<EndIsNoError> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("{topic}-count"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create_with_context(EndIsNoError)
        .with_context(|| format!("cannot create a consumer of {brokers}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .with_context(|| format!("cannot read the metadata of {topic} on {brokers}"))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len());
    if partitions == 0 {
        bail!("topic {topic} on {brokers} has no partitions");
    }
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p as i32, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + timeout;
    let mut ended = std::collections::BTreeSet::new();
    while ended.len() < partitions {
        if Instant::now() > deadline {
            bail!("timed out reading the records of {topic}");
        }
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => each(m.payload().unwrap_or_default())?,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                ended.insert(p);
            }
            Some(Err(e)) => return Err(e).context(format!("cannot read {topic}")),
            None => {}
        }
    }
    Ok(())
}
