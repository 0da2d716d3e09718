//! Time windows and the assigners that put elements into them.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use weir_runtime::Timestamp;

/// A half-open time interval `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeWindow {
    /// First timestamp in the window.
    pub start: Timestamp,
    /// First timestamp after the window.
    pub end: Timestamp,
}

impl TimeWindow {
    /// Creates `[start, end)`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        Self { start, end }
    }

    /// Returns the last timestamp in the window, `end - 1`: the window fires when time reaches it.
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    /// Returns whether the windows overlap or touch (session windows merge then).
    pub fn intersects(&self, other: &TimeWindow) -> bool {
        self.start <= other.end && self.end >= other.start
    }

    /// Returns the smallest window covering both.
    pub fn cover(&self, other: &TimeWindow) -> TimeWindow {
        TimeWindow::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Where elements go: the kind of window, its sizes, and its time domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowAssigner {
    /// Fixed-size, non-overlapping windows.
    Tumbling {
        /// Window length in ms.
        size: i64,
        /// Shift of window starts in ms.
        offset: i64,
        /// Event time (`true`) or processing time.
        event_time: bool,
    },
    /// Fixed-size windows starting every `slide`.
    Sliding {
        /// Window length in ms.
        size: i64,
        /// Distance between window starts in ms.
        slide: i64,
        /// Shift of window starts in ms.
        offset: i64,
        /// Event time (`true`) or processing time.
        event_time: bool,
    },
    /// Windows that close after a gap without elements; merged per key.
    Session {
        /// The inactivity gap in ms.
        gap: i64,
        /// Event time (`true`) or processing time.
        event_time: bool,
    },
}

/// Converts to milliseconds, saturating at `i64::MAX`.
pub(crate) fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds of a window length, which must be at least one millisecond.
fn positive_ms(what: &str, d: Duration) -> i64 {
    let v = ms(d);
    assert!(v > 0, "window {what} must be at least 1 ms, got {d:?}");
    v
}

/// Returns the start of the window of `size` (shifted by `offset`) that contains `ts`.
pub fn window_start(ts: Timestamp, offset: i64, size: i64) -> Timestamp {
    ts - (ts - offset).rem_euclid(size)
}

impl WindowAssigner {
    /// Returns whether windows are in event time.
    pub fn is_event_time(&self) -> bool {
        match self {
            WindowAssigner::Tumbling { event_time, .. }
            | WindowAssigner::Sliding { event_time, .. }
            | WindowAssigner::Session { event_time, .. } => *event_time,
        }
    }

    /// Returns whether windows of one key merge (sessions).
    pub fn is_merging(&self) -> bool {
        matches!(self, WindowAssigner::Session { .. })
    }

    /// Appends the windows that contain time `ts` to `out`.
    pub fn assign(&self, ts: Timestamp, out: &mut Vec<TimeWindow>) {
        match *self {
            WindowAssigner::Tumbling { size, offset, .. } => {
                let start = window_start(ts, offset, size);
                out.push(TimeWindow::new(start, start + size));
            }
            WindowAssigner::Sliding {
                size,
                slide,
                offset,
                ..
            } => {
                let last = window_start(ts, offset, slide);
                let mut start = last;
                while start > ts - size {
                    out.push(TimeWindow::new(start, start + size));
                    start -= slide;
                }
            }
            WindowAssigner::Session { gap, .. } => out.push(TimeWindow::new(ts, ts + gap)),
        }
    }
}

/// Tumbling windows in event time.
pub struct TumblingEventTimeWindows;
impl TumblingEventTimeWindows {
    /// Windows of length `size`.
    pub fn of(size: Duration) -> WindowAssigner {
        Self::with_offset(size, Duration::ZERO)
    }
    /// Windows of length `size` starting at multiples of `size` plus `offset`.
    pub fn with_offset(size: Duration, offset: Duration) -> WindowAssigner {
        WindowAssigner::Tumbling {
            size: positive_ms("size", size),
            offset: ms(offset),
            event_time: true,
        }
    }
}

/// Tumbling windows in processing time.
pub struct TumblingProcessingTimeWindows;
impl TumblingProcessingTimeWindows {
    /// Windows of length `size`.
    pub fn of(size: Duration) -> WindowAssigner {
        WindowAssigner::Tumbling {
            size: positive_ms("size", size),
            offset: 0,
            event_time: false,
        }
    }
}

/// Sliding windows in event time.
pub struct SlidingEventTimeWindows;
impl SlidingEventTimeWindows {
    /// Windows of length `size` starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> WindowAssigner {
        WindowAssigner::Sliding {
            size: positive_ms("size", size),
            slide: positive_ms("slide", slide),
            offset: 0,
            event_time: true,
        }
    }
}

/// Sliding windows in processing time.
pub struct SlidingProcessingTimeWindows;
impl SlidingProcessingTimeWindows {
    /// Windows of length `size` starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> WindowAssigner {
        WindowAssigner::Sliding {
            size: positive_ms("size", size),
            slide: positive_ms("slide", slide),
            offset: 0,
            event_time: false,
        }
    }
}

/// Session windows in event time.
pub struct EventTimeSessionWindows;
impl EventTimeSessionWindows {
    /// Sessions that end after `gap` without elements.
    pub fn with_gap(gap: Duration) -> WindowAssigner {
        WindowAssigner::Session {
            gap: positive_ms("gap", gap),
            event_time: true,
        }
    }
}

/// Session windows in processing time.
pub struct ProcessingTimeSessionWindows;
impl ProcessingTimeSessionWindows {
    /// Sessions that end after `gap` without elements.
    pub fn with_gap(gap: Duration) -> WindowAssigner {
        WindowAssigner::Session {
            gap: positive_ms("gap", gap),
            event_time: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assign(a: WindowAssigner, ts: i64) -> Vec<(i64, i64)> {
        let mut v = Vec::new();
        a.assign(ts, &mut v);
        v.into_iter().map(|w| (w.start, w.end)).collect()
    }

    #[test]
    fn tumbling_window_contains_its_start_but_not_its_end() {
        let a = TumblingEventTimeWindows::of(Duration::from_millis(1000));
        assert_eq!(assign(a, 0), vec![(0, 1000)]);
        assert_eq!(assign(a, 999), vec![(0, 1000)]);
        assert_eq!(assign(a, 1000), vec![(1000, 2000)]);
        assert_eq!(assign(a, -1), vec![(-1000, 0)]);
    }

    #[test]
    fn tumbling_offset_shifts_window_starts() {
        let a = TumblingEventTimeWindows::with_offset(
            Duration::from_millis(1000),
            Duration::from_millis(100),
        );
        assert_eq!(assign(a, 50), vec![(-900, 100)]);
        assert_eq!(assign(a, 100), vec![(100, 1100)]);
    }

    #[test]
    fn sliding_assigns_size_over_slide_windows_latest_first() {
        let a =
            SlidingEventTimeWindows::of(Duration::from_millis(1000), Duration::from_millis(500));
        assert_eq!(assign(a, 1200), vec![(1000, 2000), (500, 1500)]);
        assert_eq!(assign(a, 1000), vec![(1000, 2000), (500, 1500)]);
    }

    #[test]
    #[should_panic(expected = "window size must be at least 1 ms")]
    fn a_zero_window_size_is_rejected_where_the_window_is_defined() {
        let _ = TumblingEventTimeWindows::of(Duration::ZERO);
    }

    #[test]
    fn huge_durations_saturate_instead_of_wrapping() {
        assert_eq!(ms(Duration::MAX), i64::MAX);
    }

    #[test]
    fn windows_fire_at_end_minus_one_and_sessions_touching_merge() {
        let w = TimeWindow::new(0, 1000);
        assert_eq!(w.max_timestamp(), 999);
        assert!(w.intersects(&TimeWindow::new(1000, 1500)));
        assert!(!w.intersects(&TimeWindow::new(1001, 1500)));
        assert_eq!(
            w.cover(&TimeWindow::new(500, 1500)),
            TimeWindow::new(0, 1500)
        );
    }
}
