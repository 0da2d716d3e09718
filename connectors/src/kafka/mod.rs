//! Apache Kafka: a source and a sink, as Flink's `KafkaSource` and `KafkaSink`.
//!
//! - [`KafkaSource`] reads topics by list or pattern; each partition belongs to one reader
//!   by a fixed rule, its offset is part of every checkpoint, and restores seek to it.
//! - [`KafkaSink`] writes one topic with no guarantee, at least once (flushed at every
//!   barrier) or exactly once (a transaction per subtask per checkpoint, committed when
//!   the checkpoint completes; see `transactions.rs`).
//! - Values are turned into records and back by a format: [`Bytes`], [`Utf8`], [`Json`],
//!   [`Csv`], or any function of the whole [`RecordView`].

mod csv_row;
mod discovery;
mod error;
mod format;
mod producer;
mod properties;
mod reader;
mod reader_context;
mod sink;
mod source;
mod split;
mod transactions;
mod watermarks;
mod writer;

pub use crate::DeliveryGuarantee;
pub use error::KafkaConnectorError;
pub use format::{Bytes, Csv, Json, KafkaDeserializer, KafkaSerializer, RecordView, Utf8};
pub use sink::{KafkaSink, RecordFn};
pub use source::KafkaSource;
pub use split::{owner, KafkaSplit, OffsetReset, StartingOffsets, DEFAULT_DISCOVERY_INTERVAL};
