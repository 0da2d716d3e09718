//! One subtask's Kafka reader: owns the partitions [`super::split::owner`] gives it,
//! polls them without blocking, and checkpoints a [`KafkaSplit`] per partition.
//!
//! Invariants:
//! - The consumer is created at the first poll, in the task's thread, never in
//!   `create_reader`, so building a job never waits for a broker.
//! - `next_offset` of a split is the offset after the last record emitted, so a
//!   checkpoint taken between two polls covers exactly the records emitted before it.
//! - Partitions a restored checkpoint covers resume at its offsets; partitions it does not
//!   cover (new since) start at the earliest offset, as do partitions discovered later; only
//!   a fresh start uses the configured starting offsets.

use super::discovery::{owned, partitions, resolve};
use super::error::KafkaConnectorError;
use super::format::RecordView;
use super::reader_context::{ReaderConsumer, ReaderContext};
use super::source::SourceSettings;
use super::split::{KafkaSplit, StartingOffsets};
use super::watermarks::PartitionWatermarks;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use weir_api::source::{
    decode_splits, encode_splits, BadRecordPolicy, SourceContext, SourceReader,
};
use weir_runtime::{CheckpointId, Output, SourceStep, TaskError, NO_TIMESTAMP};

/// How long an idle reader asks the task to wait before the next poll.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// The offsets of one checkpoint: topic, partition, next offset.
type Offsets = Vec<(String, i32, i64)>;

/// The reader of one source subtask.
pub(crate) struct KafkaReader<T> {
    ctx: SourceContext,
    settings: SourceSettings<T>,
    consumer: Option<ReaderConsumer>,
    splits: Vec<KafkaSplit>,
    /// After a restore: every partition the checkpoint covers, owned or not.
    restored: Option<HashSet<(String, i32)>>,
    next_discovery: Option<Instant>,
    /// Offsets of checkpoints taken and not yet known complete, oldest first.
    pending_commits: VecDeque<(CheckpointId, Offsets)>,
    watermarks: PartitionWatermarks,
}

impl<T: 'static> KafkaReader<T> {
    pub(crate) fn new(ctx: SourceContext, settings: SourceSettings<T>) -> Self {
        let idleness = settings.watermarks.as_ref().and_then(|w| w.idleness());
        Self {
            watermarks: PartitionWatermarks::new(idleness),
            ctx,
            settings,
            consumer: None,
            splits: Vec::new(),
            restored: None,
            next_discovery: None,
            pending_commits: VecDeque::new(),
        }
    }

    fn what(&self) -> String {
        format!("source '{}' subtask {}", self.ctx.name, self.ctx.subtask)
    }

    /// Creates the consumer and takes the partitions this reader owns.
    fn start(&mut self) -> Result<(), KafkaConnectorError> {
        let mut defaults = vec![
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            // librdkafka postpones the next fetch of a partition by this much (default
            // 1 s) whenever its prefetch queue is over `queued.min.messages`; the task
            // drains a full queue in milliseconds, so the default starves it (a bounded
            // read of 2 M records took 4.5 s with it and 0.6 s with 10 ms).
            ("fetch.queue.backoff.ms", "10"),
            // Each partition's high watermark, for the source's pendingRecords metric.
            ("statistics.interval.ms", "1000"),
        ];
        if self.settings.bounded {
            defaults.push(("enable.partition.eof", "true"));
        }
        let group = self
            .settings
            .group_id
            .clone()
            .unwrap_or_else(|| format!("weir-{}", self.ctx.name));
        defaults.push(("group.id", &group));
        let consumer: ReaderConsumer = self
            .settings
            .properties
            .client_config(&defaults)
            .create_with_context(ReaderContext::default())
            .map_err(|e| {
                KafkaConnectorError::client(self.what(), &self.settings.properties.servers, e)
            })?;
        self.consumer = Some(consumer);
        self.discover(true)?;
        Ok(())
    }

    /// Takes the owned partitions not read yet and assigns every unfinished split.
    fn discover(&mut self, first: bool) -> Result<(), KafkaConnectorError> {
        let consumer = self.consumer.as_ref().expect("started");
        let all = partitions(consumer, &self.settings)?;
        let mine = owned(all, self.ctx.subtask, self.ctx.parallelism);
        let fresh: Vec<_> = mine
            .into_iter()
            .filter(|(t, p)| {
                !self
                    .splits
                    .iter()
                    .any(|s| &s.topic == t && s.partition == *p)
            })
            .filter(|tp| self.restored.as_ref().is_none_or(|r| !r.contains(tp)))
            .collect();
        let starting = if first && self.restored.is_none() {
            self.settings.starting
        } else {
            StartingOffsets::Earliest
        };
        if !fresh.is_empty() || first {
            let new = resolve(consumer, &self.settings, &fresh, starting)?;
            if !new.is_empty() {
                tracing::info!(source = %self.ctx.name, subtask = self.ctx.subtask, partitions = new.len(), "Kafka partitions taken");
            }
            self.splits.extend(new);
            self.assign()?;
        }
        self.next_discovery = match (self.settings.bounded, self.settings.discovery) {
            (false, Some(every)) => Some(Instant::now() + every),
            _ => None,
        };
        Ok(())
    }

    /// Assigns the consumer every unfinished split at its next offset.
    fn assign(&self) -> Result<(), KafkaConnectorError> {
        let consumer = self.consumer.as_ref().expect("started");
        let servers = &self.settings.properties.servers;
        let mut tpl = TopicPartitionList::new();
        for s in self.splits.iter().filter(|s| !s.is_finished()) {
            tpl.add_partition_offset(&s.topic, s.partition, Offset::Offset(s.next_offset))
                .map_err(|e| KafkaConnectorError::client("assignment", servers, e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| KafkaConnectorError::client("assignment", servers, e))
    }

    /// Handles one polled record: emits it unless it is outside its split or skipped. (A
    /// function of the fields it needs: the record borrows the consumer.)
    fn record(
        splits: &mut [KafkaSplit],
        settings: &SourceSettings<T>,
        ctx: &SourceContext,
        watermarks: &mut PartitionWatermarks,
        view: &RecordView<'_>,
        out: &mut dyn Output<T>,
    ) -> Result<(), TaskError> {
        let Some(index) = splits
            .iter()
            .position(|s| s.partition == view.partition && s.topic == view.topic)
        else {
            return Ok(());
        };
        let split = &mut splits[index];
        if view.offset < split.next_offset || split.stop.is_some_and(|s| view.offset >= s) {
            return Ok(());
        }
        split.next_offset = view.offset + 1;
        match settings.deserializer.deserialize(view) {
            Ok(v) => {
                let mut ts = view.timestamp.unwrap_or(NO_TIMESTAMP);
                if let Some(strategy) = &settings.watermarks {
                    ts = strategy.timestamp(&v, ts);
                    watermarks.record(index, ts, out)?;
                }
                out.emit(v, ts)
            }
            Err(message) => {
                let e = KafkaConnectorError::Deserialize {
                    topic: view.topic.to_string(),
                    partition: view.partition,
                    offset: view.offset,
                    message,
                };
                match settings.policy {
                    BadRecordPolicy::Fail => Err(TaskError::user(&ctx.name, e.to_string())),
                    BadRecordPolicy::Skip => {
                        settings.skipped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(source = %ctx.name, error = %e, "skipped a record");
                        Ok(())
                    }
                }
            }
        }
    }

    /// A partition reached its end: in bounded mode, splits of that partition number whose
    /// position reached their stop offset (or the only one) are finished.
    fn end_of_partition(&mut self, partition: i32) -> Result<(), KafkaConnectorError> {
        let consumer = self.consumer.as_ref().expect("started");
        let candidates = self
            .splits
            .iter()
            .filter(|s| s.partition == partition)
            .count();
        let position = consumer.position().ok();
        for s in self.splits.iter_mut().filter(|s| s.partition == partition) {
            let Some(stop) = s.stop else { continue };
            let at = position
                .as_ref()
                .and_then(|p| p.find_partition(&s.topic, partition))
                .and_then(|e| e.offset().to_raw())
                .unwrap_or(-1);
            if candidates == 1 || at >= stop {
                s.next_offset = s.next_offset.max(stop);
            }
        }
        Ok(())
    }
}

impl<T: Send + 'static> SourceReader<T> for KafkaReader<T> {
    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError> {
        if self.consumer.is_none() {
            self.start()?;
        } else if self.next_discovery.is_some_and(|t| Instant::now() >= t) {
            self.discover(false)?;
        }
        let mut polled = 0;
        while polled < max {
            let consumer = self.consumer.as_ref().expect("started");
            let Some(result) = consumer.poll(Duration::ZERO) else {
                break;
            };
            polled += 1;
            match result {
                Ok(m) => {
                    let view = RecordView {
                        topic: m.topic(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key(),
                        value: m.payload().unwrap_or(&[]),
                        timestamp: m.timestamp().to_millis(),
                    };
                    Self::record(
                        &mut self.splits,
                        &self.settings,
                        &self.ctx,
                        &mut self.watermarks,
                        &view,
                        out,
                    )?;
                }
                Err(KafkaError::PartitionEOF(p)) => self.end_of_partition(p)?,
                Err(e) => {
                    return Err(KafkaConnectorError::client(
                        format!("{} poll", self.what()),
                        &self.settings.properties.servers,
                        e,
                    )
                    .into())
                }
            }
        }
        if let Some(strategy) = &self.settings.watermarks {
            self.watermarks.emit(strategy, &self.splits, out)?;
        }
        if self.settings.bounded && self.splits.iter().all(KafkaSplit::is_finished) {
            return Ok(SourceStep::Finished);
        }
        Ok(if polled > 0 {
            SourceStep::More
        } else {
            SourceStep::Idle(IDLE_WAIT)
        })
    }

    fn snapshot_splits(
        &mut self,
        checkpoint: CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        let offsets = self
            .splits
            .iter()
            .map(|s| (s.topic.clone(), s.partition, s.next_offset))
            .collect();
        self.pending_commits.push_back((checkpoint, offsets));
        encode_splits(&self.splits)
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let all: Vec<KafkaSplit> = decode_splits(&splits, &self.ctx.name)?;
        self.restored = Some(all.iter().map(|s| (s.topic.clone(), s.partition)).collect());
        self.watermarks.reset();
        let (p, me) = (self.ctx.parallelism, self.ctx.subtask);
        self.splits = all
            .into_iter()
            .filter(|s| super::split::owner(&s.topic, s.partition, p) == me)
            .collect();
        Ok(())
    }

    /// The consumer lag of the partitions this reader owns: each partition's high
    /// watermark as the client's latest statistics tell it (or a bounded split's stop
    /// offset), less the reader's next offset; nothing is asked of the brokers here.
    fn pending_records(&self) -> Option<u64> {
        let consumer = self.consumer.as_ref()?;
        let mut lag = 0u64;
        for s in &self.splits {
            let end = match (
                s.stop,
                consumer.context().high_watermark(&s.topic, s.partition),
            ) {
                (Some(stop), _) => stop,
                (None, Some(high)) => high,
                (None, None) => return None,
            };
            lag += u64::try_from(end - s.next_offset.max(0)).unwrap_or(0);
        }
        Some(lag)
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let mut latest = None;
        while self
            .pending_commits
            .front()
            .is_some_and(|(c, _)| *c <= checkpoint)
        {
            latest = self.pending_commits.pop_front();
        }
        let (Some((_, offsets)), Some(consumer), Some(_)) = (
            latest,
            self.consumer.as_ref(),
            self.settings.group_id.as_ref(),
        ) else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in &offsets {
            let _ = tpl.add_partition_offset(t, *p, Offset::Offset(*o));
        }
        if tpl.count() > 0 {
            if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
                tracing::warn!(source = %self.ctx.name, error = %e, "cannot commit offsets to the consumer group (monitoring only)");
            }
        }
        Ok(())
    }
}
