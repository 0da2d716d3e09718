//! The operator of a keyed stream connected with a broadcast stream: data records run with
//! their key's state and timers and read the broadcast state, broadcast records update it.
//! Keyed state and timers are checkpointed as any keyed operator's, the broadcast state as
//! broadcast state (`weir_runtime::checkpoint::broadcast_state`).
//!
//! Invariant: when the function's data-side method or a timer runs, the backend's current
//! key is the record's or timer's key.

use super::broadcast_state::BroadcastState;
use super::functions::KeyedBroadcastProcessFunction;
use super::keyed_broadcast_context::KeyedBroadcastContext;
use crate::functions::{user_error, Downstream, KeyedContext, RuntimeContext};
use crate::graph::heads::TwoInputOperator;
use crate::graph::OperatorContext;
use crate::operators::keyed_process::KeyFn;
use std::hash::Hash;
use weir_runtime::checkpoint::OperatorSnapshot;
use weir_runtime::output::earliest;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, TaskError, Timestamp, MIN_WATERMARK, NO_TIMESTAMP};
use weir_state_backends::{KeyedStateBackend, StateKey, Timer, TimerService, VoidNamespace};

/// The operator of `KeyedBroadcastConnectedStream::process`.
pub(crate) struct KeyedBroadcastProcessOperator<K: StateKey, I1, I2, O, UK, UV, F>
where
    F: KeyedBroadcastProcessFunction<K, I1, I2, O, UK, UV>,
{
    f: F,
    state: F::State,
    broadcast: BroadcastState<UK, UV>,
    key_fn: KeyFn<I1, K>,
    backend: KeyedStateBackend<K>,
    timers: TimerService<K, VoidNamespace>,
    fired: Vec<Timer<K, VoidNamespace>>,
    down: Downstream<O>,
    watermark: Timestamp,
    name: String,
    uid: String,
    index: usize,
    _inputs: std::marker::PhantomData<fn(I2)>,
}

impl<K, I1, I2, O, UK, UV, F> KeyedBroadcastProcessOperator<K, I1, I2, O, UK, UV, F>
where
    K: StateKey,
    UK: crate::Record + Hash + Eq,
    UV: crate::Record,
    F: KeyedBroadcastProcessFunction<K, I1, I2, O, UK, UV>,
{
    /// Creates the operator with the restored state, if any; `open` of the function runs
    /// here.
    pub(crate) fn new(
        mut f: F,
        key_fn: KeyFn<I1, K>,
        (backend, timers): (KeyedStateBackend<K>, TimerService<K, VoidNamespace>),
        down: Downstream<O>,
        ctx: &OperatorContext,
    ) -> Result<Self, TaskError> {
        let rc = RuntimeContext {
            backend: backend.clone(),
            subtask: ctx.subtask,
            parallelism: ctx.parallelism,
        };
        let state = {
            let _scope = enter_operator(ctx.index);
            f.open(&rc).map_err(|e| user_error(&ctx.name, e))?
        };
        Ok(Self {
            f,
            state,
            broadcast: BroadcastState::open(ctx)?,
            key_fn,
            backend,
            timers,
            fired: Vec::new(),
            down,
            watermark: MIN_WATERMARK,
            name: ctx.name.clone(),
            uid: ctx.uid.clone(),
            index: ctx.index,
            _inputs: std::marker::PhantomData,
        })
    }

    fn err(&self, e: weir_state_backends::StateError) -> TaskError {
        TaskError::user(&self.name, e.to_string())
    }

    /// Fires every timer due at `now`, including timers registered while timers fire.
    fn fire(&mut self, event_time: bool, now: Timestamp) -> Result<(), TaskError> {
        let mut fired = std::mem::take(&mut self.fired);
        while self
            .timers
            .pop_due(event_time, now, &mut fired)
            .map_err(|e| self.err(e))?
        {
            for t in fired.drain(..) {
                self.backend
                    .set_current_key(t.key.clone())
                    .map_err(|e| self.err(e))?;
                let out_ts = if event_time {
                    t.timestamp
                } else {
                    NO_TIMESTAMP
                };
                let mut ctx = KeyedContext {
                    base: self.down.context(out_ts, self.watermark),
                    key: &t.key,
                    timers: &mut self.timers,
                };
                let _scope = enter_operator(self.index);
                let r = self
                    .f
                    .on_timer(t.timestamp, &mut self.state, &self.broadcast, &mut ctx);
                if let Some(e) = ctx.base.error.take() {
                    return Err(e);
                }
                r.map_err(|e| user_error(&self.name, e))?;
            }
        }
        self.fired = fired;
        Ok(())
    }
}

impl<K, I1, I2, O, UK, UV, F> TwoInputOperator<I1, I2>
    for KeyedBroadcastProcessOperator<K, I1, I2, O, UK, UV, F>
where
    K: StateKey,
    UK: crate::Record + Hash + Eq,
    UV: crate::Record,
    F: KeyedBroadcastProcessFunction<K, I1, I2, O, UK, UV>,
{
    fn process1(&mut self, value: I1, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let key = (self.key_fn)(&value);
        self.backend
            .set_current_key(key.clone())
            .map_err(|e| self.err(e))?;
        let mut ctx = KeyedContext {
            base: self.down.context(ts, self.watermark),
            key: &key,
            timers: &mut self.timers,
        };
        let r = self
            .f
            .process_element(value, &mut self.state, &self.broadcast, &mut ctx);
        if let Some(e) = ctx.base.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }

    fn process2(&mut self, value: I2, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let mut ctx = KeyedBroadcastContext {
            base: self.down.context(ts, self.watermark),
            backend: &self.backend,
        };
        let (state, broadcast) = (&mut self.state, &mut self.broadcast);
        let r = self
            .f
            .process_broadcast_element(value, state, broadcast, &mut ctx);
        if let Some(e) = ctx.base.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }
}

impl<K, I1, I2, O, UK, UV, F> Lifecycle for KeyedBroadcastProcessOperator<K, I1, I2, O, UK, UV, F>
where
    K: StateKey,
    UK: crate::Record + Hash + Eq,
    UV: crate::Record,
    F: KeyedBroadcastProcessFunction<K, I1, I2, O, UK, UV>,
{
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut self.down)
    }
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.watermark = wm;
        self.fire(true, wm)?;
        self.down.watermark(wm)
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        self.fire(false, now)?;
        self.down.processing_time(now)
    }
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        earliest(
            self.timers.next_processing_time(),
            self.down.next_processing_time(),
        )
    }
    fn snapshot_state(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        crate::keyed_stream::snapshot_keyed(
            (&self.name, &self.uid),
            &self.backend,
            Some(&self.timers),
            (checkpoint, options),
            state,
        )?;
        self.broadcast.snapshot_into((&self.name, &self.uid), state)
    }
    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        self.backend.checkpoint_complete(checkpoint);
        Ok(())
    }
}
