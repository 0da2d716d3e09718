//! One subtask's life: wire its gates and writers, build its chain, run its loop, report.
//!
//! The loop takes, in order: cancellation, input buffers (or a source step), the buffer
//! timeout flush, and due processing-time timers. Every wait is bounded, so a cancelled
//! task stops within [`MAX_WAIT`]. A panic in user code is caught and becomes a
//! [`TaskError::User`] naming the operator that was running and the subtask.

use crate::checkpoint::{AlignAction, BarrierAligner, Uploader};
use crate::config::JobConfig;
use crate::control::JobManagerGateway;
use crate::control::{TaskDeployment, TaskManagerId};
use crate::element::BarrierOptions;
use crate::element::{Element, ElementReader};
use crate::error::{ExchangeError, TaskError};
use crate::exchange::{
    BufferPool, ConnectionManager, CreditSink, GateEntry, GateRegistry, InputCredits, InputGate,
    InputMessage, NetworkBufferPool, PartitionWriter, Subpartition, ValveOutput, WatermarkValve,
    FLAG_CONTINUES,
};
use crate::invokable::{InvokableFactory, SourceStep, TaskInvokable, TaskSetup};
use crate::metrics::{MetricRegistry, TaskMetrics};
use crate::types::CheckpointId;
use crate::types::{now_ms, GateAddress, MAX_WATERMARK};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::cell::Cell;
use std::collections::VecDeque;
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
    /// The TaskManager's budget of network buffers.
    pub network: Arc<NetworkBufferPool>,
    /// The TaskManager's connections to the TaskManagers it sends to.
    pub connections: Arc<ConnectionManager>,
    /// Where tasks acknowledge or decline checkpoints.
    pub jobmanager: Arc<dyn JobManagerGateway>,
}

/// What the TaskManager tells a running task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskCommand {
    /// Sources: snapshot and emit `Barrier(checkpoint)`.
    TriggerCheckpoint {
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Its options.
        options: BarrierOptions,
    },
    /// Checkpoint `checkpoint` is complete.
    CheckpointComplete(CheckpointId),
    /// Checkpoint `checkpoint` was aborted.
    CheckpointAborted(CheckpointId),
}

/// Runs one subtask to its end. Returns `Ok` when it consumed all input.
pub fn run_task(
    deployment: &TaskDeployment,
    factory: &dyn InvokableFactory,
    config: &JobConfig,
    env: &TaskEnvironment,
    cancel: &Arc<AtomicBool>,
    commands: &Receiver<TaskCommand>,
) -> Result<(), TaskError> {
    config.validate().map_err(TaskError::Other)?;
    let gate = InputGate::new();
    let addresses: Vec<GateAddress> = (0..deployment.gates.len())
        .map(|i| GateAddress {
            subtask: deployment.subtask,
            gate: i as u16,
        })
        .collect();
    let mut entries = Vec::with_capacity(addresses.len());
    for (i, spec) in deployment.gates.iter().enumerate() {
        let size =
            spec.channels as usize * config.buffers_per_channel + config.floating_buffers_per_gate;
        let owner = format!("{} input gate {i}", task_label(deployment));
        let pool = BufferPool::new(&env.network, size, config.buffer_size, &owner)
            .map_err(TaskError::from)?;
        entries.push(GateEntry {
            sender: gate.sender(),
            channels: spec.channels,
            pool,
        });
    }
    for (a, entry) in addresses.iter().zip(entries) {
        env.registry.register(*a, entry);
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        run_inner(deployment, factory, config, env, cancel, &gate, commands)
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
    commands: &Receiver<TaskCommand>,
) -> Result<(), TaskError> {
    let metrics = env.metrics.register(deployment.subtask, &deployment.name);
    let uploader = match &config.checkpointing {
        Some(c) => Some(
            Uploader::start(
                c,
                deployment.subtask,
                deployment.parallelism,
                deployment.max_parallelism,
                env.jobmanager.clone(),
            )
            .map_err(|e| TaskError::Other(format!("cannot start the checkpoint uploader: {e}")))?,
        ),
        None => None,
    };
    let mut tasks = Commands {
        rx: commands,
        uploader: uploader.as_ref(),
        stopping: None,
        aborted: None,
    };
    let writers = build_writers(deployment, config, env, cancel, &metrics)?;
    let setup = TaskSetup {
        subtask: deployment.subtask,
        name: deployment.name.clone(),
        parallelism: deployment.parallelism,
        max_parallelism: deployment.max_parallelism,
        config: config.clone(),
        writers,
        gate_inputs: deployment.gates.iter().map(|g| g.input).collect(),
        restore: match &deployment.restore {
            Some(spec) => Some(Arc::new(crate::checkpoint::RestoredState::open(spec)?)),
            None => None,
        },
    };
    CURRENT_OPERATOR.with(|c| c.set(usize::MAX));
    let mut inv = factory.create(setup)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if deployment.is_source {
            source_loop(&mut *inv, config, cancel, &mut tasks)
        } else {
            input_loop(
                &mut *inv, deployment, config, cancel, gate, &metrics, &mut tasks,
            )
        }
    }));
    let result = match outcome {
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
    };
    // Uploads still running read the operators' local snapshots (RocksDB): they finish,
    // and are acknowledged, before the operators and their working directories go.
    drop(uploader);
    drop(inv);
    result
}

fn task_label(deployment: &TaskDeployment) -> String {
    format!(
        "{} ({}/{})",
        deployment.name,
        deployment.subtask.subtask + 1,
        deployment.parallelism
    )
}

fn build_writers(
    deployment: &TaskDeployment,
    config: &JobConfig,
    env: &TaskEnvironment,
    cancel: &Arc<AtomicBool>,
    metrics: &Arc<TaskMetrics>,
) -> Result<Vec<PartitionWriter>, ExchangeError> {
    let mut writers = Vec::with_capacity(deployment.outputs.len());
    for (k, out) in deployment.outputs.iter().enumerate() {
        let size =
            out.targets.len() * config.buffers_per_channel + config.floating_buffers_per_gate;
        let owner = format!("{} output {k}", task_label(deployment));
        let pool = BufferPool::new(&env.network, size, config.buffer_size, &owner)?;
        let mut subs = Vec::with_capacity(out.targets.len());
        for t in &out.targets {
            let sub = if t.taskmanager == env.taskmanager {
                let entry = env
                    .registry
                    .lookup(&t.gate, LOCAL_LOOKUP_TIMEOUT, Some(cancel))?;
                let sub = Arc::new(Subpartition::local(entry.sender.clone(), t.gate, t.channel));
                let opened = InputMessage::Opened {
                    gate: t.gate.gate,
                    channel: t.channel,
                    credit: CreditSink::Local(sub.clone()),
                };
                if entry.sender.send(opened).is_err() {
                    return Err(ExchangeError::ConsumerGone {
                        channel: subs.len(),
                        target: format!("{:?}", t.gate),
                    });
                }
                sub
            } else {
                env.connections
                    .open_channel(t.data_address, t.gate, t.channel)?
            };
            subs.push(sub);
        }
        writers.push(PartitionWriter::new(
            subs,
            pool,
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

/// A task's commands from its TaskManager and its checkpoint uploader.
///
/// Stop-with-savepoint: once a task snapshotted a savepoint whose barrier says `stop`, it
/// processes nothing more (sources stop polling, timers stop firing, an upstream's end is
/// not an end of input) until the savepoint completes, when the task commits and ends
/// without ending its input (no final watermark, no flush of open windows: their state is
/// in the savepoint), or is aborted, when the task resumes.
struct Commands<'a> {
    rx: &'a Receiver<TaskCommand>,
    uploader: Option<&'a Uploader>,
    /// The stop-with-savepoint this task snapshotted and waits for.
    stopping: Option<CheckpointId>,
    /// The newest checkpoint aborted so far (a barrier can arrive after its abort).
    aborted: Option<CheckpointId>,
}

/// What the task loop does after taking its commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Go on.
    Run,
    /// The stop-with-savepoint completed: end the task now.
    Stop,
}

impl Commands<'_> {
    /// Takes the pending commands, waiting up to `wait` for the first: sources snapshot on
    /// a trigger (`is_source`).
    fn poll(
        &mut self,
        inv: &mut dyn TaskInvokable,
        is_source: bool,
        wait: Duration,
    ) -> Result<Flow, TaskError> {
        let mut next = if wait.is_zero() {
            self.rx.try_recv().ok()
        } else {
            self.rx.recv_timeout(wait).ok()
        };
        while let Some(cmd) = next {
            match cmd {
                TaskCommand::TriggerCheckpoint { checkpoint, .. } if self.stopping.is_some() => {
                    self.decline(checkpoint, "the task is stopping with a savepoint")
                }
                TaskCommand::TriggerCheckpoint {
                    checkpoint,
                    options,
                } if is_source => self.snapshot(inv, checkpoint, options, Duration::ZERO)?,
                TaskCommand::TriggerCheckpoint { .. } => {}
                TaskCommand::CheckpointComplete(checkpoint) => {
                    inv.checkpoint_complete(checkpoint)?;
                    if self.stopping == Some(checkpoint) {
                        info!(checkpoint, "stopped with a savepoint");
                        return Ok(Flow::Stop);
                    }
                }
                TaskCommand::CheckpointAborted(checkpoint) => {
                    self.aborted = self.aborted.max(Some(checkpoint));
                    if self.stopping == Some(checkpoint) {
                        info!(checkpoint, "stop-with-savepoint aborted; resuming");
                        self.stopping = None;
                    }
                }
            }
            next = self.rx.try_recv().ok();
        }
        Ok(Flow::Run)
    }

    /// Snapshots the chain and emits the barrier (synchronous part), then hands the state
    /// to the uploader (asynchronous part).
    fn snapshot(
        &mut self,
        inv: &mut dyn TaskInvokable,
        checkpoint: CheckpointId,
        options: BarrierOptions,
        alignment: Duration,
    ) -> Result<(), TaskError> {
        let mut state = Vec::new();
        inv.checkpoint(checkpoint, options, &mut state)?;
        // A stop barrier whose savepoint was already aborted stops nothing.
        if options.stop && self.aborted.is_none_or(|a| a < checkpoint) {
            self.stopping = Some(checkpoint);
        }
        match self.uploader {
            Some(u) => u.submit(checkpoint, state, alignment),
            None => debug!(
                checkpoint,
                "barrier of a job without checkpointing forwarded"
            ),
        }
        Ok(())
    }

    fn decline(&self, checkpoint: CheckpointId, reason: &str) {
        if let Some(u) = self.uploader {
            u.decline(checkpoint, reason);
        }
    }
}

fn source_loop(
    inv: &mut dyn TaskInvokable,
    config: &JobConfig,
    cancel: &AtomicBool,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    let mut clock = Clock::new(config);
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        let wait = if commands.stopping.is_some() {
            MAX_WAIT
        } else {
            Duration::ZERO
        };
        if commands.poll(inv, true, wait)? == Flow::Stop {
            return Ok(());
        }
        if commands.stopping.is_some() {
            // Nothing after the savepoint's barrier.
            continue;
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

/// The consumer-side state of all input channels of one task.
struct Inputs {
    /// First flat channel index of each gate.
    offsets: Vec<usize>,
    /// Logical input of each gate.
    inputs: Vec<u8>,
    credits: Vec<InputCredits>,
    /// Where each channel's credits go, once its producer connected.
    sinks: Vec<Vec<Option<CreditSink>>>,
    /// Per flat channel: the start of a frame that continues in the next buffer.
    pending: Vec<Vec<u8>>,
    /// Per flat channel: buffers held back while the channel is blocked for alignment.
    held: Vec<VecDeque<Held>>,
    /// Per flat channel: whether its end of partition was read.
    ended: Vec<bool>,
    grants: Vec<(usize, u32)>,
    /// Credits granted but not announced yet, per gate and channel.
    deferred: Vec<Vec<u32>>,
    /// Channels with deferred credits.
    dirty: Vec<(usize, usize)>,
    valve: WatermarkValve,
    valve_out: Vec<ValveOutput>,
    aligner: BarrierAligner,
}

/// A buffer held back by alignment: where to go on when its channel is released.
struct Held {
    buffer: crate::exchange::Buffer,
    /// `None` if nothing of it was read yet; else the next byte and the end of its whole
    /// frames.
    resume: Option<(usize, usize)>,
}

/// Where reading whole frames stopped.
enum Stop {
    /// At the end of the bytes.
    End,
    /// After a barrier frame, `after` bytes in.
    Barrier {
        after: usize,
        checkpoint: CheckpointId,
        options: BarrierOptions,
    },
    /// After the end-of-partition frame, `after` bytes in.
    EndOfPartition { after: usize },
}

impl Inputs {
    fn new(deployment: &TaskDeployment, config: &JobConfig) -> Self {
        let mut offsets = Vec::with_capacity(deployment.gates.len());
        let mut total = 0usize;
        for g in &deployment.gates {
            offsets.push(total);
            total += g.channels as usize;
        }
        Self {
            offsets,
            inputs: deployment.gates.iter().map(|g| g.input).collect(),
            credits: deployment
                .gates
                .iter()
                .map(|g| {
                    InputCredits::new(
                        g.channels as usize,
                        config.buffers_per_channel as u32,
                        config.floating_buffers_per_gate as u32,
                    )
                })
                .collect(),
            sinks: deployment
                .gates
                .iter()
                .map(|g| (0..g.channels).map(|_| None).collect())
                .collect(),
            pending: vec![Vec::new(); total],
            held: (0..total).map(|_| VecDeque::new()).collect(),
            ended: vec![false; total],
            grants: Vec::new(),
            deferred: deployment
                .gates
                .iter()
                .map(|g| vec![0; g.channels as usize])
                .collect(),
            dirty: Vec::new(),
            valve: WatermarkValve::new(total),
            valve_out: Vec::new(),
            aligner: BarrierAligner::new(total),
        }
    }

    fn total(&self) -> usize {
        self.pending.len()
    }

    fn capacity(&self) -> usize {
        self.credits.iter().map(InputCredits::capacity).sum()
    }

    fn check(&self, gate: u16, channel: u32) -> Result<(usize, usize), TaskError> {
        let g = gate as usize;
        match self.sinks.get(g) {
            Some(s) if (channel as usize) < s.len() => Ok((g, channel as usize)),
            _ => Err(TaskError::Other(format!(
                "message for unknown gate {g} channel {channel}"
            ))),
        }
    }

    fn unflat(&self, flat: usize) -> (usize, usize) {
        let g = self.offsets.partition_point(|&o| o <= flat) - 1;
        (g, flat - self.offsets[g])
    }

    /// Takes the credits the accounting granted on gate `g`. A channel whose producer
    /// has nothing left to send on (no credit, nothing in flight) gets its credits at
    /// once; others collect them until [`Inputs::flush_credits`], so a busy consumer
    /// announces credits in batches instead of one message per buffer.
    fn announce(&mut self, g: usize) {
        for (ch, n) in std::mem::take(&mut self.grants) {
            let d = &mut self.deferred[g][ch];
            if *d == 0 {
                self.dirty.push((g, ch));
            }
            *d += n;
            if self.credits[g].granted(ch) <= *d {
                let n = std::mem::take(d);
                if let Some(sink) = &self.sinks[g][ch] {
                    sink.announce(n);
                }
            }
        }
    }

    /// Announces every collected credit.
    fn flush_credits(&mut self) {
        for (g, ch) in self.dirty.drain(..) {
            let n = std::mem::take(&mut self.deferred[g][ch]);
            if n > 0 {
                if let Some(sink) = &self.sinks[g][ch] {
                    sink.announce(n);
                }
            }
        }
    }

    fn opened(&mut self, gate: u16, channel: u32, sink: CreditSink) -> Result<(), TaskError> {
        let (g, ch) = self.check(gate, channel)?;
        self.sinks[g][ch] = Some(sink);
        self.credits[g].open(ch, &mut self.grants);
        self.announce(g);
        Ok(())
    }

    /// Takes one buffer from the queue: accounts its credit, then reads it, or holds it
    /// back if its channel is blocked for alignment. Returns the records read.
    fn take(
        &mut self,
        inv: &mut dyn TaskInvokable,
        gate: u16,
        channel: u32,
        buffer: crate::exchange::Buffer,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        let (g, ch) = self.check(gate, channel)?;
        self.credits[g]
            .received(ch, buffer.backlog, &mut self.grants)
            .map_err(|e| TaskError::Other(format!("gate {g}: {e}")))?;
        self.announce(g);
        let flat = self.offsets[g] + ch;
        if self.aligner.is_blocked(flat) || !self.held[flat].is_empty() {
            self.held[flat].push_back(Held {
                buffer,
                resume: None,
            });
            return Ok(0);
        }
        let mut records = self.read(inv, flat, buffer, None, commands)?;
        records += self.drain_released(inv, commands)?;
        Ok(records)
    }

    /// Reads the held buffers of channels that are no longer blocked.
    fn drain_released(
        &mut self,
        inv: &mut dyn TaskInvokable,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        let mut records = 0;
        while let Some(flat) =
            (0..self.total()).find(|&f| !self.aligner.is_blocked(f) && !self.held[f].is_empty())
        {
            let h = self.held[flat].pop_front().expect("non-empty");
            records += self.read(inv, flat, h.buffer, h.resume, commands)?;
        }
        Ok(records)
    }

    /// Reads a buffer of channel `flat` from `resume` (or from its start) until its end
    /// or until a barrier blocks the channel (the rest is held back). Returns the records
    /// read.
    fn read(
        &mut self,
        inv: &mut dyn TaskInvokable,
        flat: usize,
        buffer: crate::exchange::Buffer,
        resume: Option<(usize, usize)>,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        let (g, ch) = self.unflat(flat);
        let data = buffer.payload();
        let continues = buffer.flags & FLAG_CONTINUES != 0;
        let mut records = 0;
        let (mut pos, whole_end) = match resume {
            Some(r) => r,
            None => {
                let mut from = 0;
                if !self.pending[flat].is_empty() {
                    let mut pending = std::mem::take(&mut self.pending[flat]);
                    from = complete_pending(&mut pending, data)
                        .map_err(|e| TaskError::Other(format!("gate {g} channel {ch}: {e}")))?;
                    let whole = pending_is_whole(&pending);
                    let stop = if whole {
                        let (r, stop) = self.elements(inv, g, ch, &pending)?;
                        records += r;
                        pending.clear();
                        if pending.capacity() > 1 << 20 {
                            pending = Vec::new();
                        }
                        Some(stop)
                    } else {
                        None
                    };
                    self.pending[flat] = pending;
                    let whole_end = if continues {
                        (buffer.complete as usize).clamp(from, data.len())
                    } else {
                        data.len()
                    };
                    if let Some(stop) = stop {
                        if self.on_stop(inv, flat, stop, commands)? {
                            self.held[flat].push_front(Held {
                                buffer,
                                resume: Some((from, whole_end)),
                            });
                            return Ok(records);
                        }
                    }
                }
                let whole_end = if continues {
                    (buffer.complete as usize).clamp(from, data.len())
                } else {
                    data.len()
                };
                (from, whole_end)
            }
        };
        while pos < whole_end {
            let (r, stop) = self.elements(inv, g, ch, &data[pos..whole_end])?;
            records += r;
            let after = match stop {
                Stop::End => whole_end - pos,
                Stop::Barrier { after, .. } | Stop::EndOfPartition { after } => after,
            };
            pos += after;
            if self.on_stop(inv, flat, stop, commands)? {
                self.held[flat].push_front(Held {
                    buffer,
                    resume: Some((pos, whole_end)),
                });
                return Ok(records);
            }
        }
        if continues {
            self.pending[flat].extend_from_slice(&data[whole_end..]);
        }
        drop(buffer);
        if self.ended[flat] {
            if !self.pending[flat].is_empty() {
                return Err(TaskError::Other(format!(
                    "gate {g} channel {ch} ended inside a record"
                )));
            }
            self.credits[g].ended(ch, &mut self.grants);
        }
        self.credits[g].recycled(ch, &mut self.grants);
        self.announce(g);
        Ok(records)
    }

    /// Acts on a barrier or an end of partition; returns whether the channel is now
    /// blocked.
    fn on_stop(
        &mut self,
        inv: &mut dyn TaskInvokable,
        flat: usize,
        stop: Stop,
        commands: &mut Commands<'_>,
    ) -> Result<bool, TaskError> {
        let action = match stop {
            Stop::End => return Ok(false),
            Stop::Barrier {
                checkpoint,
                options,
                ..
            } => {
                let out = self.aligner.barrier(flat, checkpoint, options);
                if let Some(aborted) = out.aborted {
                    commands.decline(
                        aborted,
                        &format!(
                            "barrier {checkpoint} arrived before the alignment of {aborted} ended"
                        ),
                    );
                }
                out.action
            }
            Stop::EndOfPartition { .. } if commands.stopping.is_some() => {
                // An upstream task that stopped with the savepoint: not an end of input.
                self.ended[flat] = true;
                return Ok(false);
            }
            Stop::EndOfPartition { .. } => {
                self.ended[flat] = true;
                self.valve.end(flat, &mut self.valve_out);
                self.emit_valve(inv)?;
                self.aligner.end(flat)
            }
        };
        match action {
            AlignAction::Continue => Ok(false),
            AlignAction::Block => Ok(true),
            AlignAction::Snapshot {
                checkpoint,
                options,
                alignment,
            } => {
                commands.snapshot(inv, checkpoint, options, alignment)?;
                Ok(false)
            }
        }
    }

    fn emit_valve(&mut self, inv: &mut dyn TaskInvokable) -> Result<(), TaskError> {
        for o in self.valve_out.drain(..) {
            match o {
                ValveOutput::Watermark(wm) => inv.process_watermark(wm)?,
                ValveOutput::Idle(idle) => inv.process_idle(idle)?,
            }
        }
        Ok(())
    }

    /// Feeds whole frames of one channel to the chain until the bytes end, a barrier, or
    /// the end of partition; returns the records read and where it stopped.
    fn elements(
        &mut self,
        inv: &mut dyn TaskInvokable,
        g: usize,
        ch: usize,
        bytes: &[u8],
    ) -> Result<(u64, Stop), TaskError> {
        let flat = self.offsets[g] + ch;
        let mut reader = ElementReader::new(bytes);
        loop {
            inv.process_records(self.inputs[g], &mut reader)?;
            let stop = match reader.next_element() {
                None => Stop::End,
                Some(Err(e)) => {
                    return Err(TaskError::Other(format!(
                        "corrupt buffer on gate {g} channel {ch}: {e}"
                    )))
                }
                Some(Ok(Element::Watermark(wm))) => {
                    self.valve.watermark(flat, wm, &mut self.valve_out);
                    self.emit_valve(inv)?;
                    continue;
                }
                Some(Ok(Element::Idle(idle))) => {
                    self.valve.idle(flat, idle, &mut self.valve_out);
                    self.emit_valve(inv)?;
                    continue;
                }
                Some(Ok(Element::EndOfPartition)) => Stop::EndOfPartition {
                    after: reader.position(),
                },
                Some(Ok(Element::Barrier(checkpoint, options))) => Stop::Barrier {
                    after: reader.position(),
                    checkpoint,
                    options,
                },
                Some(Ok(Element::Record { .. })) => {
                    return Err(TaskError::Other(
                        "operator chain left records unconsumed".into(),
                    ))
                }
            };
            return Ok((reader.records_read(), stop));
        }
    }
}

/// Buffers a busy consumer takes before it announces the credits it collected.
const CREDIT_BATCH: u32 = 8;

/// Largest frame a channel may reassemble from several buffers.
const MAX_SPANNING_FRAME: usize = 1 << 30;

/// Appends to `pending` (the start of a frame) the bytes of `data` that belong to it;
/// returns how many bytes of `data` it took.
fn complete_pending(pending: &mut Vec<u8>, data: &[u8]) -> Result<usize, String> {
    let mut from = 0;
    if pending.len() < crate::element::FRAME_HEADER {
        let k = (crate::element::FRAME_HEADER - pending.len()).min(data.len());
        pending.extend_from_slice(&data[..k]);
        from = k;
        if pending.len() < crate::element::FRAME_HEADER {
            return Ok(from);
        }
    }
    let total = frame_total(pending);
    if total <= crate::element::FRAME_HEADER || total < pending.len() {
        return Err(format!(
            "a buffer continues a frame of {total} bytes after {} bytes of it",
            pending.len()
        ));
    }
    if total > MAX_SPANNING_FRAME {
        return Err(format!(
            "a record of {total} bytes exceeds the {MAX_SPANNING_FRAME}-byte limit"
        ));
    }
    let k = (total - pending.len()).min(data.len() - from);
    pending.extend_from_slice(&data[from..from + k]);
    Ok(from + k)
}

fn frame_total(pending: &[u8]) -> usize {
    crate::element::FRAME_HEADER
        + u32::from_le_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize
}

fn pending_is_whole(pending: &[u8]) -> bool {
    pending.len() >= crate::element::FRAME_HEADER && pending.len() == frame_total(pending)
}

fn input_loop(
    inv: &mut dyn TaskInvokable,
    deployment: &TaskDeployment,
    config: &JobConfig,
    cancel: &AtomicBool,
    gate: &InputGate,
    metrics: &TaskMetrics,
    commands: &mut Commands<'_>,
) -> Result<(), TaskError> {
    let mut inputs = Inputs::new(deployment, config);
    let mut clock = Clock::new(config);
    if inputs.total() == 0 {
        inv.process_watermark(MAX_WATERMARK)?;
        return inv.end_input();
    }
    let capacity = inputs.capacity() as u64;
    let mut since_flush = 0;
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        if commands.poll(inv, false, Duration::ZERO)? == Flow::Stop {
            return Ok(());
        }
        let queued = gate.len();
        metrics.set_input_queue(queued as u64, capacity);
        if queued == 0 || since_flush >= CREDIT_BATCH {
            inputs.flush_credits();
            since_flush = 0;
        }
        since_flush += 1;
        let wait = if commands.stopping.is_some() {
            MAX_WAIT
        } else {
            clock.wait(inv)
        };
        let worked = match gate.recv_timeout(wait) {
            Ok(InputMessage::Opened {
                gate: g,
                channel,
                credit,
            }) => {
                inputs.opened(g, channel, credit)?;
                false
            }
            Ok(InputMessage::Buffer {
                gate: g,
                channel,
                buffer,
            }) => {
                let records = inputs.take(inv, g, channel, buffer, commands)?;
                metrics.add_records_in(records);
                true
            }
            Ok(InputMessage::Failed { error, .. }) => {
                return Err(TaskError::Exchange(ExchangeError::InputFailed(error)));
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                return Err(TaskError::Other("input gate disconnected".into()))
            }
        };
        if commands.stopping.is_some() {
            // No timers fire after the savepoint's barrier.
            continue;
        }
        clock.tick(inv, worked)?;
        if inputs.valve.all_ended() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = ((body.len() + 1) as u32).to_le_bytes().to_vec();
        f.push(1);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn a_frame_spanning_buffers_is_completed_across_them_even_inside_its_length() {
        let f = frame(&[7u8; 20]);
        let mut pending = f[..2].to_vec();
        // The second buffer completes the length prefix and some of the body.
        assert_eq!(complete_pending(&mut pending, &f[2..10]), Ok(8));
        assert!(!pending_is_whole(&pending));
        let mut rest = f[10..].to_vec();
        rest.extend_from_slice(b"next frames");
        assert_eq!(complete_pending(&mut pending, &rest), Ok(f.len() - 10));
        assert!(pending_is_whole(&pending));
        assert_eq!(pending, f);
    }

    #[test]
    fn a_continued_frame_shorter_than_its_start_is_an_error_not_a_panic() {
        let mut pending = vec![2, 0, 0, 0, 1, 9, 9, 9];
        let err = complete_pending(&mut pending, &[1, 2, 3]).unwrap_err();
        assert!(err.contains("continues a frame"), "{err}");
        let mut empty_frame = vec![0, 0, 0, 0];
        assert!(complete_pending(&mut empty_frame, &[1]).is_err());
    }

    /// A chain that records the checkpoints it snapshotted and saw complete.
    #[derive(Default)]
    struct Recorder {
        snapshots: Vec<CheckpointId>,
        completed: Vec<CheckpointId>,
    }

    impl TaskInvokable for Recorder {
        fn process_records(&mut self, _: u8, _: &mut ElementReader<'_>) -> Result<(), TaskError> {
            Ok(())
        }
        fn process_watermark(&mut self, _: crate::Timestamp) -> Result<(), TaskError> {
            Ok(())
        }
        fn process_idle(&mut self, _: bool) -> Result<(), TaskError> {
            Ok(())
        }
        fn process_processing_time(&mut self, _: crate::Timestamp) -> Result<(), TaskError> {
            Ok(())
        }
        fn next_processing_time(&self) -> Option<crate::Timestamp> {
            None
        }
        fn flush(&mut self) -> Result<(), TaskError> {
            Ok(())
        }
        fn end_input(&mut self) -> Result<(), TaskError> {
            Ok(())
        }
        fn checkpoint(
            &mut self,
            checkpoint: CheckpointId,
            _: BarrierOptions,
            _: &mut Vec<crate::checkpoint::OperatorSnapshot>,
        ) -> Result<(), TaskError> {
            self.snapshots.push(checkpoint);
            Ok(())
        }
        fn checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
            self.completed.push(checkpoint);
            Ok(())
        }
        fn operator_name(&self, _: usize) -> Option<String> {
            None
        }
    }

    const STOP: BarrierOptions = BarrierOptions {
        savepoint: true,
        aligned: true,
        stop: true,
    };

    #[test]
    fn a_stop_barrier_arriving_after_its_abort_does_not_stop_the_task_and_a_completed_stop_ends_it()
    {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut commands = Commands {
            rx: &rx,
            uploader: None,
            stopping: None,
            aborted: None,
        };
        let mut chain = Recorder::default();
        let poll = |c: &mut Commands<'_>, chain: &mut Recorder| {
            c.poll(chain, false, Duration::ZERO).unwrap()
        };

        // Savepoint 3 is aborted (a task declined it) before its barrier reaches this task.
        tx.send(TaskCommand::CheckpointAborted(3)).unwrap();
        assert_eq!(poll(&mut commands, &mut chain), Flow::Run);
        commands
            .snapshot(&mut chain, 3, STOP, Duration::ZERO)
            .unwrap();
        assert_eq!(commands.stopping, None, "an aborted stop stops nothing");

        // Stop-with-savepoint 4 is snapshotted, then aborted: the task resumes.
        commands
            .snapshot(&mut chain, 4, STOP, Duration::ZERO)
            .unwrap();
        assert_eq!(commands.stopping, Some(4));
        tx.send(TaskCommand::CheckpointAborted(4)).unwrap();
        assert_eq!(poll(&mut commands, &mut chain), Flow::Run);
        assert_eq!(commands.stopping, None);

        // Stop-with-savepoint 5 completes: the task commits it and ends; a trigger that
        // comes meanwhile is declined, not snapshotted.
        commands
            .snapshot(&mut chain, 5, STOP, Duration::ZERO)
            .unwrap();
        tx.send(TaskCommand::TriggerCheckpoint {
            checkpoint: 6,
            options: BarrierOptions {
                stop: false,
                ..STOP
            },
        })
        .unwrap();
        assert_eq!(
            Commands::poll(&mut commands, &mut chain, true, Duration::ZERO).unwrap(),
            Flow::Run
        );
        tx.send(TaskCommand::CheckpointComplete(5)).unwrap();
        assert_eq!(poll(&mut commands, &mut chain), Flow::Stop);
        assert_eq!(chain.snapshots, vec![3, 4, 5]);
        assert_eq!(chain.completed, vec![5]);
    }
}
