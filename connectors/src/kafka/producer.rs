//! A Kafka producer that remembers the first delivery failure, and sends that wait (bounded)
//! while its queue is full.
//!
//! Invariant: after [`SinkProducer::flush`] returns `Ok`, every record sent before it was
//! acknowledged by the brokers; a failed delivery surfaces there at the latest, never
//! silently.

use super::error::KafkaConnectorError;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Collects the first delivery failure.
#[derive(Default)]
pub(crate) struct DeliveryErrors(Mutex<Option<KafkaError>>);

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut first = self.0.lock().expect("delivery errors poisoned");
            first.get_or_insert_with(|| e.clone());
        }
    }
}

/// One record ready to send: its partition (or the default partitioner's choice), key and
/// value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Outgoing {
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Vec<u8>,
}

/// A producer of one sink subtask (or of one transactional id).
pub(crate) struct SinkProducer {
    pub(crate) inner: BaseProducer<DeliveryErrors>,
    pub(crate) sink: String,
    pub(crate) servers: String,
    pub(crate) timeout: Duration,
}

impl SinkProducer {
    /// Creates a producer from `config`.
    pub(crate) fn create(
        config: &ClientConfig,
        sink: &str,
        servers: &str,
        timeout: Duration,
    ) -> Result<Self, KafkaConnectorError> {
        let inner = config
            .create_with_context(DeliveryErrors::default())
            .map_err(|e| {
                KafkaConnectorError::client(format!("sink '{sink}' producer"), servers, e)
            })?;
        Ok(Self {
            inner,
            sink: sink.to_string(),
            servers: servers.to_string(),
            timeout,
        })
    }

    /// A client error of this producer while doing `what`.
    pub(crate) fn error(&self, what: &str, e: KafkaError) -> KafkaConnectorError {
        KafkaConnectorError::client(format!("sink '{}' {what}", self.sink), &self.servers, e)
    }

    /// Sends one record to `topic`, waiting (at most the timeout) while the queue is full.
    pub(crate) fn send(&self, topic: &str, record: &Outgoing) -> Result<(), KafkaConnectorError> {
        self.send_parts(
            topic,
            record.partition,
            record.key.as_deref(),
            &record.value,
        )
    }

    /// Sends one record given by its parts, borrowed (see [`Self::send`]).
    pub(crate) fn send_parts(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), KafkaConnectorError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let mut r = BaseRecord::<[u8], [u8]>::to(topic).payload(value);
            if let Some(k) = key {
                r = r.key(k);
            }
            if let Some(p) = partition {
                r = r.partition(p);
            }
            match self.inner.send(r) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if Instant::now() < deadline =>
                {
                    self.inner.poll(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(KafkaConnectorError::Delivery {
                        sink: self.sink.clone(),
                        topic: topic.to_string(),
                        source: Box::new(e),
                    })
                }
            }
        }
    }

    /// Serves delivery reports without waiting.
    pub(crate) fn poll(&self) {
        self.inner.poll(Duration::ZERO);
    }

    /// Waits until everything sent was acknowledged; fails with the first delivery error.
    ///
    /// `Producer::flush` polls in steps of 100 ms that do not end when the last
    /// acknowledgement arrives, so each flush (one per barrier) took at least 100 ms; this
    /// one polls in steps of 1 ms and returns as soon as nothing is in flight.
    pub(crate) fn flush(&self, topic: &str) -> Result<(), KafkaConnectorError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.inner.flush(Duration::ZERO) {
                Ok(()) => break,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if Instant::now() < deadline =>
                {
                    self.inner.poll(Duration::from_millis(1));
                }
                Err(e) => return Err(self.error("flush", e)),
            }
        }
        self.check(topic)
    }

    /// Fails with the first delivery error reported so far, if any.
    pub(crate) fn check(&self, topic: &str) -> Result<(), KafkaConnectorError> {
        let first = self
            .inner
            .context()
            .0
            .lock()
            .expect("delivery errors poisoned")
            .take();
        match first {
            Some(e) => Err(KafkaConnectorError::Delivery {
                sink: self.sink.clone(),
                topic: topic.to_string(),
                source: Box::new(e),
            }),
            None => Ok(()),
        }
    }
}
