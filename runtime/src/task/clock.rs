//! A task's clock: when to flush its output buffers (the buffer timeout) and when its
//! processing-time timers are due.
//!
//! Invariant: the loop never blocks past [`MAX_WAIT`], the next buffer timeout, or the
//! next processing-time timer, whichever comes first.

use super::MAX_WAIT;
use crate::config::JobConfig;
use crate::error::TaskError;
use crate::invokable::TaskInvokable;
use crate::types::now_ms;
use std::time::{Duration, Instant};

/// The buffer timeout and processing-time timers of one task loop.
pub(super) struct Clock {
    flush_every: Duration,
    next_flush: Instant,
}

impl Clock {
    pub(super) fn new(config: &JobConfig) -> Self {
        Self {
            flush_every: config.buffer_timeout,
            next_flush: Instant::now() + config.buffer_timeout,
        }
    }

    /// Returns how long the loop may block.
    pub(super) fn wait(&self, inv: &mut dyn TaskInvokable) -> Duration {
        let mut wait = MAX_WAIT;
        if !self.flush_every.is_zero() {
            wait = wait.min(self.next_flush.saturating_duration_since(Instant::now()));
        }
        if let Some(t) = inv.next_processing_time() {
            let dt = t.saturating_sub(now_ms()).max(0) as u64;
            wait = wait.min(Duration::from_millis(dt));
        }
        wait
    }

    /// Fires the processing-time timers that are due, then flushes: on the buffer timeout,
    /// or, with a zero timeout, whenever this pass produced anything (input or timers).
    pub(super) fn tick(
        &mut self,
        inv: &mut dyn TaskInvokable,
        worked: bool,
    ) -> Result<(), TaskError> {
        let mut fired = false;
        if let Some(t) = inv.next_processing_time() {
            let now = now_ms();
            if t <= now {
                inv.processing_time(now)?;
                fired = true;
            }
        }
        if self.flush_every.is_zero() {
            if worked || fired {
                inv.flush()?;
            }
        } else if Instant::now() >= self.next_flush {
            inv.flush()?;
            self.next_flush = Instant::now() + self.flush_every;
        }
        Ok(())
    }
}
