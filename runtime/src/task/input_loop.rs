//! The loop of a task with inputs: take commands, take one message from the input queue
//! (a channel opened, a buffer, a failure), tick the clock; the chain's input ends when
//! every channel's data ended, and the task ends once it may (see [`super::mailbox`]) and
//! every channel is closed.
//!
//! Invariants: every wait is bounded by the clock (at most [`MAX_WAIT`]); credits collected
//! while the queue is busy are announced at least every few passes; after the barrier of a
//! stop-with-savepoint no timer fires and an upstream's end is not an end of input.

use super::clock::Clock;
use super::inputs::Inputs;
use super::mailbox::{Commands, Flow};
use super::MAX_WAIT;
use crate::config::JobConfig;
use crate::control::TaskDeployment;
use crate::error::{ExchangeError, TaskError};
use crate::exchange::{InputGate, InputMessage};
use crate::invokable::TaskInvokable;
use crate::metrics::TaskMetrics;
use crate::types::MAX_WATERMARK;
use crossbeam_channel::RecvTimeoutError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

/// Runs a task with inputs until every input ended, it stopped with a savepoint, or it is
/// cancelled. A task without input channels ends its input at once.
pub(super) fn input_loop(
    inv: &mut dyn TaskInvokable,
    deployment: &TaskDeployment,
    config: &JobConfig,
    cancel: &AtomicBool,
    gate: &InputGate,
    metrics: &Arc<TaskMetrics>,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    let mut inputs = Inputs::new(deployment, config, metrics.clone());
    let mut clock = Clock::new(config);
    if inputs.total() == 0 {
        inv.watermark(MAX_WATERMARK)?;
        inv.end_input()?;
        commands.end_of_input();
        return super::close_when_allowed(inv, cancel, commands, (false, metrics));
    }
    let capacity = inputs.capacity() as u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        if commands.poll(inv, false, Duration::ZERO)? == Flow::Stop {
            return Ok(());
        }
        let queued = gate.len();
        metrics.set_input_queue(queued as u64, capacity);
        inputs.on_pass(queued);
        let wait = if commands.is_stopping() {
            MAX_WAIT
        } else {
            clock.wait(inv)
        };
        let worked = receive(inv, &mut inputs, gate, wait, metrics, commands)?;
        if commands.is_stopping() {
            // No timers fire after the savepoint's barrier.
            continue;
        }
        clock.tick(inv, worked)?;
        if !commands.input_ended() && inputs.all_ended() {
            info!(task = %deployment.name, subtask = deployment.subtask.subtask, "input ended");
            inv.end_input()?;
            commands.end_of_input();
        }
        if commands.may_close() && inputs.all_closed() {
            return inv.close();
        }
    }
}

/// Waits up to `wait` for one message from the input queue and acts on it; returns whether
/// it was a buffer (the chain worked).
fn receive(
    inv: &mut dyn TaskInvokable,
    inputs: &mut Inputs,
    gate: &InputGate,
    wait: Duration,
    metrics: &TaskMetrics,
    commands: &mut Commands<'_>,
) -> Result<bool, TaskError> {
    // Time spent waiting on an empty queue is idle time (Flink's idleTimeMsPerSecond).
    let idle_since = (wait > Duration::ZERO && gate.is_empty()).then(Instant::now);
    let message = gate.recv_timeout(wait);
    if let Some(since) = idle_since {
        metrics.add_idle_ns(since.elapsed().as_nanos() as u64);
    }
    match message {
        Ok(InputMessage::Opened {
            gate: g,
            channel,
            credit,
        }) => {
            inputs.opened(g, channel, credit)?;
            Ok(false)
        }
        Ok(InputMessage::Buffer {
            gate: g,
            channel,
            buffer,
        }) => {
            let records = inputs.take(inv, g, channel, buffer, commands)?;
            metrics.add_records_in(records);
            Ok(true)
        }
        Ok(InputMessage::Failed { error, .. }) => {
            Err(TaskError::Exchange(ExchangeError::InputFailed(error)))
        }
        Err(RecvTimeoutError::Timeout) => Ok(false),
        Err(RecvTimeoutError::Disconnected) => Err(super::inputs::input_failed(
            "input gate disconnected".into(),
        )),
    }
}
