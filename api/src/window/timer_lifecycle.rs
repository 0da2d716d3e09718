//! The time half of a window operator's `Lifecycle`, written once for the window operators
//! that fire on timers (`operator.rs`, `triggered_operator.rs`): watermarks and processing
//! time fire due timers before they move on, and the end of a bounded input fires the
//! processing-time timers still pending rather than losing their windows.
//!
//! Invariant: an operator using it has the fields `down`, `watermark`, `assigner`,
//! `timers`, `dropped_late` and `name`, and a method `fire(event_time, now)` that fires
//! every timer due at `now`; a watermark that does not advance changes nothing.

/// Expands, inside an `impl Lifecycle for ...` block, to `downstream`, `watermark`,
/// `processing_time`, `next_processing_time` and `end_input` of a window operator.
macro_rules! timer_lifecycle {
    () => {
        fn downstream(&mut self) -> Option<&mut dyn weir_runtime::Lifecycle> {
            Some(&mut self.down)
        }
        fn watermark(&mut self, wm: weir_runtime::Timestamp) -> Result<(), weir_runtime::TaskError> {
            if wm <= self.watermark && self.watermark != weir_runtime::MIN_WATERMARK {
                return Ok(());
            }
            self.watermark = wm;
            self.fire(true, wm)?;
            if wm == weir_runtime::MAX_WATERMARK && !self.assigner.is_event_time() {
                // A bounded input ends: processing-time windows still open fire now, ahead
                // of the final watermark, rather than being lost.
                self.fire(false, weir_runtime::Timestamp::MAX)?;
            }
            self.down.watermark(wm)
        }
        fn processing_time(
            &mut self,
            now: weir_runtime::Timestamp,
        ) -> Result<(), weir_runtime::TaskError> {
            self.fire(false, now)?;
            self.down.processing_time(now)
        }
        fn next_processing_time(&mut self) -> Option<weir_runtime::Timestamp> {
            weir_runtime::output::earliest(
                self.timers.next_processing_time(),
                self.down.next_processing_time(),
            )
        }
        fn end_input(&mut self) -> Result<(), weir_runtime::TaskError> {
            if self.dropped_late > 0 {
                tracing::warn!(operator = %self.name, dropped = self.dropped_late, "dropped late elements");
            }
            self.down.end_input()
        }
    };
}

pub(crate) use timer_lifecycle;
