//! Runs a [`KeyedProcessFunction`]: sets the current key for every record, fires timers on
//! watermarks and processing time, and forwards lifecycle calls after its own work.
//!
//! Invariant: when the function runs, the state backend's current key is the key of the
//! record or timer being processed, so state handles read and write that key only.

use crate::functions::{user_error, Downstream, KeyedContext, KeyedProcessFunction, SideOutputs};
use std::sync::Arc;
use weir_runtime::output::earliest;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, Output, TaskError, Timestamp, MIN_WATERMARK, NO_TIMESTAMP};
use weir_state_backends::{KeyedStateBackend, StateKey, Timer, TimerService, VoidNamespace};

/// Extracts the key of a record.
pub type KeyFn<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// The operator of `KeyedStream::process`.
pub struct KeyedProcessOperator<K: StateKey, I, O, F: KeyedProcessFunction<K, I, O>> {
    pub(crate) f: F,
    pub(crate) state: F::State,
    pub(crate) key_fn: KeyFn<I, K>,
    pub(crate) backend: KeyedStateBackend<K>,
    pub(crate) timers: TimerService<K, VoidNamespace>,
    pub(crate) down: Downstream<O>,
    pub(crate) watermark: Timestamp,
    pub(crate) fired: Vec<Timer<K, VoidNamespace>>,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) index: usize,
}

impl<K: StateKey, I, O, F: KeyedProcessFunction<K, I, O>> KeyedProcessOperator<K, I, O, F> {
    /// Creates the operator; `open` of the function runs here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        mut f: F,
        key_fn: KeyFn<I, K>,
        backend: KeyedStateBackend<K>,
        timers: TimerService<K, VoidNamespace>,
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
        name: String,
        uid: String,
        index: usize,
        subtask: u16,
        parallelism: u16,
    ) -> Result<Self, TaskError> {
        let rc = crate::functions::RuntimeContext {
            backend: backend.clone(),
            subtask,
            parallelism,
        };
        let _scope = enter_operator(index);
        let state = f.open(&rc).map_err(|e| user_error(&name, e))?;
        Ok(Self {
            f,
            state,
            key_fn,
            backend,
            timers,
            down: Downstream::new(out, sides),
            watermark: MIN_WATERMARK,
            fired: Vec::new(),
            name,
            uid,
            index,
        })
    }

    /// Fires every timer due at `now`, including timers the function registers while timers
    /// fire, before returning. Output of processing-time timers carries no event timestamp
    /// (as in Flink); output of event-time timers carries the timer's time.
    fn fire(&mut self, event_time: bool, now: Timestamp) -> Result<(), TaskError> {
        let mut fired = std::mem::take(&mut self.fired);
        while self
            .timers
            .pop_due(event_time, now, &mut fired)
            .map_err(|e| TaskError::user(&self.name, e.to_string()))?
        {
            for t in fired.drain(..) {
                self.backend
                    .set_current_key(t.key.clone())
                    .map_err(|e| TaskError::user(&self.name, e.to_string()))?;
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
                let r = self.f.on_timer(t.timestamp, &mut self.state, &mut ctx);
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

impl<K: StateKey, I, O, F: KeyedProcessFunction<K, I, O>> Output<I>
    for KeyedProcessOperator<K, I, O, F>
{
    fn emit(&mut self, value: I, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let key = (self.key_fn)(&value);
        self.backend
            .set_current_key(key.clone())
            .map_err(|e| TaskError::user(&self.name, e.to_string()))?;
        let mut ctx = KeyedContext {
            base: self.down.context(ts, self.watermark),
            key: &key,
            timers: &mut self.timers,
        };
        let r = self.f.process_element(value, &mut self.state, &mut ctx);
        if let Some(e) = ctx.base.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }
}

impl<K: StateKey, I, O, F: KeyedProcessFunction<K, I, O>> Lifecycle
    for KeyedProcessOperator<K, I, O, F>
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
    crate::operators::keyed_checkpointing::keyed_checkpointing!();
}
