//! Triggers: when a window fires and when its contents are purged, as Flink's `Trigger`.
//!
//! A trigger is asked on every element a window receives and on every timer of the window,
//! and answers with a [`TriggerResult`]. It may register timers through its
//! [`TriggerContext`] and keep a small state per key and window ([`Trigger::State`], in
//! keyed state, so it is checkpointed with the window). The built-in triggers are in
//! `builtin_triggers.rs`.
//!
//! Triggers that can merge (`can_merge`) work on session windows: when sessions merge, the
//! trigger folds the merged windows' states in `on_merge` (as Flink's `onMerge` with
//! `mergePartitionedState`).
//!
//! Invariant: whatever the trigger answers, the window operator clears a window's contents,
//! trigger state and timers at the window's cleanup time (its end plus the allowed lateness),
//! and those of every window merged away when sessions merge.

use super::assigner::TimeWindow;
use weir_runtime::Timestamp;
use weir_state_backends::StateValue;

/// What a trigger decides for a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerResult {
    /// Nothing happens.
    Continue,
    /// The window's function runs over its contents, which stay.
    Fire,
    /// The window's contents are dropped without firing.
    Purge,
    /// The window fires, then its contents are dropped.
    FireAndPurge,
}

impl TriggerResult {
    /// Whether the window fires.
    pub fn is_fire(self) -> bool {
        matches!(self, Self::Fire | Self::FireAndPurge)
    }

    /// Whether the window's contents are dropped.
    pub fn is_purge(self) -> bool {
        matches!(self, Self::Purge | Self::FireAndPurge)
    }
}

/// A timer a trigger registers or deletes for the current key and window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerRequest {
    Register { event_time: bool, at: Timestamp },
    Delete { event_time: bool, at: Timestamp },
}

/// What a trigger sees of time, and how it asks for timers.
pub struct TriggerContext {
    pub(crate) watermark: Timestamp,
    pub(crate) now: Timestamp,
    pub(crate) requests: Vec<TimerRequest>,
}

impl TriggerContext {
    /// The operator's current event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }

    /// The current processing time, in ms since the epoch.
    pub fn current_processing_time(&self) -> Timestamp {
        self.now
    }

    /// Calls the trigger's `on_event_time` for this window when the watermark reaches `at`.
    pub fn register_event_time_timer(&mut self, at: Timestamp) {
        self.requests.push(TimerRequest::Register {
            event_time: true,
            at,
        });
    }

    /// Calls the trigger's `on_processing_time` for this window at processing time `at`.
    pub fn register_processing_time_timer(&mut self, at: Timestamp) {
        self.requests.push(TimerRequest::Register {
            event_time: false,
            at,
        });
    }

    /// Deletes an event-time timer of this window.
    pub fn delete_event_time_timer(&mut self, at: Timestamp) {
        self.requests.push(TimerRequest::Delete {
            event_time: true,
            at,
        });
    }

    /// Deletes a processing-time timer of this window.
    pub fn delete_processing_time_timer(&mut self, at: Timestamp) {
        self.requests.push(TimerRequest::Delete {
            event_time: false,
            at,
        });
    }
}

/// Decides when a window of elements `T` fires.
pub trait Trigger<T>: Clone + Send + Sync + 'static {
    /// The trigger's state per key and window (a count, a next firing time); `Default`
    /// until first written.
    type State: StateValue + Default;

    /// An element entered `window` (at `timestamp`, event or processing time).
    fn on_element(
        &mut self,
        element: &T,
        timestamp: Timestamp,
        window: &TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;

    /// An event-time timer of `window` fired at `time`.
    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;

    /// A processing-time timer of `window` fired at `time`.
    fn on_processing_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        state: &mut Self::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult;

    /// The window is cleared: delete the timers the trigger registered.
    fn clear(&mut self, _window: &TimeWindow, _state: &mut Self::State, _ctx: &mut TriggerContext) {
    }

    /// Whether the trigger works on merging windows (session windows); such a trigger
    /// implements [`Trigger::on_merge`]. Session windows with a trigger that cannot merge
    /// fail the job when it is built.
    fn can_merge(&self) -> bool {
        false
    }

    /// Sessions were merged into `window`: `merged` holds the states of the windows merged
    /// away (each is cleared with [`Trigger::clear`] after this returns, as in Flink),
    /// `state` is the merged window's own (its default). Fold the states into it and
    /// register the timers the merged window needs; the element that caused the merge
    /// comes next, to `on_element`.
    fn on_merge(
        &mut self,
        _window: &TimeWindow,
        _merged: &[Self::State],
        _state: &mut Self::State,
        _ctx: &mut TriggerContext,
    ) {
    }
}
