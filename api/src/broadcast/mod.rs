//! Broadcast state, as Flink's broadcast state pattern: a low-volume stream (rules,
//! configuration) is broadcast to every subtask of an operator that also reads a data
//! stream, keyed or not; the broadcast side keeps a map, the data side reads it.
//!
//! ```text
//! let rules = rule_stream.broadcast_with(&MapStateDescriptor::new("rules"));
//! events.key_by(k).connect(&rules).process(f)   // KeyedBroadcastProcessFunction
//! events.connect(&rules).process(f)             // BroadcastProcessFunction
//! ```
//!
//! (Flink spells `broadcast_with` as an overload of `broadcast`; Rust has no overloads and
//! keeps `broadcast()` for the partitioning alone.)
//!
//! Invariants: every subtask gets every broadcast record; the broadcast state is the same in
//! every subtask as long as the broadcast side changes it the same way everywhere,
//! whatever the order of the records (see [`functions`]); each subtask checkpoints its copy
//! and restores it, or at another parallelism the copy of old subtask `i mod p_old`. Keyed
//! state and timers of the keyed variant are the operator's keyed state, checkpointed and
//! rescaled by key group; its broadcast side reaches every key's state through
//! `apply_to_keyed_state`. The descriptor's name labels the state; there is one per
//! broadcast stream.

mod broadcast_state;
mod connected;
pub mod functions;
mod keyed_broadcast_context;
mod keyed_process_operator;
mod process_operator;

pub use broadcast_state::BroadcastState;
pub use connected::{BroadcastConnectedStream, KeyedBroadcastConnectedStream};
pub use functions::{BroadcastProcessFunction, KeyedBroadcastProcessFunction};
pub use keyed_broadcast_context::KeyedBroadcastContext;

use crate::datastream::DataStream;
use crate::record::Record;
use std::marker::PhantomData;

/// Names the broadcast state and gives the types of its keys and values, as Flink's
/// `MapStateDescriptor`.
pub struct MapStateDescriptor<UK, UV> {
    name: String,
    _types: PhantomData<fn() -> (UK, UV)>,
}

impl<UK, UV> MapStateDescriptor<UK, UV> {
    /// A descriptor of the broadcast state `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            _types: PhantomData,
        }
    }

    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A stream sent to every subtask of the operators it is connected with, carrying a
/// broadcast state descriptor.
pub struct BroadcastStream<T, UK, UV> {
    pub(crate) stream: DataStream<T>,
    pub(crate) descriptor: String,
    _types: PhantomData<fn() -> (UK, UV)>,
}

impl<T: Record> DataStream<T> {
    /// Broadcasts this stream with a broadcast state described by `descriptor`, to be
    /// connected with a data stream (`connect`).
    pub fn broadcast_with<UK, UV>(
        &self,
        descriptor: &MapStateDescriptor<UK, UV>,
    ) -> BroadcastStream<T, UK, UV> {
        BroadcastStream {
            stream: self.broadcast(),
            descriptor: descriptor.name.clone(),
            _types: PhantomData,
        }
    }
}
