//! The window operator: assigns each element to windows of its key, keeps their contents in
//! keyed state, and fires them on timers.
//!
//! Invariants (Flink's semantics): a window fires when the watermark (or processing time)
//! reaches `end - 1`, and its results carry timestamp `end - 1`; with allowed lateness `l`,
//! its state is kept until `end - 1 + l` and a late element within that time fires it again;
//! an element none of whose windows is still alive is late and goes to the late-data side
//! output (or is counted and dropped). Session windows of one key that overlap or touch are
//! merged, with their contents and timers. When a bounded input ends, open processing-time
//! windows fire instead of being dropped.

use super::assigner::{TimeWindow, WindowAssigner};
use super::contents::WindowContents;
use super::session_set::{add_session, retire_session, SessionState};
use crate::functions::{Downstream, OutputTag};
use crate::operators::keyed_process::KeyFn;
use weir_runtime::task::enter_operator;
use weir_runtime::{now_ms, Lifecycle, Output, TaskError, Timestamp, NO_TIMESTAMP};
use weir_state_backends::{KeyedStateBackend, StateKey, StateValue, Timer, TimerService};

/// Runs windows of one keyed stream.
pub(crate) struct WindowOperator<K: StateKey, T, O, C> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) backend: KeyedStateBackend<K>,
    pub(crate) timers: TimerService<K, TimeWindow>,
    pub(crate) contents: C,
    pub(crate) assigner: WindowAssigner,
    pub(crate) lateness: i64,
    pub(crate) late_tag: Option<OutputTag<T>>,
    pub(crate) sessions: Option<SessionState<K>>,
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

impl<K: StateKey, T: StateValue, O, C: WindowContents<K, T, O>> WindowOperator<K, T, O, C> {
    fn err(&self, e: impl std::fmt::Display) -> TaskError {
        TaskError::user(&self.name, e.to_string())
    }

    /// Returns the key of the element being processed (set on the backend first).
    fn current_key(&self) -> K {
        self.backend
            .current_key()
            .expect("the current key is set before windows are touched")
    }

    fn is_late(&self, w: &TimeWindow) -> bool {
        self.assigner.is_event_time()
            && w.max_timestamp().saturating_add(self.lateness) <= self.watermark
    }

    /// Registers the window's timers. An event-time window whose end already passed (a late
    /// element within the allowed lateness) fires when its element arrives, so it gets no
    /// firing timer, only its cleanup timer: each firing happens exactly once.
    fn register(&mut self, key: &K, w: TimeWindow) -> Result<(), TaskError> {
        let fire = w.max_timestamp();
        let timers = &mut self.timers;
        let r = if self.assigner.is_event_time() {
            let mut r = Ok(true);
            if fire > self.watermark {
                r = timers.register_event_time_timer(key.clone(), w, fire);
            }
            if self.lateness > 0 && r.is_ok() {
                r = timers.register_event_time_timer(
                    key.clone(),
                    w,
                    fire.saturating_add(self.lateness),
                );
            }
            r
        } else {
            timers.register_processing_time_timer(key.clone(), w, fire)
        };
        r.map(|_| ()).map_err(|e| self.err(e))
    }

    fn unregister(&mut self, key: &K, w: &TimeWindow) -> Result<(), TaskError> {
        let fire = w.max_timestamp();
        let timers = &mut self.timers;
        let r = if self.assigner.is_event_time() {
            timers.delete_event_time_timer(key, w, fire).and_then(|_| {
                if self.lateness > 0 {
                    timers.delete_event_time_timer(key, w, fire.saturating_add(self.lateness))
                } else {
                    Ok(true)
                }
            })
        } else {
            timers.delete_processing_time_timer(key, w, fire)
        };
        r.map(|_| ()).map_err(|e| self.err(e))
    }

    /// Merges the new session window `w` with the key's overlapping sessions; returns the
    /// merged window.
    fn merge_session(&mut self, key: &K, w: TimeWindow) -> Result<TimeWindow, TaskError> {
        let state = self
            .sessions
            .as_ref()
            .expect("merging assigner has session state")
            .clone();
        let merge = add_session(&state, w, |m| self.is_late(m)).map_err(|e| self.err(e))?;
        if merge.late {
            // A late element changes nothing.
            return Ok(merge.merged);
        }
        let (merged, sources) = (merge.merged, merge.sources());
        if !sources.is_empty() {
            self.contents.merge(&merged, &sources)?;
            for s in &sources {
                self.unregister(key, s)?;
            }
        }
        // An unchanged session keeps its timers (its firing timer may have fired already).
        if merge.is_new() {
            self.register(key, merged)?;
        }
        Ok(merged)
    }

    fn emit_window(&mut self, key: &K, w: &TimeWindow) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        self.contents.fire(key, w, &mut self.results)?;
        self.emit_results(w.max_timestamp())
    }

    fn emit_results(&mut self, ts: Timestamp) -> Result<(), TaskError> {
        for r in self.results.drain(..) {
            self.down.out.emit(r, ts)?;
        }
        Ok(())
    }

    fn on_timer(&mut self, t: Timer<K, TimeWindow>) -> Result<(), TaskError> {
        self.backend
            .set_current_key(t.key.clone())
            .map_err(|e| self.err(e))?;
        let w = t.namespace;
        let fire_at = w.max_timestamp();
        let cleanup_at = if self.assigner.is_event_time() {
            fire_at.saturating_add(self.lateness)
        } else {
            fire_at
        };
        if t.timestamp == fire_at && fire_at == cleanup_at {
            let _scope = enter_operator(self.index);
            self.contents
                .fire_and_clear(&t.key, &w, &mut self.results)?;
            self.emit_results(fire_at)?;
        } else if t.timestamp == fire_at {
            self.emit_window(&t.key, &w)?;
        } else if t.timestamp == cleanup_at {
            self.contents.clear(&w)?;
        }
        if t.timestamp == cleanup_at {
            if let Some(s) = &self.sessions {
                retire_session(s, &w).map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }

    /// Fires every timer due at `now`, including timers that firing registers, before
    /// returning (so nothing due stays behind the watermark that is forwarded next).
    fn fire(&mut self, event_time: bool, now: Timestamp) -> Result<(), TaskError> {
        let mut fired = std::mem::take(&mut self.fired);
        while self
            .timers
            .pop_due(event_time, now, &mut fired)
            .map_err(|e| self.err(e))?
        {
            for t in fired.drain(..) {
                self.on_timer(t)?;
            }
        }
        self.fired = fired;
        Ok(())
    }
}

impl<K: StateKey, T: StateValue, O, C: WindowContents<K, T, O>> Output<T>
    for WindowOperator<K, T, O, C>
{
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        // The key moves into the backend; an owned copy is taken back only when timers are
        // registered or a window fires at once.
        let key = (self.key_fn)(&value);
        self.backend.set_current_key(key).map_err(|e| self.err(e))?;
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
        if self.assigner.is_merging() {
            let key = self.current_key();
            let merged = self.merge_session(&key, windows[0])?;
            windows[0] = merged;
        }
        let mut alive = 0;
        let last_alive = windows.iter().rposition(|w| !self.is_late(w));
        let mut value = Some(value);
        for (i, &w) in windows.iter().enumerate() {
            if self.is_late(&w) {
                continue;
            }
            alive += 1;
            let v = if Some(i) == last_alive {
                value.take().expect("moved only at the last live window")
            } else {
                value.clone().expect("present before the last live window")
            };
            let created = self.contents.add(&w, v)?;
            if created && !self.assigner.is_merging() {
                let key = self.current_key();
                self.register(&key, w)?;
            }
            if self.assigner.is_event_time() && w.max_timestamp() <= self.watermark {
                let key = self.current_key();
                self.emit_window(&key, &w)?;
            }
        }
        self.windows = windows;
        if alive == 0 {
            let value = value.take().expect("no live window took the value");
            match &self.late_tag {
                Some(tag) => self.down.sides.emit(tag, value, ts)?,
                None => self.dropped_late += 1,
            }
        }
        Ok(())
    }
}

impl<K: StateKey, T: StateValue, O, C: WindowContents<K, T, O>> Lifecycle
    for WindowOperator<K, T, O, C>
{
    super::timer_lifecycle::timer_lifecycle!();
    crate::operators::keyed_checkpointing::keyed_checkpointing!();
}
