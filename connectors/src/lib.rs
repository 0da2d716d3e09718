//! Connectors to the systems a job reads from and writes to, each behind a feature.
//!
//! - `kafka`: `kafka::KafkaSource` (partitions assigned to subtasks by a fixed rule,
//!   offsets in checkpoints, bounded or unbounded, partition discovery).
//!
//! Connectors are built on the API's [`weir_api::source::SourceFunction`] and
//! [`weir_api::sink::SinkFunction`]; nothing below the API knows about them.

#[cfg(feature = "kafka")]
pub mod kafka;
