//! The client context of a source's consumer: librdkafka's global errors go to `tracing`,
//! except the end of a partition, which a bounded source asks for
//! (`enable.partition.eof`) and which is no error; it is logged at debug level.

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// A source reader's consumer.
pub(crate) type ReaderConsumer = BaseConsumer<ReaderContext>;

/// Routes librdkafka's global errors to `tracing`, the end of a partition at debug level.
pub(crate) struct ReaderContext;

impl ClientContext for ReaderContext {
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
