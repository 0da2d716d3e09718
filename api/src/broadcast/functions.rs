//! The user functions of broadcast connections, as Flink's `BroadcastProcessFunction` and
//! `KeyedBroadcastProcessFunction`: one method per input; the broadcast side may change the
//! broadcast state, the data side only reads it. The keyed variant's broadcast side may also
//! visit the keyed state of every key (`KeyedBroadcastContext::apply_to_keyed_state`).
//!
//! Invariant: the broadcast side's method must change the state the same way in every
//! subtask, as Flink requires. Every subtask sees the same broadcast records between two
//! checkpoint barriers, but when the broadcast stream has several subtasks, their records
//! interleave differently in each: updates must not depend on that order.

use super::broadcast_state::BroadcastState;
use super::keyed_broadcast_context::KeyedBroadcastContext;
use crate::functions::{Context, FnResult, KeyedContext, RuntimeContext};
use weir_runtime::Timestamp;
use weir_state_backends::StateKey;

/// Processes a non-keyed stream connected with a broadcast stream.
pub trait BroadcastProcessFunction<I1, I2, O, UK, UV>: Clone + Send + Sync + 'static {
    /// Processes a record of the data stream, reading the broadcast state.
    fn process_element(
        &mut self,
        value: I1,
        broadcast: &BroadcastState<UK, UV>,
        ctx: &mut Context<'_, O>,
    ) -> FnResult;

    /// Processes a record of the broadcast stream, updating the broadcast state.
    fn process_broadcast_element(
        &mut self,
        value: I2,
        broadcast: &mut BroadcastState<UK, UV>,
        ctx: &mut Context<'_, O>,
    ) -> FnResult;
}

/// Processes a keyed stream connected with a broadcast stream, with keyed state and timers
/// on the data side.
pub trait KeyedBroadcastProcessFunction<K: StateKey, I1, I2, O, UK, UV>:
    Clone + Send + Sync + 'static
{
    /// The subtask's keyed state handles (use `()` for none).
    type State: 'static;

    /// Registers keyed state; called once per subtask before any record.
    fn open(&mut self, ctx: &RuntimeContext<K>) -> FnResult<Self::State>;

    /// Processes a record of the keyed stream: keyed state and timers are the record's
    /// key's; the broadcast state is read-only.
    fn process_element(
        &mut self,
        value: I1,
        state: &mut Self::State,
        broadcast: &BroadcastState<UK, UV>,
        ctx: &mut KeyedContext<'_, K, O>,
    ) -> FnResult;

    /// Processes a record of the broadcast stream, updating the broadcast state. No key
    /// belongs to a broadcast record: reach keyed state through
    /// `ctx.apply_to_keyed_state(&handle, f)`, which visits every key of the subtask that
    /// holds the state `handle` of `state` (outside it, the current key is whichever was
    /// set last).
    fn process_broadcast_element(
        &mut self,
        value: I2,
        state: &mut Self::State,
        broadcast: &mut BroadcastState<UK, UV>,
        ctx: &mut KeyedBroadcastContext<'_, K, O>,
    ) -> FnResult;

    /// A timer of `ctx.current_key()` fired at `timestamp`.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _state: &mut Self::State,
        _broadcast: &BroadcastState<UK, UV>,
        _ctx: &mut KeyedContext<'_, K, O>,
    ) -> FnResult {
        Ok(())
    }
}
