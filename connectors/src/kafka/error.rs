//! Why a Kafka source or sink failed, naming the servers, topic, partition or offset
//! concerned; never a property value (which may be a secret).

use rdkafka::error::KafkaError;
use thiserror::Error;
use weir_runtime::TaskError;

/// A Kafka connector error.
#[derive(Debug, Error)]
pub enum KafkaConnectorError {
    /// A builder was given an invalid setting.
    #[error("Kafka {what}: {message}")]
    Config {
        /// The source or sink and setting concerned.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// The client could not be created or a request failed.
    #[error("Kafka {what} (bootstrap servers {servers}): {source}")]
    Client {
        /// What was being done.
        what: String,
        /// The bootstrap servers.
        servers: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
    /// A topic the source or sink names does not exist.
    #[error("Kafka topic '{topic}' does not exist (bootstrap servers {servers})")]
    MissingTopic {
        /// The topic.
        topic: String,
        /// The bootstrap servers.
        servers: String,
    },
    /// A record could not be deserialized (and the policy is to fail).
    #[error("cannot deserialize the Kafka record at topic '{topic}' partition {partition} offset {offset}: {message}")]
    Deserialize {
        /// The record's topic.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// The deserializer's message.
        message: String,
    },
    /// A record could not be delivered.
    #[error("Kafka sink '{sink}' cannot deliver a record to topic '{topic}': {source}")]
    Delivery {
        /// The sink.
        sink: String,
        /// The topic.
        topic: String,
        /// The client's error.
        source: Box<KafkaError>,
    },
}

impl KafkaConnectorError {
    /// A client error while doing `what`.
    pub(crate) fn client(what: impl Into<String>, servers: &str, source: KafkaError) -> Self {
        Self::Client {
            what: what.into(),
            servers: servers.to_string(),
            source: Box::new(source),
        }
    }
}

impl From<KafkaConnectorError> for TaskError {
    fn from(e: KafkaConnectorError) -> Self {
        match e {
            KafkaConnectorError::Config { .. } | KafkaConnectorError::MissingTopic { .. } => {
                TaskError::Configuration(e.to_string())
            }
            KafkaConnectorError::Deserialize { .. } => TaskError::User {
                operator: "Kafka source".into(),
                message: e.to_string(),
            },
            KafkaConnectorError::Client { .. } | KafkaConnectorError::Delivery { .. } => {
                TaskError::Io(e.to_string())
            }
        }
    }
}
