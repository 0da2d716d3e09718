//! Combines per-channel watermarks and idleness into the task's watermark.
//!
//! The task's watermark is the minimum over all channels that are not idle; it only ever
//! increases. An ended channel holds the maximum watermark (its producer sent everything),
//! so it never holds the others back. When every channel that has not ended is idle, the
//! task is idle; when one becomes active again the task is active. This follows Flink's
//! `StatusWatermarkValve`.

use crate::types::{Timestamp, MAX_WATERMARK, MIN_WATERMARK};

#[derive(Clone, Copy, Debug)]
struct ChannelState {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
}

/// What the valve tells the task to forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValveOutput {
    /// The combined watermark advanced.
    Watermark(Timestamp),
    /// The task became idle (`true`) or active (`false`).
    Idle(bool),
}

/// Tracks watermarks of every input channel of one task.
#[derive(Debug)]
pub struct WatermarkValve {
    channels: Vec<ChannelState>,
    emitted: Timestamp,
    idle: bool,
    live: usize,
}

impl WatermarkValve {
    /// Creates a valve over `channels` input channels.
    pub fn new(channels: usize) -> Self {
        Self {
            channels: vec![
                ChannelState {
                    watermark: MIN_WATERMARK,
                    idle: false,
                    ended: false,
                };
                channels
            ],
            emitted: MIN_WATERMARK,
            idle: false,
            live: channels,
        }
    }

    /// Returns whether every channel has ended.
    pub fn all_ended(&self) -> bool {
        self.live == 0
    }

    /// Returns the last watermark the valve emitted.
    pub fn current(&self) -> Timestamp {
        self.emitted
    }

    /// Records a watermark on `channel`.
    pub fn watermark(&mut self, channel: usize, wm: Timestamp, out: &mut Vec<ValveOutput>) {
        let c = &mut self.channels[channel];
        if c.ended {
            return;
        }
        let was_idle = c.idle;
        c.idle = false;
        if wm > c.watermark {
            c.watermark = wm;
        }
        if was_idle && self.idle {
            self.idle = false;
            out.push(ValveOutput::Idle(false));
        }
        self.recompute(out);
    }

    /// Records an idleness change on `channel`.
    pub fn idle(&mut self, channel: usize, idle: bool, out: &mut Vec<ValveOutput>) {
        let c = &mut self.channels[channel];
        if c.ended || c.idle == idle {
            return;
        }
        c.idle = idle;
        self.update_idle(out);
        self.recompute(out);
    }

    /// Records the end of `channel`.
    pub fn end(&mut self, channel: usize, out: &mut Vec<ValveOutput>) {
        let c = &mut self.channels[channel];
        if c.ended {
            return;
        }
        c.ended = true;
        c.idle = false;
        c.watermark = MAX_WATERMARK;
        self.live -= 1;
        if self.live == 0 {
            if self.emitted < MAX_WATERMARK {
                self.emitted = MAX_WATERMARK;
                out.push(ValveOutput::Watermark(MAX_WATERMARK));
            }
            return;
        }
        self.update_idle(out);
        self.recompute(out);
    }

    fn update_idle(&mut self, out: &mut Vec<ValveOutput>) {
        let all_idle = self.live > 0 && self.channels.iter().all(|c| c.ended || c.idle);
        if all_idle != self.idle {
            self.idle = all_idle;
            out.push(ValveOutput::Idle(all_idle));
        }
    }

    fn recompute(&mut self, out: &mut Vec<ValveOutput>) {
        let min = self
            .channels
            .iter()
            .filter(|c| !c.idle)
            .map(|c| c.watermark)
            .min();
        if let Some(min) = min {
            if min > self.emitted {
                self.emitted = min;
                out.push(ValveOutput::Watermark(min));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_is_minimum_over_channels_and_monotonic() {
        let mut v = WatermarkValve::new(2);
        let mut out = Vec::new();
        v.watermark(0, 10, &mut out);
        assert!(out.is_empty());
        v.watermark(1, 5, &mut out);
        assert_eq!(out, vec![ValveOutput::Watermark(5)]);
        out.clear();
        v.watermark(1, 3, &mut out);
        assert!(out.is_empty(), "watermarks never go back");
        v.watermark(1, 20, &mut out);
        assert_eq!(out, vec![ValveOutput::Watermark(10)]);
    }

    #[test]
    fn idle_channel_does_not_hold_back_the_watermark() {
        let mut v = WatermarkValve::new(2);
        let mut out = Vec::new();
        v.watermark(0, 100, &mut out);
        v.idle(1, true, &mut out);
        assert_eq!(out, vec![ValveOutput::Watermark(100)]);
        out.clear();
        v.idle(0, true, &mut out);
        assert_eq!(out, vec![ValveOutput::Idle(true)]);
        out.clear();
        v.watermark(1, 50, &mut out);
        assert_eq!(out, vec![ValveOutput::Idle(false)]);
    }

    #[test]
    fn an_ended_channel_does_not_hold_back_an_idle_peer() {
        let mut v = WatermarkValve::new(2);
        let mut out = Vec::new();
        v.end(0, &mut out);
        assert!(
            out.is_empty(),
            "channel 1 is still at the minimum watermark"
        );
        v.idle(1, true, &mut out);
        assert_eq!(
            out,
            vec![
                ValveOutput::Idle(true),
                ValveOutput::Watermark(MAX_WATERMARK)
            ]
        );
    }

    #[test]
    fn all_channels_ended_emits_max_watermark_once() {
        let mut v = WatermarkValve::new(2);
        let mut out = Vec::new();
        v.end(0, &mut out);
        v.end(1, &mut out);
        v.end(1, &mut out);
        assert_eq!(out, vec![ValveOutput::Watermark(MAX_WATERMARK)]);
        assert!(v.all_ended());
    }
}
