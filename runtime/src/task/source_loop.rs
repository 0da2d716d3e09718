//! The loop of a source task: take commands (a trigger snapshots the source), step the
//! source, tick the clock; a finished source ends event time and its input, then takes
//! part in checkpoints until it may end (see [`super::mailbox`]), when it closes its
//! outputs.
//!
//! Invariant: after the barrier of a stop-with-savepoint the source is not stepped and no
//! timer fires; the loop only waits, a bounded time, for the savepoint's end.

use super::clock::Clock;
use super::mailbox::{Commands, Flow};
use super::MAX_WAIT;
use crate::config::JobConfig;
use crate::error::TaskError;
use crate::invokable::{SourceStep, TaskInvokable};
use crate::metrics::TaskMetrics;
use crate::types::MAX_WATERMARK;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs a source task until its source finished, it stopped with a savepoint, or it is
/// cancelled.
pub(super) fn source_loop(
    inv: &mut dyn TaskInvokable,
    config: &JobConfig,
    cancel: &AtomicBool,
    metrics: &TaskMetrics,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    let mut clock = Clock::new(config);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        let wait = if commands.is_stopping() {
            MAX_WAIT
        } else {
            Duration::ZERO
        };
        let since = (wait > Duration::ZERO).then(std::time::Instant::now);
        let flow = commands.poll(inv, true, wait)?;
        if let Some(since) = since {
            metrics.add_idle_ns(since.elapsed().as_nanos() as u64);
        }
        if flow == Flow::Stop {
            return Ok(());
        }
        if commands.is_stopping() {
            // Nothing after the savepoint's barrier.
            continue;
        }
        match inv.source_step()? {
            SourceStep::More => clock.tick(inv, true)?,
            SourceStep::Idle(hint) => {
                let nap = hint.min(clock.wait(inv));
                std::thread::sleep(nap);
                metrics.add_idle_ns(nap.as_nanos() as u64);
                clock.tick(inv, false)?;
            }
            SourceStep::Finished => {
                inv.watermark(MAX_WATERMARK)?;
                inv.end_input()?;
                commands.end_of_input();
                return super::close_when_allowed(inv, cancel, commands, (true, metrics));
            }
        }
    }
}
