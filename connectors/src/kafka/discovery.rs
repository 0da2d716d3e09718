//! Finding a source's partitions and resolving where each starts, against the brokers.
//!
//! Every request waits at most the source's request timeout, so an unreachable broker
//! is an error that names the bootstrap servers within a bounded time.

use super::error::KafkaConnectorError;
use super::reader_context::ReaderConsumer;
use super::source::{SourceSettings, Topics};
use super::split::{owner, KafkaSplit, OffsetReset, StartingOffsets};
use rdkafka::client::{Client, ClientContext};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// Returns every partition of the source's topics (sorted by topic, then partition).
pub(crate) fn partitions<T>(
    consumer: &ReaderConsumer,
    settings: &SourceSettings<T>,
) -> Result<Vec<(String, i32)>, KafkaConnectorError> {
    let servers = &settings.properties.servers;
    let timeout = settings.request_timeout;
    let mut found = Vec::new();
    match &settings.topics {
        Topics::List(topics) => {
            for topic in topics {
                let ids = topic_partitions(consumer.client(), topic, servers, timeout)?;
                found.extend(ids.into_iter().map(|p| (topic.clone(), p)));
            }
        }
        Topics::Pattern(re) => {
            let metadata = consumer
                .fetch_metadata(None, timeout)
                .map_err(|e| KafkaConnectorError::client("metadata request", servers, e))?;
            for t in metadata.topics() {
                if t.error().is_none() && re.is_match(t.name()) {
                    found.extend(
                        t.partitions()
                            .iter()
                            .map(|p| (t.name().to_string(), p.id())),
                    );
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Returns the partition ids of `topic`; [`KafkaConnectorError::MissingTopic`] unless it
/// exists with at least one partition. A sink checks this before it writes: librdkafka
/// would hold its records until `message.timeout.ms` and then drop them.
pub(crate) fn topic_partitions<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    servers: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaConnectorError> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| KafkaConnectorError::client("metadata request", servers, e))?;
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        _ => Err(KafkaConnectorError::MissingTopic {
            topic: topic.to_string(),
            servers: servers.to_string(),
        }),
    }
}

/// Returns the partitions of `all` that reader `subtask` of `parallelism` owns.
pub(crate) fn owned(all: Vec<(String, i32)>, subtask: u16, parallelism: u16) -> Vec<(String, i32)> {
    all.into_iter()
        .filter(|(t, p)| owner(t, *p, parallelism) == subtask)
        .collect()
}

/// Resolves the first offset to read of each of `partitions` by `starting`, and in
/// bounded mode the offset to stop before.
pub(crate) fn resolve<T>(
    consumer: &ReaderConsumer,
    settings: &SourceSettings<T>,
    partitions: &[(String, i32)],
    starting: StartingOffsets,
) -> Result<Vec<KafkaSplit>, KafkaConnectorError> {
    let servers = &settings.properties.servers;
    let timeout = settings.request_timeout;
    let client = |what: &str, e| KafkaConnectorError::client(what, servers, e);
    let mut splits = Vec::with_capacity(partitions.len());
    let committed = match (starting, &settings.group_id) {
        (StartingOffsets::Committed { .. }, Some(_)) => {
            let mut tpl = TopicPartitionList::new();
            for (t, p) in partitions {
                tpl.add_partition(t, *p);
            }
            Some(
                consumer
                    .committed_offsets(tpl, timeout)
                    .map_err(|e| client("committed offsets request", e))?,
            )
        }
        _ => None,
    };
    for (topic, partition) in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, *partition, timeout)
            .map_err(|e| {
                client(
                    &format!("offsets request for '{topic}' partition {partition}"),
                    e,
                )
            })?;
        let next_offset = match starting {
            StartingOffsets::Earliest => low,
            StartingOffsets::Latest => high,
            StartingOffsets::Timestamp(ts) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(topic, *partition, Offset::Offset(ts))
                    .map_err(|e| client("timestamp lookup", e))?;
                let found = consumer
                    .offsets_for_times(tpl, timeout)
                    .map_err(|e| client("timestamp lookup", e))?;
                let offset = found
                    .find_partition(topic, *partition)
                    .and_then(|e| e.offset().to_raw());
                offset.filter(|o| *o >= 0).unwrap_or(high)
            }
            StartingOffsets::Committed { reset } => {
                let offset = committed
                    .as_ref()
                    .and_then(|c| c.find_partition(topic, *partition))
                    .and_then(|e| e.offset().to_raw())
                    .filter(|o| *o >= 0);
                match (offset, reset) {
                    (Some(o), _) => o.clamp(low, high),
                    (None, OffsetReset::Earliest) => low,
                    (None, OffsetReset::Latest) => high,
                }
            }
        };
        splits.push(KafkaSplit {
            topic: topic.clone(),
            partition: *partition,
            next_offset,
            stop: settings.bounded.then_some(high),
        });
    }
    Ok(splits)
}
