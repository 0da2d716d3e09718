//! One sink subtask's writer: serializes each record once and sends it, with the delivery
//! guarantee the sink was built with.
//!
//! - `None`: records are sent and flushed on the buffer timeout and at the end; a failure
//!   may lose what was not acknowledged.
//! - `AtLeastOnce`: at every barrier the producer is flushed and any delivery failure fails
//!   the checkpoint, so a completed checkpoint covers only acknowledged records.
//! - `ExactlyOnce`: [`super::transactions`]; without checkpointing, at-least-once with a
//!   warning.

use super::discovery::topic_partitions;
use super::error::KafkaConnectorError;
use super::producer::{Outgoing, SinkProducer};
use super::sink::SinkSettings;
use super::transactions::{SinkState, Transactions};
use crate::DeliveryGuarantee;
use rdkafka::producer::{BaseProducer, Producer};
use weir_api::sink::{SinkContext, SinkWriter};
use weir_runtime::{CheckpointId, TaskError, Timestamp};

enum Mode {
    Plain {
        producer: SinkProducer,
        at_least_once: bool,
    },
    Transactional(Box<Transactions>),
}

/// The writer of one Kafka sink subtask.
pub(crate) struct KafkaWriter<T> {
    settings: std::sync::Arc<SinkSettings<T>>,
    name: String,
    mode: Mode,
    buf: Vec<u8>,
}

impl<T: 'static> KafkaWriter<T> {
    pub(crate) fn new(
        settings: std::sync::Arc<SinkSettings<T>>,
        ctx: &SinkContext,
    ) -> Result<Self, KafkaConnectorError> {
        let config = settings.properties.client_config(&[("linger.ms", "5")]);
        let servers = settings.properties.servers.clone();
        let probe: BaseProducer = config.create().map_err(|e| {
            KafkaConnectorError::client(format!("sink '{}'", ctx.name), &servers, e)
        })?;
        topic_partitions(probe.client(), &settings.topic, &servers, settings.timeout)?;
        drop(probe);
        let exactly_once = settings.guarantee == DeliveryGuarantee::ExactlyOnce;
        if exactly_once && !ctx.checkpointing {
            tracing::warn!(sink = %ctx.name, "exactly-once Kafka sink without checkpointing: delivery is at-least-once");
        }
        let mode = if exactly_once && ctx.checkpointing {
            let naming = super::transactions::Naming {
                prefix: settings.transactional_id_prefix.clone().unwrap_or_default(),
                sink: ctx.name.clone(),
            };
            Mode::Transactional(Box::new(Transactions::new(
                naming,
                ctx.subtask,
                settings.topic.clone(),
                config,
                settings.timeout,
            )))
        } else {
            Mode::Plain {
                producer: SinkProducer::create(&config, &ctx.name, &servers, settings.timeout)?,
                at_least_once: settings.guarantee != DeliveryGuarantee::None,
            }
        };
        Ok(Self {
            settings,
            name: ctx.name.clone(),
            mode,
            buf: Vec::new(),
        })
    }

    /// Serializes `value` into the reused buffer.
    fn serialize(&mut self, value: &T) -> Result<(), TaskError> {
        self.buf.clear();
        self.settings
            .serializer
            .serialize(value, &mut self.buf)
            .map_err(|e| {
                TaskError::user(
                    &self.name,
                    format!(
                        "cannot serialize a record for Kafka topic '{}': {e}",
                        self.settings.topic
                    ),
                )
            })
    }
}

impl<T: 'static> SinkWriter<T> for KafkaWriter<T> {
    fn write(&mut self, value: T, _timestamp: Timestamp) -> Result<(), TaskError> {
        self.serialize(&value)?;
        let partition = self.settings.partition.as_ref().and_then(|f| f(&value));
        let key = self.settings.key.as_ref().and_then(|f| f(&value));
        let topic = &self.settings.topic;
        match &mut self.mode {
            Mode::Plain { producer, .. } => {
                // Sent from the reused buffer: nothing keeps the record.
                producer.send_parts(topic, partition, key.as_deref(), &self.buf)?;
                producer.poll();
                Ok(())
            }
            // Kept until committed: the record owns its value.
            Mode::Transactional(t) => Ok(t.write(Outgoing {
                partition,
                key,
                value: self.buf.clone(),
            })?),
        }
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        match &self.mode {
            Mode::Plain { producer, .. } => {
                producer.poll();
                Ok(producer.check(&self.settings.topic)?)
            }
            Mode::Transactional(_) => Ok(()),
        }
    }

    fn finish(&mut self) -> Result<(), TaskError> {
        match &mut self.mode {
            Mode::Plain { producer, .. } => Ok(producer.flush(&self.settings.topic)?),
            Mode::Transactional(t) => Ok(t.finish()?),
        }
    }

    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        match &mut self.mode {
            Mode::Plain {
                producer,
                at_least_once,
            } => {
                if *at_least_once {
                    producer.flush(&self.settings.topic)?;
                }
                Ok(None)
            }
            Mode::Transactional(t) => {
                let state = t.pre_commit(checkpoint)?;
                Ok(Some(weir_api::source::encode_split(state)?))
            }
        }
    }

    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        match &mut self.mode {
            Mode::Plain { .. } => Ok(()),
            Mode::Transactional(t) => Ok(t.commit(checkpoint)?),
        }
    }

    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let Mode::Transactional(t) = &mut self.mode else {
            return Ok(());
        };
        let states: Vec<SinkState> = weir_api::source::decode_splits(&states, &self.name)?;
        Ok(t.recover(states)?)
    }
}
