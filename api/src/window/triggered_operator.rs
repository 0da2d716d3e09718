//! The window operator of windows with a custom trigger or an evictor (Flink's
//! `WindowOperator` with a `Trigger`, and `EvictingWindowOperator`): it keeps every element
//! of a window with its timestamp in keyed list state, asks the trigger on each element and
//! timer, and fires or purges as it answers.
//!
//! Invariants:
//! - An element joins each of its windows that is not late (for event time, a window is
//!   late once its end plus the allowed lateness is behind the watermark); an element with
//!   no live window goes to the late-data side output or is counted and dropped.
//! - Session windows merge as in the window operator (`session_set.rs`); the windows merged
//!   away hand their contents and trigger state to the merged window and lose their timers.
//! - Every window has a cleanup timer at its end plus the lateness (event time) or at its
//!   end (processing time); when it fires, after the trigger had its say, the window's
//!   contents, trigger state and trigger timers are cleared.
//! - A firing runs the function over the elements the evictor leaves; what the evictor
//!   leaves after the function ran is the window's contents from then on.
//! - Results carry the window's `end - 1` as their timestamp.

use super::assigner::{TimeWindow, WindowAssigner};
use super::contents::ProcessWindowFunction;
use super::evictor::Evictor;
use super::session_set::{add_session, retire_session, SessionState};
use super::trigger::{TimerRequest, Trigger, TriggerContext, TriggerResult};
use crate::functions::{user_error, Downstream, OutputTag};
use crate::operators::keyed_process::KeyFn;
use weir_runtime::task::enter_operator;
use weir_runtime::{now_ms, Lifecycle, Output, TaskError, Timestamp, NO_TIMESTAMP};
use weir_state_backends::{
    KeyedStateBackend, ListState, StateKey, StateValue, Timer, TimerService, ValueState,
};

/// Runs windows of one keyed stream under a trigger and an evictor.
pub(crate) struct TriggeredWindowOperator<K: StateKey, T, O, Tr: Trigger<T>, E, F> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) backend: KeyedStateBackend<K>,
    pub(crate) timers: TimerService<K, TimeWindow>,
    pub(crate) contents: ListState<K, TimeWindow, (T, Timestamp)>,
    pub(crate) trigger_state: ValueState<K, TimeWindow, Tr::State>,
    pub(crate) sessions: Option<SessionState<K>>,
    pub(crate) trigger: Tr,
    pub(crate) evictor: E,
    pub(crate) function: F,
    pub(crate) assigner: WindowAssigner,
    pub(crate) lateness: i64,
    pub(crate) late_tag: Option<OutputTag<T>>,
    pub(crate) down: Downstream<O>,
    pub(crate) watermark: Timestamp,
    pub(crate) windows: Vec<TimeWindow>,
    pub(crate) results: Vec<O>,
    pub(crate) fired: Vec<Timer<K, TimeWindow>>,
    pub(crate) dropped_late: u64,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) index: usize,
}

/// What asked the trigger.
enum Cause<'a, T> {
    Element(&'a T, Timestamp),
    EventTime(Timestamp),
    ProcessingTime(Timestamp),
}

impl<K, T, O, Tr, E, F> TriggeredWindowOperator<K, T, O, Tr, E, F>
where
    K: StateKey,
    T: StateValue,
    Tr: Trigger<T>,
    E: Evictor<T>,
    F: ProcessWindowFunction<K, T, O>,
{
    fn err(&self, e: impl std::fmt::Display) -> TaskError {
        TaskError::user(&self.name, e.to_string())
    }

    fn is_late(&self, w: &TimeWindow) -> bool {
        self.assigner.is_event_time()
            && w.max_timestamp().saturating_add(self.lateness) <= self.watermark
    }

    /// When the window's state goes: its end plus the lateness, or its end.
    fn cleanup_time(&self, w: &TimeWindow) -> Timestamp {
        if self.assigner.is_event_time() {
            w.max_timestamp().saturating_add(self.lateness)
        } else {
            w.max_timestamp()
        }
    }

    /// The trigger's state of `w` under the current key (its default if none was written).
    fn trigger_state_of(&self, w: &TimeWindow) -> Result<Tr::State, TaskError> {
        Ok(self
            .trigger_state
            .value_in(w)
            .map_err(|e| self.err(e))?
            .unwrap_or_default())
    }

    fn context(&self) -> TriggerContext {
        TriggerContext {
            watermark: self.watermark,
            now: now_ms(),
            requests: Vec::new(),
        }
    }

    /// Applies the timers a trigger asked for, for `key` and `w`.
    fn apply(&mut self, key: &K, w: &TimeWindow, ctx: TriggerContext) -> Result<(), TaskError> {
        for r in ctx.requests {
            let done = match r {
                TimerRequest::Register {
                    event_time: true,
                    at,
                } => self.timers.register_event_time_timer(key.clone(), *w, at),
                TimerRequest::Register {
                    event_time: false,
                    at,
                } => self
                    .timers
                    .register_processing_time_timer(key.clone(), *w, at),
                TimerRequest::Delete {
                    event_time: true,
                    at,
                } => self.timers.delete_event_time_timer(key, w, at),
                TimerRequest::Delete {
                    event_time: false,
                    at,
                } => self.timers.delete_processing_time_timer(key, w, at),
            };
            done.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Asks the trigger about `w` of `key` for `cause`, keeping its state and timers.
    fn ask(
        &mut self,
        key: &K,
        w: &TimeWindow,
        cause: Cause<'_, T>,
    ) -> Result<TriggerResult, TaskError> {
        let mut state = self.trigger_state_of(w)?;
        let mut ctx = self.context();
        let result = match cause {
            Cause::Element(e, ts) => self.trigger.on_element(e, ts, w, &mut state, &mut ctx),
            Cause::EventTime(t) => self.trigger.on_event_time(t, w, &mut state, &mut ctx),
            Cause::ProcessingTime(t) => self.trigger.on_processing_time(t, w, &mut state, &mut ctx),
        };
        self.trigger_state
            .update_in(w, state)
            .map_err(|e| self.err(e))?;
        self.apply(key, w, ctx)?;
        Ok(result)
    }

    /// Fires and purges `w` of `key` as `result` says.
    fn act(&mut self, key: &K, w: &TimeWindow, result: TriggerResult) -> Result<(), TaskError> {
        if result.is_fire() {
            self.emit_window(key, w)?;
        }
        if result.is_purge() {
            self.contents.clear_in(w).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Runs the function over the window's elements that the evictor leaves.
    fn emit_window(&mut self, key: &K, w: &TimeWindow) -> Result<(), TaskError> {
        let mut elements = self.contents.get_in(w).map_err(|e| self.err(e))?;
        if elements.is_empty() {
            return Ok(());
        }
        let stored = elements.len();
        let _scope = enter_operator(self.index);
        self.evictor.evict_before(&mut elements, w);
        let values = elements.iter().map(|(v, _)| v.clone()).collect();
        self.function
            .process(key, w, values, &mut self.results)
            .map_err(|e| user_error(&self.name, e))?;
        self.evictor.evict_after(&mut elements, w);
        if elements.len() != stored {
            self.contents
                .update_in(w, elements)
                .map_err(|e| self.err(e))?;
        }
        for r in self.results.drain(..) {
            self.down.out.emit(r, w.max_timestamp())?;
        }
        Ok(())
    }

    /// Drops everything of `w` of `key`: contents, trigger state and trigger timers.
    fn clear_all(&mut self, key: &K, w: &TimeWindow) -> Result<(), TaskError> {
        self.contents.clear_in(w).map_err(|e| self.err(e))?;
        self.clear_trigger(key, w)
    }

    /// Lets the trigger clear `w` of `key` and drops its state.
    fn clear_trigger(&mut self, key: &K, w: &TimeWindow) -> Result<(), TaskError> {
        let mut state = self.trigger_state_of(w)?;
        let mut ctx = self.context();
        self.trigger.clear(w, &mut state, &mut ctx);
        self.trigger_state.clear_in(w).map_err(|e| self.err(e))?;
        self.apply(key, w, ctx)
    }

    /// Merges the new session window `w` of `key` with the key's sessions it overlaps or
    /// touches: their contents and trigger states go to the merged window (the trigger
    /// folds the states in `on_merge`), their timers go. Returns the merged window, or
    /// `None` if it is late.
    fn merge_session(&mut self, key: &K, w: TimeWindow) -> Result<Option<TimeWindow>, TaskError> {
        let state = self
            .sessions
            .clone()
            .expect("merging assigner has sessions");
        let merge = add_session(&state, w, |m| self.is_late(m)).map_err(|e| self.err(e))?;
        let (merged, sources) = (merge.merged, merge.sources());
        if merge.late || sources.is_empty() {
            return Ok((!merge.late).then_some(merged));
        }
        self.contents
            .merge_namespaces(&merged, &sources)
            .map_err(|e| self.err(e))?;
        // As Flink: the trigger merges first, then clears each merged-away window.
        let states = sources
            .iter()
            .map(|s| self.trigger_state_of(s))
            .collect::<Result<Vec<_>, _>>()?;
        let mut state = self.trigger_state_of(&merged)?;
        let mut ctx = self.context();
        self.trigger
            .on_merge(&merged, &states, &mut state, &mut ctx);
        self.trigger_state
            .update_in(&merged, state)
            .map_err(|e| self.err(e))?;
        self.apply(key, &merged, ctx)?;
        for s in &sources {
            self.clear_trigger(key, s)?;
            let at = self.cleanup_time(s);
            let deleted = if self.assigner.is_event_time() {
                self.timers.delete_event_time_timer(key, s, at)
            } else {
                self.timers.delete_processing_time_timer(key, s, at)
            };
            deleted.map_err(|e| self.err(e))?;
        }
        Ok(Some(merged))
    }

    fn on_timer(&mut self, t: Timer<K, TimeWindow>, event_time: bool) -> Result<(), TaskError> {
        self.backend
            .set_current_key(t.key.clone())
            .map_err(|e| self.err(e))?;
        let w = t.namespace;
        let cause = if event_time {
            Cause::EventTime(t.timestamp)
        } else {
            Cause::ProcessingTime(t.timestamp)
        };
        let result = self.ask(&t.key, &w, cause)?;
        self.act(&t.key, &w, result)?;
        if event_time == self.assigner.is_event_time() && t.timestamp == self.cleanup_time(&w) {
            self.clear_all(&t.key, &w)?;
            if let Some(sessions) = &self.sessions {
                retire_session(sessions, &w).map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// Fires every timer due at `now`, including timers that firing registers.
    fn fire(&mut self, event_time: bool, now: Timestamp) -> Result<(), TaskError> {
        let mut fired = std::mem::take(&mut self.fired);
        while self
            .timers
            .pop_due(event_time, now, &mut fired)
            .map_err(|e| self.err(e))?
        {
            for t in fired.drain(..) {
                self.on_timer(t, event_time)?;
            }
        }
        self.fired = fired;
        Ok(())
    }

    /// Adds `value` (at `time`) to the live window `w` of `key` and asks the trigger.
    fn add(&mut self, key: &K, w: TimeWindow, value: T, time: Timestamp) -> Result<(), TaskError> {
        let result = self.ask(key, &w, Cause::Element(&value, time))?;
        self.contents
            .add_in(&w, (value, time))
            .map_err(|e| self.err(e))?;
        let cleanup = self.cleanup_time(&w);
        let registered = if self.assigner.is_event_time() {
            self.timers
                .register_event_time_timer(key.clone(), w, cleanup)
        } else {
            self.timers
                .register_processing_time_timer(key.clone(), w, cleanup)
        };
        registered.map_err(|e| self.err(e))?;
        self.act(key, &w, result)
    }
}

impl<K, T, O, Tr, E, F> Output<T> for TriggeredWindowOperator<K, T, O, Tr, E, F>
where
    K: StateKey,
    T: StateValue,
    Tr: Trigger<T>,
    E: Evictor<T>,
    F: ProcessWindowFunction<K, T, O>,
{
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let key = (self.key_fn)(&value);
        self.backend
            .set_current_key(key.clone())
            .map_err(|e| self.err(e))?;
        let time = if self.assigner.is_event_time() {
            if ts == NO_TIMESTAMP {
                return Err(self.err(
                    "record has no event timestamp: call assign_timestamps_and_watermarks before an event-time window",
                ));
            }
            ts
        } else {
            now_ms()
        };
        let mut windows = std::mem::take(&mut self.windows);
        windows.clear();
        self.assigner.assign(time, &mut windows);
        let live: Vec<TimeWindow> = if self.assigner.is_merging() {
            self.merge_session(&key, windows[0])?.into_iter().collect()
        } else {
            windows
                .iter()
                .copied()
                .filter(|w| !self.is_late(w))
                .collect()
        };
        self.windows = windows;
        let Some((last, others)) = live.split_last() else {
            match &self.late_tag {
                Some(tag) => self.down.sides.emit(tag, value, ts)?,
                None => self.dropped_late += 1,
            }
            return Ok(());
        };
        for w in others {
            self.add(&key, *w, value.clone(), time)?;
        }
        self.add(&key, *last, value, time)
    }
}

impl<K, T, O, Tr, E, F> Lifecycle for TriggeredWindowOperator<K, T, O, Tr, E, F>
where
    K: StateKey,
    T: StateValue,
    Tr: Trigger<T>,
    E: Evictor<T>,
    F: ProcessWindowFunction<K, T, O>,
{
    super::timer_lifecycle::timer_lifecycle!();
    crate::operators::keyed_checkpointing::keyed_checkpointing!();
}
