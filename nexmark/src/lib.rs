//! The Nexmark benchmark on Weir: an event generator following the Nexmark specification
//! ([`NexmarkGenerator`]), the source that streams its events with event time
//! ([`nexmark_events`]), and the queries of Flink's Nexmark suite as Weir jobs
//! ([`queries`]).
//!
//! Invariant: everything is deterministic for a seed: the same configuration and event
//! count give the same events, in any split across subtasks and through any restore, so
//! a query's results can be checked against a reference computed from the events alone.

mod generator;
mod json_events;
mod model;
pub mod queries;
mod rng;
mod source;
mod words;

pub use generator::{NexmarkConfig, NexmarkGenerator};
pub use json_events::{event_json, sql_date, sql_minute, sql_timestamp, write_json_events};
pub use model::{Auction, Bid, Event, Person};
pub use queries::{build, Query, ResultSink, UnknownQuery};
pub use source::{nexmark_events, nexmark_events_at, WATERMARK_DELAY};
