//! Connectors to the systems a job reads from and writes to, each behind a feature.
//!
//! - `kafka`: `kafka::KafkaSource` (partitions assigned to subtasks by a fixed rule,
//!   offsets in checkpoints, bounded or unbounded, partition discovery) and
//!   `kafka::KafkaSink` (none, at-least-once, or exactly-once through Kafka transactions).
//! - `postgres`: `postgres::PostgresSink` (batched inserts or upserts, at-least-once, or
//!   exactly-once through PostgreSQL's two-phase commit).
//!
//! Connectors are built on the API's [`weir_api::source::SourceFunction`] and
//! [`weir_api::sink::SinkFunction`]; nothing below the API knows about them.

mod guarantee;

pub use guarantee::DeliveryGuarantee;

#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "postgres")]
pub mod postgres;
