//! `KafkaSource`: reads topics (by list or pattern) with offsets in every checkpoint.
//!
//! Invariants:
//! - Correctness never depends on the consumer group: positions live in checkpoints, and
//!   a restore seeks every partition to its checkpointed offset. Offsets are committed to
//!   the group (when one is set) only when a checkpoint completes, for monitoring.
//! - Positions are restored by union: every reader sees the positions of all readers and
//!   keeps those it owns at the new parallelism, so rescaling re-splits partitions and a
//!   partition the checkpoint does not cover (created since) is read from the earliest
//!   offset.
//! - A record that does not deserialize is skipped and counted, or fails the job, as the
//!   user chose; either way the message names topic, partition and offset.

use super::format::KafkaDeserializer;
use super::properties::Properties;
use super::reader::KafkaReader;
use super::split::{StartingOffsets, DEFAULT_DISCOVERY_INTERVAL};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use weir_api::source::{
    BadRecordPolicy, SourceContext, SourceFunction, SourceReader, SplitRestore,
};
use weir_api::time::WatermarkStrategy;
use weir_runtime::TaskError;

/// Which topics a source reads.
#[derive(Clone, Debug)]
pub(crate) enum Topics {
    /// These topics; each must exist.
    List(Vec<String>),
    /// Every topic whose whole name matches.
    Pattern(regex::Regex),
}

/// The settings every reader of one source shares.
pub(crate) struct SourceSettings<T> {
    pub(crate) properties: Properties,
    pub(crate) topics: Topics,
    pub(crate) group_id: Option<String>,
    pub(crate) starting: StartingOffsets,
    pub(crate) bounded: bool,
    pub(crate) discovery: Option<Duration>,
    pub(crate) request_timeout: Duration,
    pub(crate) deserializer: Arc<dyn KafkaDeserializer<T>>,
    pub(crate) policy: BadRecordPolicy,
    pub(crate) skipped: Arc<AtomicU64>,
    pub(crate) watermarks: Option<WatermarkStrategy<T>>,
}

/// Reads Kafka topics, as Flink's `KafkaSource`.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use weir_connectors::kafka::{Csv, KafkaSource, StartingOffsets};
/// use weir_api::StreamExecutionEnvironment;
///
/// #[derive(Clone, Serialize, Deserialize)]
/// struct Reading { sensor: String, ts: i64, temperature: f64 }
///
/// let env = StreamExecutionEnvironment::new();
/// let source = KafkaSource::new("127.0.0.1:9092", Csv::<Reading>::new())
///     .topics(["readings"])
///     .group_id("sensor-pipeline")
///     .starting_offsets(StartingOffsets::Earliest);
/// let readings = env.add_source(source, "readings");
/// # let _ = readings;
/// ```
pub struct KafkaSource<T> {
    settings: SourceSettings<T>,
}

impl<T> KafkaSource<T> {
    /// A source reading from the brokers `bootstrap_servers` (`HOST:PORT[,...]`) with
    /// `deserializer`; name its topics with [`Self::topics`] or [`Self::topic_pattern`].
    pub fn new(bootstrap_servers: &str, deserializer: impl KafkaDeserializer<T>) -> Self {
        let mut properties = Properties::default();
        properties.set_servers(bootstrap_servers);
        Self {
            settings: SourceSettings {
                properties,
                topics: Topics::List(Vec::new()),
                group_id: None,
                starting: StartingOffsets::default(),
                bounded: false,
                discovery: Some(DEFAULT_DISCOVERY_INTERVAL),
                request_timeout: Duration::from_secs(30),
                deserializer: Arc::new(deserializer),
                policy: BadRecordPolicy::Fail,
                skipped: Arc::default(),
                watermarks: None,
            },
        }
    }

    /// Reads these topics (each must exist).
    pub fn topics<S: Into<String>>(mut self, topics: impl IntoIterator<Item = S>) -> Self {
        self.settings.topics = Topics::List(topics.into_iter().map(Into::into).collect());
        self
    }

    /// Reads every topic whose whole name matches `pattern` (a regular expression),
    /// including topics created later (found at the discovery interval).
    pub fn topic_pattern(mut self, pattern: &str) -> Result<Self, super::KafkaConnectorError> {
        let anchored = format!("^(?:{pattern})$");
        let re = regex::Regex::new(&anchored).map_err(|e| super::KafkaConnectorError::Config {
            what: "source topic pattern".into(),
            message: format!("'{pattern}' is not a regular expression: {e}"),
        })?;
        self.settings.topics = Topics::Pattern(re);
        Ok(self)
    }

    /// The consumer group offsets are committed to on checkpoint completion (and read
    /// from with [`StartingOffsets::Committed`]).
    pub fn group_id(mut self, group: &str) -> Self {
        self.settings.group_id = Some(group.to_string());
        self
    }

    /// Where partitions no checkpoint covers start (default: earliest).
    pub fn starting_offsets(mut self, starting: StartingOffsets) -> Self {
        self.settings.starting = starting;
        self
    }

    /// Bounded mode: stops at the offsets current when the job first saw each partition,
    /// then ends (no partition discovery).
    pub fn bounded(mut self) -> Self {
        self.settings.bounded = true;
        self
    }

    /// Looks for new partitions (and, with a pattern, new topics) every `interval`;
    /// `None` turns discovery off. Default: 5 minutes.
    pub fn partition_discovery_interval(mut self, interval: Option<Duration>) -> Self {
        self.settings.discovery = interval;
        self
    }

    /// The longest a metadata or offset request waits for the brokers (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = timeout;
        self
    }

    /// What to do with a record that does not deserialize (default: fail the job).
    pub fn on_bad_record(mut self, policy: BadRecordPolicy) -> Self {
        self.settings.policy = policy;
        self
    }

    /// Returns the counter of records skipped under [`BadRecordPolicy::Skip`], shared by
    /// all readers of this source in this process.
    pub fn skipped_counter(&self) -> Arc<AtomicU64> {
        self.settings.skipped.clone()
    }

    /// Assigns timestamps and generates watermarks in the source, per partition (the
    /// strategy runs for each partition and each reader emits the minimum; with
    /// `with_idleness`, partitions without records stop holding it back). The assigner
    /// receives each record's Kafka timestamp as the previous timestamp.
    pub fn with_watermarks(mut self, strategy: WatermarkStrategy<T>) -> Self {
        self.settings.watermarks = Some(strategy);
        self
    }

    /// Sets a librdkafka consumer property (`isolation.level`, `security.protocol`, ...).
    pub fn property(mut self, key: &str, value: &str) -> Self {
        self.settings.properties.set(key, value);
        self
    }
}

impl<T: Send + 'static> SourceFunction<T> for KafkaSource<T> {
    fn create_reader(&self, ctx: &SourceContext) -> Result<Box<dyn SourceReader<T>>, TaskError> {
        self.settings
            .properties
            .check(&format!("source '{}'", ctx.name))?;
        if let Topics::List(topics) = &self.settings.topics {
            if topics.is_empty() {
                return Err(super::KafkaConnectorError::Config {
                    what: format!("source '{}'", ctx.name),
                    message: "no topics set (topics([..]) or topic_pattern(..))".into(),
                }
                .into());
            }
        }
        Ok(Box::new(KafkaReader::new(
            ctx.clone(),
            SourceSettings {
                properties: self.settings.properties.clone(),
                topics: self.settings.topics.clone(),
                group_id: self.settings.group_id.clone(),
                starting: self.settings.starting,
                bounded: self.settings.bounded,
                discovery: self.settings.discovery,
                request_timeout: self.settings.request_timeout,
                deserializer: self.settings.deserializer.clone(),
                policy: self.settings.policy,
                skipped: self.settings.skipped.clone(),
                watermarks: self.settings.watermarks.clone(),
            },
        )))
    }

    fn split_restore(&self) -> SplitRestore {
        SplitRestore::Union
    }
}
