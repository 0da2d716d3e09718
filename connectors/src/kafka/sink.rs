//! `KafkaSink`: writes records to one topic with no guarantee, at least once, or exactly
//! once through Kafka transactions, as Flink's `KafkaSink`.
//!
//! Checked when the job is built, before anything runs: an exactly-once sink needs a
//! transactional-id prefix, and its `transaction.timeout.ms` must exceed the checkpoint
//! interval plus the restart delay (or a transaction could be aborted by the broker
//! before its checkpoint completes) and must not exceed the broker's
//! `transaction.max.timeout.ms` (or the producer is refused).

use super::error::KafkaConnectorError;
use super::format::KafkaSerializer;
use super::properties::Properties;
use super::writer::KafkaWriter;
use crate::DeliveryGuarantee;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use std::sync::Arc;
use std::time::Duration;
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_runtime::{JobConfig, RestartStrategy, TaskError};

/// librdkafka's default `transaction.timeout.ms`.
const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 60_000;

/// The key or the partition of a record, from the record.
pub type RecordFn<T, R> = Arc<dyn Fn(&T) -> Option<R> + Send + Sync>;

/// The settings every writer of one sink shares.
pub(crate) struct SinkSettings<T> {
    pub(crate) properties: Properties,
    pub(crate) topic: String,
    pub(crate) serializer: Arc<dyn KafkaSerializer<T>>,
    pub(crate) key: Option<RecordFn<T, Vec<u8>>>,
    pub(crate) partition: Option<RecordFn<T, i32>>,
    pub(crate) guarantee: DeliveryGuarantee,
    pub(crate) transactional_id_prefix: Option<String>,
    pub(crate) timeout: Duration,
}

/// Writes records to a Kafka topic.
///
/// ```no_run
/// use weir_connectors::kafka::{DeliveryGuarantee, KafkaSink, Utf8};
/// let sink = KafkaSink::new("127.0.0.1:9092", "alerts", Utf8)
///     .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
///     .transactional_id_prefix("sensor-alerts")
///     .key(|line: &String| line.split(',').next().map(|s| s.as_bytes().to_vec()));
/// # let _ = sink;
/// ```
pub struct KafkaSink<T> {
    settings: Arc<SinkSettings<T>>,
}

impl<T> KafkaSink<T> {
    /// A sink writing to `topic` on the brokers `bootstrap_servers` with `serializer`.
    pub fn new(bootstrap_servers: &str, topic: &str, serializer: impl KafkaSerializer<T>) -> Self {
        let mut properties = Properties::default();
        properties.set_servers(bootstrap_servers);
        Self {
            settings: Arc::new(SinkSettings {
                properties,
                topic: topic.to_string(),
                serializer: Arc::new(serializer),
                key: None,
                partition: None,
                guarantee: DeliveryGuarantee::default(),
                transactional_id_prefix: None,
                timeout: Duration::from_secs(30),
            }),
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut SinkSettings<T>)) -> Self {
        f(Arc::get_mut(&mut self.settings).expect("sink settings are shared only once built"));
        self
    }

    /// The delivery guarantee (default at-least-once).
    pub fn delivery_guarantee(self, guarantee: DeliveryGuarantee) -> Self {
        self.edit(|s| s.guarantee = guarantee)
    }

    /// The prefix of the transactional ids (required for exactly-once; unique per job
    /// that writes to the same cluster).
    pub fn transactional_id_prefix(self, prefix: &str) -> Self {
        let prefix = prefix.to_string();
        self.edit(|s| s.transactional_id_prefix = Some(prefix))
    }

    /// Each record's key (`None`: no key).
    pub fn key(self, f: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static) -> Self {
        self.edit(|s| s.key = Some(Arc::new(f)))
    }

    /// Each record's partition (`None`: the producer's partitioner decides, by key).
    pub fn partition(self, f: impl Fn(&T) -> Option<i32> + Send + Sync + 'static) -> Self {
        self.edit(|s| s.partition = Some(Arc::new(f)))
    }

    /// The longest a flush, commit or broker request waits (default 30 s).
    pub fn request_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| s.timeout = timeout)
    }

    /// Sets `transaction.timeout.ms` (default 60 s).
    pub fn transaction_timeout(self, timeout: Duration) -> Self {
        let ms = timeout.as_millis().to_string();
        self.edit(|s| s.properties.set("transaction.timeout.ms", &ms))
    }

    /// Sets a librdkafka producer property (`compression.type`, security settings, ...).
    pub fn property(self, key: &str, value: &str) -> Self {
        let (key, value) = (key.to_string(), value.to_string());
        self.edit(|s| s.properties.set(&key, &value))
    }
}

impl<T: Send + 'static> SinkFunction<T> for KafkaSink<T> {
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        self.settings
            .properties
            .check(&format!("sink '{}'", ctx.name))?;
        Ok(Box::new(KafkaWriter::new(self.settings.clone(), ctx)?))
    }

    fn check(&self, name: &str, job: &JobConfig) -> Result<(), TaskError> {
        let s = &self.settings;
        s.properties.check(&format!("sink '{name}'"))?;
        if s.guarantee != DeliveryGuarantee::ExactlyOnce || job.checkpointing.is_none() {
            return Ok(());
        }
        let config_error = |message: String| KafkaConnectorError::Config {
            what: format!("sink '{name}'"),
            message,
        };
        if s.transactional_id_prefix
            .as_deref()
            .is_none_or(str::is_empty)
        {
            return Err(
                config_error("exactly-once needs transactional_id_prefix(..)".into()).into(),
            );
        }
        let timeout_ms = match s.properties.get("transaction.timeout.ms") {
            Some(v) => v.parse::<u64>().map_err(|_| {
                config_error(format!(
                    "transaction.timeout.ms must be milliseconds, not '{v}'"
                ))
            })?,
            None => DEFAULT_TRANSACTION_TIMEOUT_MS,
        };
        let interval = job
            .checkpointing
            .as_ref()
            .map_or(Duration::ZERO, |c| c.interval);
        let needed = interval + restart_delay(&job.effective_restart_strategy());
        if u128::from(timeout_ms) <= needed.as_millis() {
            return Err(config_error(format!(
                "transaction.timeout.ms ({timeout_ms}) must exceed the checkpoint interval plus the restart delay ({} ms)",
                needed.as_millis()
            ))
            .into());
        }
        let max = broker_max_transaction_timeout(s)?;
        if timeout_ms > max {
            return Err(config_error(format!(
                "transaction.timeout.ms ({timeout_ms}) exceeds the broker's transaction.max.timeout.ms ({max})"
            ))
            .into());
        }
        Ok(())
    }
}

/// The longest a restart waits after a failure.
fn restart_delay(strategy: &RestartStrategy) -> Duration {
    match strategy {
        RestartStrategy::None => Duration::ZERO,
        RestartStrategy::FixedDelay { delay, .. } | RestartStrategy::FailureRate { delay, .. } => {
            *delay
        }
        RestartStrategy::ExponentialDelay { max, .. } => *max,
    }
}

/// Asks a broker for its `transaction.max.timeout.ms`.
fn broker_max_transaction_timeout<T>(s: &SinkSettings<T>) -> Result<u64, KafkaConnectorError> {
    let servers = &s.properties.servers;
    let client = |e| KafkaConnectorError::client("broker configuration request", servers, e);
    let admin: AdminClient<DefaultClientContext> =
        s.properties.client_config(&[]).create().map_err(client)?;
    let metadata = admin
        .inner()
        .fetch_metadata(None, s.timeout)
        .map_err(client)?;
    let broker = metadata.brokers().first().map_or(1, |b| b.id());
    let options = AdminOptions::new().request_timeout(Some(s.timeout));
    let results = futures::executor::block_on(
        admin.describe_configs(&[ResourceSpecifier::Broker(broker)], &options),
    )
    .map_err(client)?;
    let value = results
        .into_iter()
        .flatten()
        .flat_map(|r| r.entries)
        .find(|e| e.name == "transaction.max.timeout.ms")
        .and_then(|e| e.value);
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(900_000))
}
