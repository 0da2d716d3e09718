//! One subtask's life: wire its gates and writers, build its chain, run its loop, report.
//!
//! The loop takes, in order: cancellation, input buffers (or a source step), the buffer
//! timeout flush, and due processing-time timers. Every wait is bounded, so a cancelled
//! task stops within [`MAX_WAIT`]. A panic in user code is caught and becomes a
//! [`TaskError::User`] naming the operator that was running and the subtask.

use crate::config::JobConfig;
use crate::control::{TaskDeployment, TaskManagerId};
use crate::element::{Element, ElementReader};
use crate::error::{ExchangeError, TaskError};
use crate::exchange::{
    ChannelSink, GateRegistry, InputGate, InputMessage, PartitionWriter, RemoteChannel,
    ValveOutput, WatermarkValve,
};
use crate::invokable::{InvokableFactory, SourceStep, TaskInvokable, TaskSetup};
use crate::metrics::{MetricRegistry, TaskMetrics};
use crate::types::{now_ms, GateAddress, MAX_WATERMARK};
use crossbeam_channel::RecvTimeoutError;
use std::cell::Cell;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// The longest a task waits before it looks at its cancellation flag again.
pub const MAX_WAIT: Duration = Duration::from_millis(50);
const LOCAL_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

thread_local! {
    static CURRENT_OPERATOR: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// Marks the chain's `index`-th operator as the one running user code on this thread, so a
/// panic can be attributed to it, until the returned scope ends. Ending the scope restores
/// the caller's operator, so user code that runs after a downstream call is attributed to
/// its own operator again; during a panic the innermost operator stays marked.
#[inline]
pub fn enter_operator(index: usize) -> OperatorScope {
    OperatorScope {
        previous: CURRENT_OPERATOR.with(|c| c.replace(index)),
    }
}

/// The time an operator is marked as running user code (see [`enter_operator`]).
#[must_use = "the operator stays marked only while the scope lives"]
pub struct OperatorScope {
    previous: usize,
}

impl Drop for OperatorScope {
    #[inline]
    fn drop(&mut self) {
        if !std::thread::panicking() {
            CURRENT_OPERATOR.with(|c| c.set(self.previous));
        }
    }
}

/// What a TaskManager provides to the tasks it runs.
pub struct TaskEnvironment {
    /// The TaskManager's gate directory.
    pub registry: Arc<GateRegistry>,
    /// The TaskManager's id (channels to the same id stay in memory).
    pub taskmanager: TaskManagerId,
    /// The TaskManager's data-plane address.
    pub data_address: SocketAddr,
    /// Where the TaskManager's tasks publish their metrics.
    pub metrics: Arc<MetricRegistry>,
}

/// Runs one subtask to its end. Returns `Ok` when it consumed all input.
pub fn run_task(
    deployment: &TaskDeployment,
    factory: &dyn InvokableFactory,
    config: &JobConfig,
    env: &TaskEnvironment,
    cancel: &Arc<AtomicBool>,
) -> Result<(), TaskError> {
    let capacity: usize = deployment
        .gates
        .iter()
        .map(|g| {
            g.channels as usize * config.buffers_per_channel + config.floating_buffers_per_gate
        })
        .sum();
    let gate = InputGate::new(capacity);
    let addresses: Vec<GateAddress> = (0..deployment.gates.len())
        .map(|i| GateAddress {
            subtask: deployment.subtask,
            gate: i as u16,
        })
        .collect();
    for (a, spec) in addresses.iter().zip(&deployment.gates) {
        env.registry.register(*a, gate.sender(), spec.channels);
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        run_inner(deployment, factory, config, env, cancel, &gate)
    }));
    for a in &addresses {
        env.registry.unregister(a);
    }
    match result {
        Ok(result) => result,
        Err(panic) => Err(TaskError::user(
            deployment.name.clone(),
            format!("panicked: {}", panic_message(&*panic)),
        )),
    }
}

fn run_inner(
    deployment: &TaskDeployment,
    factory: &dyn InvokableFactory,
    config: &JobConfig,
    env: &TaskEnvironment,
    cancel: &Arc<AtomicBool>,
    gate: &InputGate,
) -> Result<(), TaskError> {
    let metrics = env.metrics.register(deployment.subtask, &deployment.name);
    let writers = build_writers(deployment, config, env, cancel, &metrics)?;
    let setup = TaskSetup {
        subtask: deployment.subtask,
        name: deployment.name.clone(),
        parallelism: deployment.parallelism,
        max_parallelism: deployment.max_parallelism,
        config: config.clone(),
        writers,
        gate_inputs: deployment.gates.iter().map(|g| g.input).collect(),
    };
    CURRENT_OPERATOR.with(|c| c.set(usize::MAX));
    let mut inv = factory.create(setup)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if deployment.is_source {
            source_loop(&mut *inv, config, cancel)
        } else {
            input_loop(&mut *inv, deployment, config, cancel, gate, &metrics)
        }
    }));
    match outcome {
        Ok(r) => r,
        Err(panic) => {
            let idx = CURRENT_OPERATOR.with(|c| c.get());
            let op = inv
                .operator_name(idx)
                .unwrap_or_else(|| deployment.name.clone());
            Err(TaskError::user(
                op,
                format!("panicked: {}", panic_message(&*panic)),
            ))
        }
    }
}

fn build_writers(
    deployment: &TaskDeployment,
    config: &JobConfig,
    env: &TaskEnvironment,
    cancel: &Arc<AtomicBool>,
    metrics: &Arc<TaskMetrics>,
) -> Result<Vec<PartitionWriter>, ExchangeError> {
    let mut writers = Vec::with_capacity(deployment.outputs.len());
    for out in &deployment.outputs {
        let mut sinks = Vec::with_capacity(out.targets.len());
        for t in &out.targets {
            let sink = if t.taskmanager == env.taskmanager {
                ChannelSink::Local {
                    sender: env
                        .registry
                        .lookup(&t.gate, LOCAL_LOOKUP_TIMEOUT, Some(cancel))?,
                    gate: t.gate,
                    channel: t.channel,
                }
            } else {
                ChannelSink::Remote(RemoteChannel::connect(
                    t.data_address,
                    t.gate,
                    t.channel,
                    config.buffer_size,
                )?)
            };
            sinks.push(sink);
        }
        writers.push(PartitionWriter::new(
            sinks,
            config.buffer_size,
            cancel.clone(),
            metrics.clone(),
        ));
    }
    Ok(writers)
}

struct Clock {
    flush_every: Duration,
    next_flush: Instant,
}

impl Clock {
    fn new(config: &JobConfig) -> Self {
        Self {
            flush_every: config.buffer_timeout,
            next_flush: Instant::now() + config.buffer_timeout,
        }
    }

    /// Returns how long the loop may block.
    fn wait(&self, inv: &dyn TaskInvokable) -> Duration {
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
    fn tick(&mut self, inv: &mut dyn TaskInvokable, worked: bool) -> Result<(), TaskError> {
        let mut fired = false;
        if let Some(t) = inv.next_processing_time() {
            let now = now_ms();
            if t <= now {
                inv.process_processing_time(now)?;
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

fn source_loop(
    inv: &mut dyn TaskInvokable,
    config: &JobConfig,
    cancel: &AtomicBool,
) -> Result<(), TaskError> {
    let mut clock = Clock::new(config);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        match inv.source_step()? {
            SourceStep::More => clock.tick(inv, true)?,
            SourceStep::Idle(hint) => {
                std::thread::sleep(hint.min(clock.wait(inv)));
                clock.tick(inv, false)?;
            }
            SourceStep::Finished => {
                inv.process_watermark(MAX_WATERMARK)?;
                inv.end_input()?;
                return Ok(());
            }
        }
    }
}

fn input_loop(
    inv: &mut dyn TaskInvokable,
    deployment: &TaskDeployment,
    config: &JobConfig,
    cancel: &AtomicBool,
    gate: &InputGate,
    metrics: &TaskMetrics,
) -> Result<(), TaskError> {
    let mut offsets = Vec::with_capacity(deployment.gates.len());
    let mut total = 0usize;
    for g in &deployment.gates {
        offsets.push(total);
        total += g.channels as usize;
    }
    let inputs: Vec<u8> = deployment.gates.iter().map(|g| g.input).collect();
    let mut valve = WatermarkValve::new(total);
    let mut valve_out = Vec::new();
    let mut clock = Clock::new(config);
    if total == 0 {
        inv.process_watermark(MAX_WATERMARK)?;
        return inv.end_input();
    }
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        metrics.set_input_queue(gate.len() as u64, gate.capacity() as u64);
        let worked = match gate.recv_timeout(clock.wait(inv)) {
            Ok(InputMessage::Buffer {
                gate: g,
                channel,
                data,
            }) => {
                let g = g as usize;
                if g >= offsets.len() || channel >= deployment.gates[g].channels {
                    return Err(TaskError::Other(format!(
                        "buffer for unknown gate {g} channel {channel}"
                    )));
                }
                let ch = offsets[g] + channel as usize;
                let mut reader = ElementReader::new(&data);
                loop {
                    inv.process_records(inputs[g], &mut reader)?;
                    match reader.next_element() {
                        None => break,
                        Some(Err(e)) => {
                            return Err(TaskError::Other(format!(
                                "corrupt buffer on gate {g} channel {channel}: {e}"
                            )))
                        }
                        Some(Ok(Element::Watermark(wm))) => valve.watermark(ch, wm, &mut valve_out),
                        Some(Ok(Element::Idle(idle))) => valve.idle(ch, idle, &mut valve_out),
                        Some(Ok(Element::EndOfPartition)) => valve.end(ch, &mut valve_out),
                        Some(Ok(Element::Barrier(id, _))) => {
                            debug!(checkpoint = id, "checkpoint barriers are not handled yet")
                        }
                        Some(Ok(Element::Record { .. })) => {
                            return Err(TaskError::Other(
                                "operator chain left records unconsumed".into(),
                            ))
                        }
                    }
                    for o in valve_out.drain(..) {
                        match o {
                            ValveOutput::Watermark(wm) => inv.process_watermark(wm)?,
                            ValveOutput::Idle(idle) => inv.process_idle(idle)?,
                        }
                    }
                }
                metrics.add_records_in(reader.records_read());
                true
            }
            Ok(InputMessage::Failed { error, .. }) => {
                return Err(TaskError::Other(error));
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TaskError::Other("input gate disconnected".into()))
            }
        };
        clock.tick(inv, worked)?;
        if valve.all_ended() {
            info!(task = %deployment.name, subtask = deployment.subtask.subtask, "input ended");
            return inv.end_input();
        }
    }
}

/// Extracts the message of a panic payload.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
