//! Combines per-channel watermarks and idleness into the task's watermark, as Flink's
//! `StatusWatermarkValve` does.
//!
//! Invariants: the task's watermark only increases. It is the minimum over the channels
//! that are active and aligned; an ended channel counts as active at the maximum watermark
//! (its producer sent everything). Watermarks that arrive on an idle channel are ignored.
//! When every channel is idle, the task emits the highest watermark of its channels and then
//! becomes idle; a channel that becomes active again with a lower watermark stays
//! out of the minimum until it catches up, so the task's watermark never goes back.
//! Watermarks are always emitted before the idleness change they come with.

use crate::types::{Timestamp, MAX_WATERMARK, MIN_WATERMARK};

#[derive(Clone, Copy, Debug)]
struct ChannelState {
    watermark: Timestamp,
    idle: bool,
    ended: bool,
    aligned: bool,
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
                    aligned: true,
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
        let emitted = self.emitted;
        let c = &mut self.channels[channel];
        if c.ended || c.idle {
            return;
        }
        if wm > c.watermark {
            c.watermark = wm;
            if !c.aligned && wm >= emitted {
                c.aligned = true;
            }
        }
        self.recompute(out);
    }

    /// Records an idleness change on `channel`.
    pub fn idle(&mut self, channel: usize, idle: bool, out: &mut Vec<ValveOutput>) {
        let emitted = self.emitted;
        let c = &mut self.channels[channel];
        if c.ended || c.idle == idle {
            return;
        }
        c.idle = idle;
        if idle {
            self.after_idle(out);
        } else {
            c.aligned = c.watermark >= emitted;
            if self.idle {
                self.idle = false;
                out.push(ValveOutput::Idle(false));
            }
        }
    }

    /// Records the end of `channel`.
    pub fn end(&mut self, channel: usize, out: &mut Vec<ValveOutput>) {
        let c = &mut self.channels[channel];
        if c.ended {
            return;
        }
        c.ended = true;
        c.idle = false;
        c.aligned = true;
        c.watermark = MAX_WATERMARK;
        self.live -= 1;
        if self.live == 0 {
            self.advance(MAX_WATERMARK, out);
            return;
        }
        self.after_idle(out);
    }

    /// After a channel went idle or ended: either every channel is idle (flush the highest
    /// watermark, then become idle) or the minimum may have moved.
    fn after_idle(&mut self, out: &mut Vec<ValveOutput>) {
        let all_idle = self.channels.iter().all(|c| c.idle);
        if all_idle {
            let max = self
                .channels
                .iter()
                .map(|c| c.watermark)
                .max()
                .unwrap_or(MIN_WATERMARK);
            self.advance(max, out);
            if !self.idle {
                self.idle = true;
                out.push(ValveOutput::Idle(true));
            }
        } else {
            self.recompute(out);
        }
    }

    fn advance(&mut self, wm: Timestamp, out: &mut Vec<ValveOutput>) {
        if wm > self.emitted {
            self.emitted = wm;
            out.push(ValveOutput::Watermark(wm));
        }
    }

    fn recompute(&mut self, out: &mut Vec<ValveOutput>) {
        let min = self
            .channels
            .iter()
            .filter(|c| !c.idle && c.aligned)
            .map(|c| c.watermark)
            .min();
        if let Some(min) = min {
            self.advance(min, out);
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
        assert!(out.is_empty(), "a watermark on an idle channel is ignored");
        v.idle(1, false, &mut out);
        assert_eq!(out, vec![ValveOutput::Idle(false)]);
    }

    #[test]
    fn when_every_channel_goes_idle_the_highest_watermark_is_flushed_before_idleness() {
        let mut v = WatermarkValve::new(2);
        let mut out = Vec::new();
        v.watermark(0, 100, &mut out);
        v.watermark(1, 40, &mut out);
        assert_eq!(out, vec![ValveOutput::Watermark(40)]);
        out.clear();
        v.idle(1, true, &mut out);
        v.idle(0, true, &mut out);
        assert_eq!(
            out,
            vec![ValveOutput::Watermark(100), ValveOutput::Idle(true)]
        );
    }

    #[test]
    fn a_lagging_channel_that_becomes_active_rejoins_only_when_caught_up() {
        let mut v = WatermarkValve::new(2);
        let mut out = Vec::new();
        v.idle(1, true, &mut out);
        v.watermark(0, 100, &mut out);
        out.clear();
        v.idle(1, false, &mut out);
        v.watermark(0, 200, &mut out);
        assert_eq!(
            out,
            vec![ValveOutput::Watermark(200)],
            "channel 1 (at MIN) is unaligned"
        );
        out.clear();
        v.watermark(1, 150, &mut out);
        assert!(out.is_empty(), "still behind the emitted 200");
        v.watermark(1, 250, &mut out);
        v.watermark(0, 300, &mut out);
        assert_eq!(
            out,
            vec![ValveOutput::Watermark(250)],
            "aligned again: the minimum rules"
        );
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
            vec![ValveOutput::Watermark(MAX_WATERMARK)],
            "the ended channel is active at the maximum watermark, so the task is not idle"
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
