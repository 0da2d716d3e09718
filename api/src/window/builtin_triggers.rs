//! The built-in triggers, with Flink's names: [`EventTimeTrigger`] and
//! [`ProcessingTimeTrigger`] (the defaults: fire once at the window's end, chosen by
//! [`DefaultTrigger`] from the assigner), [`CountTrigger`], [`ContinuousEventTimeTrigger`]
//! (early firings) and [`PurgingTrigger`].
//!
//! All of them can merge (session windows); a count trigger's merged window counts the
//! elements of the windows it merged.
//!
//! Invariant: a trigger that registers a timer deletes it in `clear`, so a cleared window
//! leaves no timer behind.

use super::assigner::TimeWindow;
#[cfg(test)]
use super::trigger::TimerRequest;
use super::trigger::{Trigger, TriggerContext, TriggerResult};
use weir_runtime::Timestamp;

/// Fires once, when the watermark passes the window's end (the default of event-time
/// windows).
#[derive(Clone, Copy, Debug, Default)]
pub struct EventTimeTrigger;

impl EventTimeTrigger {
    /// The trigger.
    pub fn create() -> Self {
        Self
    }
}

impl<T> Trigger<T> for EventTimeTrigger {
    type State = ();

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, window: &TimeWindow, _: &[()], _: &mut (), ctx: &mut TriggerContext) {
        if window.max_timestamp() > ctx.current_watermark() {
            ctx.register_event_time_timer(window.max_timestamp());
        }
    }

    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: Timestamp,
        window: &TimeWindow,
        _state: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.current_watermark() {
            return TriggerResult::Fire;
        }
        ctx.register_event_time_timer(window.max_timestamp());
        TriggerResult::Continue
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn on_processing_time(
        &mut self,
        _time: Timestamp,
        _window: &TimeWindow,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    fn clear(&mut self, window: &TimeWindow, _state: &mut (), ctx: &mut TriggerContext) {
        ctx.delete_event_time_timer(window.max_timestamp());
    }
}

/// Fires once, when processing time passes the window's end (the default of
/// processing-time windows).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessingTimeTrigger;

impl ProcessingTimeTrigger {
    /// The trigger.
    pub fn create() -> Self {
        Self
    }
}

impl<T> Trigger<T> for ProcessingTimeTrigger {
    type State = ();

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, window: &TimeWindow, _: &[()], _: &mut (), ctx: &mut TriggerContext) {
        if window.max_timestamp() > ctx.current_processing_time() {
            ctx.register_processing_time_timer(window.max_timestamp());
        }
    }

    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: Timestamp,
        window: &TimeWindow,
        _state: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        ctx.register_processing_time_timer(window.max_timestamp());
        TriggerResult::Continue
    }

    fn on_event_time(
        &mut self,
        _time: Timestamp,
        _window: &TimeWindow,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    fn on_processing_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        _state: &mut (),
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if time >= window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn clear(&mut self, window: &TimeWindow, _state: &mut (), ctx: &mut TriggerContext) {
        ctx.delete_processing_time_timer(window.max_timestamp());
    }
}

/// Fires every `n` elements of a window (its contents stay; wrap it in a
/// [`PurgingTrigger`] to start over each time).
#[derive(Clone, Copy, Debug)]
pub struct CountTrigger {
    n: u64,
}

impl CountTrigger {
    /// Fires every `n` elements (0 is taken as 1).
    pub fn of(n: u64) -> Self {
        Self { n: n.max(1) }
    }
}

impl<T> Trigger<T> for CountTrigger {
    type State = u64;

    fn can_merge(&self) -> bool {
        true
    }

    /// The merged window counts the elements of the windows it merged.
    fn on_merge(
        &mut self,
        _: &TimeWindow,
        merged: &[u64],
        count: &mut u64,
        _: &mut TriggerContext,
    ) {
        *count = merged.iter().sum();
    }

    fn on_element(
        &mut self,
        _element: &T,
        _timestamp: Timestamp,
        _window: &TimeWindow,
        count: &mut u64,
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        *count += 1;
        if *count >= self.n {
            *count = 0;
            return TriggerResult::Fire;
        }
        TriggerResult::Continue
    }

    fn on_event_time(
        &mut self,
        _time: Timestamp,
        _window: &TimeWindow,
        _count: &mut u64,
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    fn on_processing_time(
        &mut self,
        _time: Timestamp,
        _window: &TimeWindow,
        _count: &mut u64,
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
}

/// Fires an event-time window every `interval` of event time while it is open (early
/// results), and once more at its end.
#[derive(Clone, Copy, Debug)]
pub struct ContinuousEventTimeTrigger {
    interval: i64,
}

impl ContinuousEventTimeTrigger {
    /// Fires every `interval` (at least 1 ms) of event time.
    pub fn of(interval: std::time::Duration) -> Self {
        Self {
            interval: super::assigner::ms(interval).max(1),
        }
    }
}

impl<T> Trigger<T> for ContinuousEventTimeTrigger {
    /// The next early firing, once one is registered.
    type State = Option<Timestamp>;

    fn can_merge(&self) -> bool {
        true
    }

    /// The merged window fires early at the earliest pending early firing of the windows
    /// it merged.
    fn on_merge(
        &mut self,
        _window: &TimeWindow,
        merged: &[Option<Timestamp>],
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext,
    ) {
        *next = merged.iter().flatten().min().copied();
        if let Some(at) = *next {
            ctx.register_event_time_timer(at);
        }
    }

    fn on_element(
        &mut self,
        _element: &T,
        timestamp: Timestamp,
        window: &TimeWindow,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if window.max_timestamp() <= ctx.current_watermark() {
            return TriggerResult::Fire;
        }
        ctx.register_event_time_timer(window.max_timestamp());
        if next.is_none() {
            let at = (timestamp - timestamp.rem_euclid(self.interval) + self.interval)
                .min(window.max_timestamp());
            ctx.register_event_time_timer(at);
            *next = Some(at);
        }
        TriggerResult::Continue
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if *next == Some(time) {
            // The next early firing, or the window's end (whose timer is registered): the
            // state stays set, so a later element does not start the early firings again.
            let at = time
                .saturating_add(self.interval)
                .min(window.max_timestamp());
            if at > time {
                ctx.register_event_time_timer(at);
            }
            *next = Some(at);
            return TriggerResult::Fire;
        }
        if time == window.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn on_processing_time(
        &mut self,
        _time: Timestamp,
        _window: &TimeWindow,
        _next: &mut Option<Timestamp>,
        _ctx: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    fn clear(
        &mut self,
        window: &TimeWindow,
        next: &mut Option<Timestamp>,
        ctx: &mut TriggerContext,
    ) {
        if let Some(at) = next.take() {
            ctx.delete_event_time_timer(at);
        }
        ctx.delete_event_time_timer(window.max_timestamp());
    }
}

/// Makes every firing of another trigger also purge the window's contents.
#[derive(Clone, Copy, Debug)]
pub struct PurgingTrigger<Tr> {
    inner: Tr,
}

impl<Tr> PurgingTrigger<Tr> {
    /// Purges whenever `inner` fires.
    pub fn of(inner: Tr) -> Self {
        Self { inner }
    }
}

fn purging(r: TriggerResult) -> TriggerResult {
    if r.is_fire() {
        TriggerResult::FireAndPurge
    } else {
        r
    }
}

impl<T, Tr: Trigger<T>> Trigger<T> for PurgingTrigger<Tr> {
    type State = Tr::State;

    fn can_merge(&self) -> bool {
        self.inner.can_merge()
    }

    fn on_merge(
        &mut self,
        window: &TimeWindow,
        merged: &[Tr::State],
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) {
        self.inner.on_merge(window, merged, state, ctx);
    }

    fn on_element(
        &mut self,
        element: &T,
        timestamp: Timestamp,
        window: &TimeWindow,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(
            self.inner
                .on_element(element, timestamp, window, state, ctx),
        )
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.inner.on_event_time(time, window, state, ctx))
    }

    fn on_processing_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        state: &mut Tr::State,
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        purging(self.inner.on_processing_time(time, window, state, ctx))
    }

    fn clear(&mut self, window: &TimeWindow, state: &mut Tr::State, ctx: &mut TriggerContext) {
        self.inner.clear(window, state, ctx);
    }
}

/// The trigger of a window assigner: [`EventTimeTrigger`] for event-time windows,
/// [`ProcessingTimeTrigger`] for processing-time windows.
#[derive(Clone, Copy, Debug)]
pub struct DefaultTrigger {
    pub(crate) event_time: bool,
}

impl<T> Trigger<T> for DefaultTrigger {
    type State = ();

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, window: &TimeWindow, m: &[()], s: &mut (), ctx: &mut TriggerContext) {
        if self.event_time {
            <EventTimeTrigger as Trigger<T>>::on_merge(&mut EventTimeTrigger, window, m, s, ctx);
        } else {
            let mut trigger = ProcessingTimeTrigger;
            <ProcessingTimeTrigger as Trigger<T>>::on_merge(&mut trigger, window, m, s, ctx);
        }
    }

    fn on_element(
        &mut self,
        element: &T,
        timestamp: Timestamp,
        window: &TimeWindow,
        state: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if self.event_time {
            EventTimeTrigger.on_element(element, timestamp, window, state, ctx)
        } else {
            ProcessingTimeTrigger.on_element(element, timestamp, window, state, ctx)
        }
    }

    fn on_event_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        state: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if self.event_time {
            <EventTimeTrigger as Trigger<T>>::on_event_time(
                &mut EventTimeTrigger,
                time,
                window,
                state,
                ctx,
            )
        } else {
            TriggerResult::Continue
        }
    }

    fn on_processing_time(
        &mut self,
        time: Timestamp,
        window: &TimeWindow,
        state: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        if self.event_time {
            TriggerResult::Continue
        } else {
            <ProcessingTimeTrigger as Trigger<T>>::on_processing_time(
                &mut ProcessingTimeTrigger,
                time,
                window,
                state,
                ctx,
            )
        }
    }

    fn clear(&mut self, window: &TimeWindow, state: &mut (), ctx: &mut TriggerContext) {
        if self.event_time {
            <EventTimeTrigger as Trigger<T>>::clear(&mut EventTimeTrigger, window, state, ctx);
        } else {
            <ProcessingTimeTrigger as Trigger<T>>::clear(
                &mut ProcessingTimeTrigger,
                window,
                state,
                ctx,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(watermark: Timestamp) -> TriggerContext {
        TriggerContext {
            watermark,
            now: 0,
            requests: Vec::new(),
        }
    }

    #[test]
    fn a_count_trigger_fires_every_n_elements() {
        let w = TimeWindow::new(0, 100);
        let mut count = 0;
        let results: Vec<TriggerResult> = (0..5)
            .map(|_| CountTrigger::of(2).on_element(&(), 1, &w, &mut count, &mut ctx(0)))
            .collect();
        use TriggerResult::*;
        assert_eq!(results, vec![Continue, Fire, Continue, Fire, Continue]);
    }

    #[test]
    fn a_purging_trigger_purges_whenever_its_trigger_fires() {
        let w = TimeWindow::new(0, 100);
        let mut t = PurgingTrigger::of(CountTrigger::of(1));
        let r = t.on_element(&(), 1, &w, &mut 0, &mut ctx(0));
        assert_eq!(r, TriggerResult::FireAndPurge);
    }

    #[test]
    fn a_continuous_trigger_fires_every_interval_and_at_the_end() {
        let w = TimeWindow::new(0, 1000);
        let mut t = ContinuousEventTimeTrigger::of(std::time::Duration::from_millis(300));
        let (mut next, mut c) = (None, ctx(0));
        let r = Trigger::<()>::on_element(&mut t, &(), 10, &w, &mut next, &mut c);
        assert_eq!(r, TriggerResult::Continue);
        assert_eq!(next, Some(300));
        let fired: Vec<bool> = [300, 600, 900, 999]
            .iter()
            .map(|&at| Trigger::<()>::on_event_time(&mut t, at, &w, &mut next, &mut c).is_fire())
            .collect();
        assert_eq!(fired, vec![true, true, true, true]);
        assert_eq!(next, Some(999), "the last firing is the window's end");
        // An element behind the last early firing does not start them again.
        let mut c = ctx(950);
        let r = Trigger::<()>::on_element(&mut t, &(), 10, &w, &mut next, &mut c);
        assert_eq!(r, TriggerResult::Continue);
        assert_eq!(next, Some(999));
        assert!(!c
            .requests
            .iter()
            .any(|r| matches!(r, TimerRequest::Register { at, .. } if *at < 999)));
    }

    #[test]
    fn merged_windows_sum_their_counts_and_resume_the_earliest_early_firing() {
        let w = TimeWindow::new(0, 2_000);
        let (mut count, mut c) = (0, ctx(0));
        Trigger::<()>::on_merge(&mut CountTrigger::of(9), &w, &[2, 3], &mut count, &mut c);
        assert_eq!(count, 5);
        let mut t = ContinuousEventTimeTrigger::of(std::time::Duration::from_millis(300));
        let mut next = None;
        Trigger::<()>::on_merge(&mut t, &w, &[Some(900), None, Some(600)], &mut next, &mut c);
        assert_eq!(next, Some(600));
        let end = TimeWindow::new(0, 100);
        Trigger::<()>::on_merge(&mut EventTimeTrigger, &end, &[(), ()], &mut (), &mut c);
        let at: Vec<Timestamp> = c
            .requests
            .iter()
            .map(|r| match r {
                TimerRequest::Register { at, .. } => *at,
                TimerRequest::Delete { .. } => panic!("a merge deletes no timer"),
            })
            .collect();
        assert_eq!(
            at,
            vec![600, 99],
            "the early firing and the merged window's end"
        );
    }

    #[test]
    fn the_event_time_trigger_fires_at_once_for_a_window_behind_the_watermark() {
        let w = TimeWindow::new(0, 100);
        let r =
            Trigger::<()>::on_element(&mut EventTimeTrigger, &(), 5, &w, &mut (), &mut ctx(500));
        assert_eq!(r, TriggerResult::Fire);
    }
}
