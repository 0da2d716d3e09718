//! The window operator for incremental aggregation of non-merging event-time windows
//! without allowed lateness: accumulators are pre-aggregated in a bounded in-memory
//! [`PaneBuffer`] in front of the keyed state backend, as Flink SQL's local aggregation and
//! mini-batches do.
//!
//! A record touches the backend only when its (window, key) is not buffered and the window
//! may have stored entries; at the watermark, windows fire in the order of their ends, each
//! from its timers (spilled slots) and from memory (the rest). The buffer spills into the backend (an entry and an event-time timer per slot, as
//! [`super::operator::WindowOperator`] keeps them) at every checkpoint barrier, so snapshots
//! and their restores are the same as that operator's, and when it is full.
//!
//! Invariants (Flink's semantics, as in the general operator): a window fires once when the
//! watermark reaches `end - 1`, its result carries timestamp `end - 1`, and its state is
//! dropped; an element all of whose windows fired is late.

use std::sync::Arc;

use super::assigner::{TimeWindow, WindowAssigner};
use super::contents::Finisher;
use super::pane_buffer::{PaneBuffer, Slot, Slots};
use crate::functions::{Downstream, OutputTag};
use crate::operators::keyed_process::KeyFn;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, Output, TaskError, Timestamp, MIN_WATERMARK, NO_TIMESTAMP};
use weir_state_backends::{
    AggregateFunction, KeyedStateBackend, StateError, StateKey, StateValue, Timer, TimerService,
    ValueState,
};

/// Aggregates event-time windows of one keyed stream through a pre-aggregation buffer.
pub(crate) struct PreAggregatingWindowOperator<K: StateKey, T, ACC, R, O, A> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) backend: KeyedStateBackend<K>,
    pub(crate) timers: TimerService<K, TimeWindow>,
    pub(crate) state: ValueState<K, TimeWindow, ACC>,
    pub(crate) agg: Arc<A>,
    pub(crate) finish: Finisher<K, R, O>,
    pub(crate) buffer: PaneBuffer<K, ACC>,
    pub(crate) assigner: WindowAssigner,
    pub(crate) late_tag: Option<OutputTag<T>>,
    pub(crate) down: Downstream<O>,
    pub(crate) watermark: Timestamp,
    pub(crate) windows: Vec<TimeWindow>,
    pub(crate) fired: Vec<Timer<K, TimeWindow>>,
    pub(crate) dropped_late: u64,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) index: usize,
}

impl<K, T, ACC, R, O, A> PreAggregatingWindowOperator<K, T, ACC, R, O, A>
where
    K: StateKey,
    T: StateValue,
    ACC: StateValue,
    A: AggregateFunction<T, ACC, R>,
{
    fn err(&self, e: impl std::fmt::Display) -> TaskError {
        TaskError::user(&self.name, e.to_string())
    }

    /// Folds `value` into the slot of (`w`, `key`), creating it from the stored accumulator
    /// (if the window may have one) or an empty one.
    #[inline]
    fn add(&mut self, key: &K, w: TimeWindow, value: T) -> Result<(), TaskError> {
        if let Some(slot) = self.buffer.get_mut(&w, key) {
            self.agg.add(value, &mut slot.acc);
            slot.dirty = true;
            return Ok(());
        }
        let stored = if self.buffer.may_be_stored(&w) {
            self.backend
                .set_current_key(key.clone())
                .and_then(|()| self.state.value_in(&w))
                .map_err(|e| self.err(e))?
        } else {
            None
        };
        let slot = self.buffer.insert(
            w,
            key.clone(),
            Slot {
                stored: stored.is_some(),
                acc: stored.unwrap_or_else(|| self.agg.create_accumulator()),
                dirty: true,
            },
        );
        self.agg.add(value, &mut slot.acc);
        Ok(())
    }

    /// Writes every changed slot into the backend, with a firing timer for slots it did not
    /// hold yet; the slots stay buffered, clean.
    fn spill(&mut self) -> Result<(), TaskError> {
        let (backend, state, timers) = (&self.backend, &self.state, &mut self.timers);
        let result = self.buffer.spill_each(|w, slots| {
            for (key, slot) in slots.iter_mut().filter(|(_, s)| s.dirty) {
                write_slot(backend, state, timers, (w, key), slot)?;
            }
            Ok::<_, StateError>(())
        });
        result.map_err(|e| self.err(e))
    }

    /// Makes room in a full buffer: moves the windows that end first into the backend until
    /// it is at most half full.
    fn evict(&mut self) -> Result<(), TaskError> {
        let target = self.buffer.capacity() / 2;
        let mut evicted = 0;
        while self.buffer.len() > target {
            let Some((w, mut slots)) = self.buffer.evict_first() else {
                break;
            };
            evicted += slots.len();
            for (key, slot) in slots.iter_mut().filter(|(_, s)| s.dirty) {
                write_slot(
                    &self.backend,
                    &self.state,
                    &mut self.timers,
                    (&w, key),
                    slot,
                )
                .map_err(|e| self.err(e))?;
            }
        }
        tracing::trace!(operator = %self.name, slots = evicted, "window buffer spilled");
        Ok(())
    }

    fn emit_result(&mut self, key: &K, w: &TimeWindow, acc: ACC) -> Result<(), TaskError> {
        let result = (self.finish)(key, w, self.agg.take_result(acc));
        self.down.out.emit(result, w.max_timestamp())
    }

    /// Fires a stored (window, key) on its timer: the buffered slot, if any, holds its whole
    /// contents, else the stored entry does; the entry is dropped either way.
    fn on_timer(&mut self, t: Timer<K, TimeWindow>) -> Result<(), TaskError> {
        let w = t.namespace;
        self.backend
            .set_current_key(t.key.clone())
            .map_err(|e| self.err(e))?;
        let acc = match self.buffer.take(&w, &t.key) {
            Some(slot) => self.state.clear_in(&w).map(|()| Some(slot.acc)),
            None => self.state.modify_in(&w, Option::take),
        }
        .map_err(|e| self.err(e))?;
        match acc {
            Some(acc) => self.emit_result(&t.key, &w, acc),
            None => Ok(()),
        }
    }

    /// Fires every window due at `watermark` in the order of their ends, as Flink's timers
    /// would: at each end, the stored slots on their timers first, then the window's
    /// buffered slots from memory.
    fn fire(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        loop {
            let timer = self.timers.next_event_time().filter(|t| *t <= watermark);
            let buffered = self.buffer.next_due(watermark);
            match (timer, buffered) {
                (None, None) => break,
                (Some(t), b) if b.is_none_or(|b| t <= b) => self.fire_timers(t)?,
                _ => {
                    let (w, slots) = self
                        .buffer
                        .pop_due(watermark)
                        .expect("a window is due when next_due says so");
                    self.fire_buffered(w, slots)?;
                }
            }
        }
        self.buffer.fired_through(watermark);
        Ok(())
    }

    /// Fires the timers due at `time` (none is earlier).
    fn fire_timers(&mut self, time: Timestamp) -> Result<(), TaskError> {
        let mut fired = std::mem::take(&mut self.fired);
        let result = self
            .timers
            .pop_due(true, time, &mut fired)
            .map_err(|e| self.err(e))
            .and_then(|_| fired.drain(..).try_for_each(|t| self.on_timer(t)));
        self.fired = fired;
        result
    }

    /// Fires one window drained from the buffer. Its stored slots fired on their timers
    /// already, so every slot here is in memory only.
    fn fire_buffered(&mut self, w: TimeWindow, slots: Slots<K, ACC>) -> Result<(), TaskError> {
        for (key, slot) in slots {
            debug_assert!(!slot.stored, "a stored slot fires on its timer");
            self.emit_result(&key, &w, slot.acc)?;
        }
        Ok(())
    }

    fn late(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        match &self.late_tag {
            Some(tag) => self.down.sides.emit(tag, value, ts),
            None => {
                self.dropped_late += 1;
                Ok(())
            }
        }
    }
}

/// Writes one changed slot into the backend, registering its firing timer the first time.
fn write_slot<K: StateKey, ACC: StateValue>(
    backend: &KeyedStateBackend<K>,
    state: &ValueState<K, TimeWindow, ACC>,
    timers: &mut TimerService<K, TimeWindow>,
    (w, key): (&TimeWindow, &K),
    slot: &mut Slot<ACC>,
) -> Result<(), StateError> {
    backend.set_current_key(key.clone())?;
    state.update_in(w, slot.acc.clone())?;
    if !slot.stored {
        timers.register_event_time_timer(key.clone(), *w, w.max_timestamp())?;
        slot.stored = true;
    }
    slot.dirty = false;
    Ok(())
}

impl<K, T, ACC, R, O, A> Output<T> for PreAggregatingWindowOperator<K, T, ACC, R, O, A>
where
    K: StateKey,
    T: StateValue,
    ACC: StateValue,
    A: AggregateFunction<T, ACC, R>,
{
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        if ts == NO_TIMESTAMP {
            return Err(self.err(
                "record has no event timestamp: call assign_timestamps_and_watermarks before an event-time window",
            ));
        }
        let key = (self.key_fn)(&value);
        let mut windows = std::mem::take(&mut self.windows);
        windows.clear();
        self.assigner.assign(ts, &mut windows);
        let watermark = self.watermark;
        windows.retain(|w| w.max_timestamp() > watermark);
        let result = match windows.split_last() {
            None => self.late(value, ts),
            Some((&last, rest)) => rest
                .iter()
                .try_for_each(|&w| self.add(&key, w, value.clone()))
                .and_then(|()| self.add(&key, last, value)),
        };
        self.windows = windows;
        result?;
        if self.buffer.is_full() {
            self.evict()?;
        }
        Ok(())
    }
}

impl<K, T, ACC, R, O, A> Lifecycle for PreAggregatingWindowOperator<K, T, ACC, R, O, A>
where
    K: StateKey,
    T: StateValue,
    ACC: StateValue,
    A: AggregateFunction<T, ACC, R>,
{
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut self.down)
    }
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        if wm <= self.watermark && self.watermark != MIN_WATERMARK {
            return Ok(());
        }
        self.watermark = wm;
        self.fire(wm)?;
        self.down.watermark(wm)
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        self.down.processing_time(now)
    }
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        self.down.next_processing_time()
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        if self.dropped_late > 0 {
            tracing::warn!(operator = %self.name, dropped = self.dropped_late, "dropped late elements");
        }
        self.down.end_input()
    }
    fn snapshot_state(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        // Buffered slots stay buffered, clean: the backend now holds what they hold.
        self.spill()?;
        crate::keyed_stream::snapshot_keyed(
            (&self.name, &self.uid),
            &self.backend,
            Some(&self.timers),
            (checkpoint, options),
            state,
        )
    }
    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        self.backend.checkpoint_complete(checkpoint);
        Ok(())
    }
}
