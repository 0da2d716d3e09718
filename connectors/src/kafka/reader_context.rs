//! The client context of a source's consumer: librdkafka's global errors go to `tracing`,
//! except the end of a partition, which a bounded source asks for
//! (`enable.partition.eof`) and which is no error; it is logged at debug level. The
//! client's statistics (`statistics.interval.ms`) leave each partition's high watermark
//! here, for the source's `pendingRecords`.

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::Statistics;
use std::collections::HashMap;
use std::sync::Mutex;

/// A source reader's consumer.
pub(crate) type ReaderConsumer = BaseConsumer<ReaderContext>;

/// Routes librdkafka's global errors to `tracing`, the end of a partition at debug level,
/// and keeps the partitions' high watermarks from the client's statistics.
#[derive(Default)]
pub(crate) struct ReaderContext {
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

impl ReaderContext {
    /// The high watermark of `topic` `partition` as the latest statistics told it.
    pub(crate) fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.high_watermarks
            .lock()
            .expect("high watermarks poisoned")
            .get(&(topic.to_string(), partition))
            .copied()
    }
}

impl ClientContext for ReaderContext {
    fn stats(&self, statistics: Statistics) {
        let mut high = self
            .high_watermarks
            .lock()
            .expect("high watermarks poisoned");
        for (topic, t) in statistics.topics {
            for (partition, p) in t.partitions {
                // The last stable offset: records of open transactions cannot be read yet
                // (read_committed, librdkafka's default); without transactions it is the
                // high watermark. librdkafka lists the internal partition -1 and unknown
                // offsets as -1001.
                let end = if p.ls_offset >= 0 {
                    p.ls_offset
                } else {
                    p.hi_offset
                };
                if partition >= 0 && end >= 0 {
                    high.insert((topic.clone(), partition), end);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka hands this context every error as a global one.
        if matches!(error, KafkaError::Global(RDKafkaErrorCode::PartitionEOF)) {
            tracing::debug!(%reason, "Kafka partition end reached");
        } else {
            tracing::error!(%error, %reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for ReaderContext {}
