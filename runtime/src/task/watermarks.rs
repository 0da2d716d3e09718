//! The watermark valve of a task with inputs: the watermarks, idleness changes and ends of
//! its input channels go through one [`WatermarkValve`], and what the valve lets through
//! goes to the chain at once.
//!
//! Invariant: the chain sees the valve's outputs in the order the valve produced them, and
//! before the task reads anything more from its inputs.

use crate::error::TaskError;
use crate::exchange::{ValveOutput, WatermarkValve};
use crate::invokable::TaskInvokable;
use crate::metrics::TaskMetrics;
use crate::types::Timestamp;
use std::sync::Arc;

/// The valve over all input channels (flat indices) of one task.
pub(super) struct Watermarks {
    valve: WatermarkValve,
    /// What the valve let through and the chain did not get yet; reused across calls.
    out: Vec<ValveOutput>,
    /// Where the watermark the chain received last is shown.
    metrics: Arc<TaskMetrics>,
}

impl Watermarks {
    /// A valve over `channels` input channels.
    pub(super) fn new(channels: usize, metrics: Arc<TaskMetrics>) -> Self {
        Self {
            valve: WatermarkValve::new(channels),
            out: Vec::new(),
            metrics,
        }
    }

    /// Returns whether every channel ended.
    pub(super) fn all_ended(&self) -> bool {
        self.valve.all_ended()
    }

    /// Channel `channel` delivered watermark `wm`.
    pub(super) fn watermark(
        &mut self,
        inv: &mut dyn TaskInvokable,
        channel: usize,
        wm: Timestamp,
    ) -> Result<(), TaskError> {
        self.valve.watermark(channel, wm, &mut self.out);
        self.emit(inv)
    }

    /// Channel `channel` became idle (`true`) or active again (`false`).
    pub(super) fn idle(
        &mut self,
        inv: &mut dyn TaskInvokable,
        channel: usize,
        idle: bool,
    ) -> Result<(), TaskError> {
        self.valve.idle(channel, idle, &mut self.out);
        self.emit(inv)
    }

    /// Channel `channel` delivered its end of partition.
    pub(super) fn end(
        &mut self,
        inv: &mut dyn TaskInvokable,
        channel: usize,
    ) -> Result<(), TaskError> {
        self.valve.end(channel, &mut self.out);
        self.emit(inv)
    }

    fn emit(&mut self, inv: &mut dyn TaskInvokable) -> Result<(), TaskError> {
        for o in self.out.drain(..) {
            match o {
                ValveOutput::Watermark(wm) => {
                    self.metrics.set_input_watermark(wm);
                    inv.watermark(wm)?
                }
                ValveOutput::Idle(idle) => inv.idle(idle)?,
            }
        }
        Ok(())
    }
}
