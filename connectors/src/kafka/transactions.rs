//! Exactly-once delivery: one Kafka transaction per subtask per checkpoint, committed when
//! the checkpoint completes, with a write-ahead copy in the checkpoint and a commit marker
//! in Kafka, so that no failure loses or repeats a record.
//!
//! Invariants:
//! - Records go out at once into the open transaction of a pool of transactional
//!   producers (ids `<prefix>-<sink>-<subtask>-<slot>`, at most [`POOL`] per subtask). At
//!   barrier n the open transaction is flushed and set aside as prepared, and the next
//!   records go into a transaction of a free slot (or the same one, when none is free:
//!   it then covers several checkpoints).
//! - Every record not yet committed is also kept, tagged with the first checkpoint after
//!   it, and checkpoint n holds all of those up to n ([`SinkState`]).
//! - When checkpoint m completes, every prepared transaction whose records are all tagged
//!   at most m is committed, oldest first; each commit also commits, atomically with it, the
//!   offset `c` (its last tag) for the marker group `<prefix>-<sink>-<subtask>` (a
//!   consumer-group offset on partition 0 of the sink's topic), so Kafka itself records how
//!   far the subtask's output is committed.
//! - After a restore, for every subtask whose state it receives, a writer first fences
//!   that subtask's transactional ids (which aborts their open transactions and stops any
//!   older attempt from committing), then reads the marker, and produces again, in one
//!   transaction with the marker, exactly the restored records tagged after it.

use super::error::KafkaConnectorError;
use super::producer::{Outgoing, SinkProducer};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::Producer;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use weir_runtime::CheckpointId;

/// Transactional producers per subtask at most.
pub(crate) const POOL: usize = 3;

/// What a checkpoint holds for one subtask of an exactly-once sink.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SinkState {
    /// The subtask that wrote it.
    pub(crate) origin: u16,
    /// Records not yet committed at the checkpoint, by the checkpoint they precede.
    pub(crate) uncommitted: Vec<(CheckpointId, Vec<Outgoing>)>,
}

/// How one subtask's transactional ids and marker group are named.
#[derive(Clone, Debug)]
pub(crate) struct Naming {
    pub(crate) prefix: String,
    pub(crate) sink: String,
}

impl Naming {
    pub(crate) fn transactional_id(&self, subtask: u16, slot: usize) -> String {
        format!("{}-{}-{subtask}-{slot}", self.prefix, self.sink)
    }

    pub(crate) fn marker_group(&self, subtask: u16) -> String {
        format!("{}-{}-{subtask}", self.prefix, self.sink)
    }
}

/// A transactional producer and what its transaction holds.
struct Slot {
    producer: SinkProducer,
    /// `None`: free; `Some(None)`: open; `Some(Some(c))`: prepared, records tagged up to `c`.
    txn: Option<Option<CheckpointId>>,
}

/// The exactly-once machinery of one sink subtask.
pub(crate) struct Transactions {
    pub(crate) naming: Naming,
    pub(crate) subtask: u16,
    pub(crate) topic: String,
    config: ClientConfig,
    slots: Vec<Slot>,
    current: Option<usize>,
    /// Records since the last barrier.
    epoch: Vec<Outgoing>,
    state: SinkState,
    marker: Option<ConsumerGroupMetadata>,
    timeout: std::time::Duration,
}

impl Transactions {
    /// The machinery of `subtask`; producers are created (and their ids fenced) on first use.
    pub(crate) fn new(
        naming: Naming,
        subtask: u16,
        topic: String,
        config: ClientConfig,
        timeout: std::time::Duration,
    ) -> Self {
        Self {
            naming,
            subtask,
            topic,
            config,
            slots: Vec::new(),
            current: None,
            epoch: Vec::new(),
            state: SinkState {
                origin: subtask,
                uncommitted: Vec::new(),
            },
            marker: None,
            timeout,
        }
    }

    /// Creates the transactional producer of `(subtask, slot)` and fences its id.
    fn producer(&self, subtask: u16, slot: usize) -> Result<SinkProducer, KafkaConnectorError> {
        transactional_producer(&self.config, &self.naming, (subtask, slot), self.timeout)
    }

    /// Creates the pool's producers on first use, which fences every id of this subtask:
    /// transactions an earlier attempt left open are aborted, and it can commit no more.
    /// A producer's first `init_transactions` waits for the transaction coordinator (up to
    /// half a second on a fresh client), so the missing producers start side by side.
    fn ensure_slots(&mut self) -> Result<(), KafkaConnectorError> {
        if self.slots.len() >= POOL {
            return Ok(());
        }
        let (config, naming, subtask, timeout) =
            (&self.config, &self.naming, self.subtask, self.timeout);
        let made: Vec<_> = std::thread::scope(|scope| {
            let started: Vec<_> = (self.slots.len()..POOL)
                .map(|slot| {
                    scope.spawn(move || {
                        transactional_producer(config, naming, (subtask, slot), timeout)
                    })
                })
                .collect();
            started
                .into_iter()
                .map(|h| h.join().expect("a producer's start panicked"))
                .collect()
        });
        for producer in made {
            self.slots.push(Slot {
                producer: producer?,
                txn: None,
            });
        }
        Ok(())
    }

    /// Returns the slot with the open transaction, opening one if needed.
    fn open(&mut self) -> Result<usize, KafkaConnectorError> {
        self.ensure_slots()?;
        if let Some(i) = self.current {
            return Ok(i);
        }
        let Some(i) = self.slots.iter().position(|s| s.txn.is_none()) else {
            unreachable!("a slot is free whenever no transaction is open")
        };
        let slot = &mut self.slots[i];
        slot.producer
            .inner
            .begin_transaction()
            .map_err(|e| slot.producer.error("transaction begin", e))?;
        slot.txn = Some(None);
        self.current = Some(i);
        Ok(i)
    }

    /// Sends one record in the open transaction and keeps it until it is committed.
    pub(crate) fn write(&mut self, record: Outgoing) -> Result<(), KafkaConnectorError> {
        let i = self.open()?;
        let p = &self.slots[i].producer;
        p.send(&self.topic, &record)?;
        p.poll();
        self.epoch.push(record);
        Ok(())
    }

    /// Barrier `checkpoint`: flushes the open transaction, prepares it when another slot
    /// can take the next records, and returns this subtask's state for the checkpoint.
    pub(crate) fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
    ) -> Result<&SinkState, KafkaConnectorError> {
        self.ensure_slots()?;
        if let Some(i) = self.current {
            self.slots[i].producer.flush(&self.topic)?;
            if self.slots.iter().any(|s| s.txn.is_none()) {
                self.slots[i].txn = Some(Some(checkpoint));
                self.current = None;
            }
        }
        let records = std::mem::take(&mut self.epoch);
        if !records.is_empty() {
            self.state.uncommitted.push((checkpoint, records));
        }
        Ok(&self.state)
    }

    /// Checkpoint `checkpoint` completed: commits every prepared transaction it covers.
    pub(crate) fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), KafkaConnectorError> {
        let mut due: Vec<(CheckpointId, usize)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s.txn {
                Some(Some(c)) if c <= checkpoint => Some((c, i)),
                _ => None,
            })
            .collect();
        due.sort();
        for (c, i) in due {
            self.commit_slot(i, c)?;
            self.state.uncommitted.retain(|(tag, _)| *tag > c);
        }
        Ok(())
    }

    /// Commits the transaction of slot `i`, with the marker offset `last`.
    fn commit_slot(&mut self, i: usize, last: CheckpointId) -> Result<(), KafkaConnectorError> {
        let group = self.naming.marker_group(self.subtask);
        if self.marker.is_none() {
            self.marker = Some(self.group_metadata(&group)?);
        }
        let metadata = self.marker.as_ref().expect("marker metadata");
        let p = &self.slots[i].producer;
        send_marker(p, &self.topic, metadata, last, self.timeout)?;
        p.inner
            .commit_transaction(self.timeout)
            .map_err(|e| p.error("transaction commit", e))?;
        self.slots[i].txn = None;
        Ok(())
    }

    /// Returns the consumer-group metadata of the marker group `group`.
    fn group_metadata(&self, group: &str) -> Result<ConsumerGroupMetadata, KafkaConnectorError> {
        let consumer = self.marker_consumer(group)?;
        consumer
            .group_metadata()
            .ok_or_else(|| KafkaConnectorError::Config {
                what: format!("sink '{}'", self.naming.sink),
                message: format!("no consumer-group metadata for the marker group '{group}'"),
            })
    }

    fn marker_consumer(&self, group: &str) -> Result<BaseConsumer, KafkaConnectorError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap_servers(&self.config))
            .set("group.id", group);
        for (key, value) in self.config.config_map() {
            if is_connection_property(key) {
                config.set(key, value);
            }
        }
        config.create().map_err(|e| {
            KafkaConnectorError::client(
                format!("sink '{}' marker", self.naming.sink),
                bootstrap_servers(&self.config),
                e,
            )
        })
    }

    /// Returns the last checkpoint whose records `origin` committed (0: none).
    fn committed_marker(&self, origin: u16) -> Result<CheckpointId, KafkaConnectorError> {
        let consumer = self.marker_consumer(&self.naming.marker_group(origin))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.topic, 0);
        let committed = consumer.committed_offsets(tpl, self.timeout).map_err(|e| {
            KafkaConnectorError::client("marker read", bootstrap_servers(&self.config), e)
        })?;
        let offset = committed
            .find_partition(&self.topic, 0)
            .and_then(|e| e.offset().to_raw())
            .unwrap_or(-1);
        Ok(u64::try_from(offset).unwrap_or(0))
    }

    /// After a restore: fences the ids of every subtask in `states`, then produces again
    /// the records its marker says were never committed.
    pub(crate) fn recover(&mut self, states: Vec<SinkState>) -> Result<(), KafkaConnectorError> {
        // This subtask's own ids are fenced when its producers are created.
        for s in &states {
            if s.origin != self.subtask {
                for slot in 0..POOL {
                    drop(self.producer(s.origin, slot)?);
                }
            }
        }
        self.ensure_slots()?;
        for s in states {
            let marker = self.committed_marker(s.origin)?;
            let redo: Vec<_> = s
                .uncommitted
                .into_iter()
                .filter(|(tag, _)| *tag > marker)
                .collect();
            let Some(last) = redo.iter().map(|(tag, _)| *tag).max() else {
                continue;
            };
            let n: usize = redo.iter().map(|(_, r)| r.len()).sum();
            let metadata = self.group_metadata(&self.naming.marker_group(s.origin))?;
            let p = &self.slots[0].producer;
            p.inner
                .begin_transaction()
                .map_err(|e| p.error("transaction begin", e))?;
            for (_, records) in &redo {
                for r in records {
                    p.send(&self.topic, r)?;
                }
            }
            p.flush(&self.topic)?;
            send_marker(p, &self.topic, &metadata, last, self.timeout)?;
            p.inner
                .commit_transaction(self.timeout)
                .map_err(|e| p.error("transaction commit", e))?;
            tracing::info!(sink = %self.naming.sink, origin = s.origin, marker, last, records = n, "committed restored records");
        }
        Ok(())
    }

    /// The end of input: flushes the open transaction; the job's final checkpoint, which
    /// every task takes after its input ended, prepares and commits it.
    pub(crate) fn finish(&mut self) -> Result<(), KafkaConnectorError> {
        match self.current {
            Some(i) => self.slots[i].producer.flush(&self.topic),
            None => Ok(()),
        }
    }
}

/// Whether the sink's property `key` says how to reach or authenticate to the brokers, so
/// the marker consumer needs it too (TLS, SASL, socket and reconnection settings), unlike
/// producer settings.
fn is_connection_property(key: &str) -> bool {
    [
        "security.",
        "sasl.",
        "ssl.",
        "socket.",
        "broker.address.",
        "reconnect.",
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
        || key == "client.dns.lookup"
}

/// The `bootstrap.servers` of `config` (named in errors).
fn bootstrap_servers(config: &ClientConfig) -> &str {
    config.get("bootstrap.servers").unwrap_or_default()
}

/// Creates the transactional producer of `(subtask, slot)` and fences its id.
fn transactional_producer(
    config: &ClientConfig,
    naming: &Naming,
    (subtask, slot): (u16, usize),
    timeout: std::time::Duration,
) -> Result<SinkProducer, KafkaConnectorError> {
    let mut config = config.clone();
    config.set("transactional.id", naming.transactional_id(subtask, slot));
    let p = SinkProducer::create(&config, &naming.sink, bootstrap_servers(&config), timeout)?;
    p.inner
        .init_transactions(timeout)
        .map_err(|e| p.error("transaction init", e))?;
    Ok(p)
}

/// Adds the marker offset `last` for the group of `metadata` to `p`'s transaction.
fn send_marker(
    p: &SinkProducer,
    topic: &str,
    metadata: &ConsumerGroupMetadata,
    last: CheckpointId,
    timeout: std::time::Duration,
) -> Result<(), KafkaConnectorError> {
    let mut offsets = TopicPartitionList::new();
    let offset = i64::try_from(last).unwrap_or(i64::MAX);
    offsets
        .add_partition_offset(topic, 0, Offset::Offset(offset))
        .map_err(|e| p.error("marker", e))?;
    p.inner
        .send_offsets_to_transaction(&offsets, metadata, timeout)
        .map_err(|e| p.error("marker", e))
}

#[cfg(test)]
mod tests {
    use super::is_connection_property;

    #[test]
    fn the_marker_consumer_takes_every_tls_sasl_socket_and_reconnection_property_and_no_producer_one(
    ) {
        for key in [
            "security.protocol",
            "sasl.mechanism",
            "sasl.username",
            "sasl.password",
            "ssl.ca.location",
            "ssl.certificate.location",
            "ssl.key.password",
            "socket.timeout.ms",
            "broker.address.family",
            "client.dns.lookup",
            "reconnect.backoff.ms",
            "reconnect.backoff.max.ms",
        ] {
            assert!(is_connection_property(key), "{key}");
        }
        for key in [
            "linger.ms",
            "transactional.id",
            "transaction.timeout.ms",
            "bootstrap.servers",
            "enable.idempotence",
            "message.timeout.ms",
        ] {
            assert!(!is_connection_property(key), "{key}");
        }
    }
}
