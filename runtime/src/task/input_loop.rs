//! The loop of a task with inputs: take commands, take one message from the input queue
//! (a channel opened, a buffer, a failure), tick the clock; the chain's input ends when
//! every channel's data ended, and the task ends once it may (see [`super::mailbox`]) and
//! every channel is closed.
//!
//! Invariants: every wait is bounded by the clock (at most [`MAX_WAIT`]), so an alignment
//! that may time out is checked at least that often; credits collected
//! while the queue is busy are announced at least every few passes; after the barrier of a
//! stop-with-savepoint no timer fires and an upstream's end is not an end of input.

use super::clock::Clock;
use super::inputs::Inputs;
use super::mailbox::{Commands, Flow};
use super::MAX_WAIT;
use crate::checkpoint::channel_state::ChannelData;
use crate::config::JobConfig;
use crate::control::TaskDeployment;
use crate::error::{ExchangeError, TaskError};
use crate::exchange::{InputGate, InputMessage};
use crate::invokable::TaskInvokable;
use crate::metrics::TaskMetrics;
use crate::types::CheckpointId;
use crate::types::MAX_WATERMARK;
use crossbeam_channel::RecvTimeoutError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

/// Runs a task with inputs until every input ended, it stopped with a savepoint, or it is
/// cancelled, reading first `in_flight`, the restored data in flight of its inputs. A task
/// without input channels ends its input at once.
pub(super) fn input_loop(
    inv: &mut dyn TaskInvokable,
    deployment: &TaskDeployment,
    config: &JobConfig,
    cancel: &AtomicBool,
    (gate, in_flight): (&InputGate, Option<(CheckpointId, ChannelData)>),
    metrics: &Arc<TaskMetrics>,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    let mut inputs = Inputs::new(deployment, config, metrics.clone());
    let mut clock = Clock::new(config);
    if let Some(restored) = in_flight {
        // The data an unaligned checkpoint's barriers overtook comes before anything new.
        let records = inputs.replay(inv, restored, commands)?;
        metrics.add_records_in(records);
    }
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
        inputs.release_aborted(inv, commands)?;
        if let Some(due) = inputs.overtake_due(commands) {
            if inputs.time_out(inv, due, commands)? {
                drain(inv, &mut inputs, gate, commands)?;
            }
        }
        inputs.debloat();
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

/// Reads one buffer that arrived earlier, or waits up to `wait` for one message from the
/// input queue and acts on it; returns whether a buffer was read (the chain worked).
/// Priority events (barriers of unaligned checkpoints) come first, and before each buffer
/// is numbered.
fn receive(
    inv: &mut dyn TaskInvokable,
    inputs: &mut Inputs,
    gate: &InputGate,
    wait: Duration,
    metrics: &TaskMetrics,
    commands: &mut Commands<'_>,
) -> Result<bool, TaskError> {
    // While data in flight is captured, everything queued arrives at once: a capture
    // waits for the buffers before each channel's barrier to arrive, not to be read.
    if take_priority(inv, inputs, gate, commands)? || inputs.capturing() {
        drain(inv, inputs, gate, commands)?;
    }
    if inputs.has_unread() {
        let records = inputs.take_next(inv, commands)?;
        metrics.add_records_in(records);
        return Ok(true);
    }
    // Time spent waiting on an empty queue is idle time (Flink's idleTimeMsPerSecond).
    let idle_since = (wait > Duration::ZERO && gate.is_empty()).then(Instant::now);
    let message = gate.recv_timeout(wait);
    if let Some(since) = idle_since {
        let idle = since.elapsed();
        metrics.add_idle_ns(idle.as_nanos() as u64);
        inputs.waited(idle);
    }
    match message {
        Ok(m @ InputMessage::Buffer { .. }) => {
            arrive(inv, inputs, gate, m, commands)?;
            let records = inputs.take_next(inv, commands)?;
            metrics.add_records_in(records);
            Ok(true)
        }
        Ok(m @ InputMessage::Priority { .. }) => {
            if priority(inv, inputs, m, commands)? {
                drain(inv, inputs, gate, commands)?;
            }
            Ok(false)
        }
        Ok(other) => {
            control(inputs, other)?;
            Ok(false)
        }
        Err(RecvTimeoutError::Timeout) => Ok(false),
        Err(RecvTimeoutError::Disconnected) => Err(super::inputs::input_failed(
            "input gate disconnected".into(),
        )),
    }
}

/// Acts on a channel opening or failing.
fn control(inputs: &mut Inputs, message: InputMessage) -> Result<(), TaskError> {
    match message {
        InputMessage::Opened {
            gate: g,
            channel,
            credit,
        } => inputs.opened(g, channel, credit),
        InputMessage::Failed { error, .. } => {
            Err(TaskError::Exchange(ExchangeError::InputFailed(error)))
        }
        InputMessage::Buffer { .. } | InputMessage::Priority { .. } => Ok(()),
    }
}

/// Acts on every priority event queued; returns whether one started a checkpoint.
fn take_priority(
    inv: &mut dyn TaskInvokable,
    inputs: &mut Inputs,
    gate: &InputGate,
    commands: &mut Commands<'_>,
) -> Result<bool, TaskError> {
    let mut started = false;
    while let Some(m) = gate.try_recv_priority() {
        started |= priority(inv, inputs, m, commands)?;
    }
    Ok(started)
}

/// Acts on a priority event; returns whether it started an unaligned checkpoint.
fn priority(
    inv: &mut dyn TaskInvokable,
    inputs: &mut Inputs,
    message: InputMessage,
    commands: &mut Commands<'_>,
) -> Result<bool, TaskError> {
    match message {
        InputMessage::Priority {
            gate: g,
            channel,
            barrier,
        } => inputs.priority(inv, (g, channel), barrier, commands),
        _ => Ok(false),
    }
}

/// Makes every message queued for the task arrive now (a started unaligned checkpoint
/// copies the buffers its barriers overtook); bounded by the credits the task granted.
fn drain(
    inv: &mut dyn TaskInvokable,
    inputs: &mut Inputs,
    gate: &InputGate,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    while let Some(m) = gate.try_recv_data() {
        match m {
            InputMessage::Buffer { .. } => arrive(inv, inputs, gate, m, commands)?,
            other => control(inputs, other)?,
        }
    }
    Ok(())
}

/// A buffer arrives: first every priority event queued (a barrier queued before the buffer
/// overtook it), then the buffer is numbered and queued to be read, then, if a barrier
/// started a checkpoint, every message queued after it.
fn arrive(
    inv: &mut dyn TaskInvokable,
    inputs: &mut Inputs,
    gate: &InputGate,
    message: InputMessage,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    let started = take_priority(inv, inputs, gate, commands)?;
    if let InputMessage::Buffer {
        gate: g,
        channel,
        buffer,
    } = message
    {
        inputs.arrive(g, channel, buffer, commands)?;
    }
    if started {
        drain(inv, inputs, gate, commands)?;
    }
    Ok(())
}
