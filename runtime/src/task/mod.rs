//! One subtask's life: wire its gates and writers, build its chain, run its loop, report.
//!
//! The loop takes, in order: cancellation, input buffers (or a source step), the buffer
//! timeout flush, and due processing-time timers. Every wait is bounded, so a cancelled
//! task stops within [`MAX_WAIT`]. A panic in user code is caught and becomes a
//! [`TaskError::User`] naming the operator that was running and the subtask.
//!
//! The parts, each in its own file: the wiring of gates and writers, the operator scope
//! that attributes panics, the mailbox of commands from the TaskManager and the checkpoint
//! uploader, the clock of buffer timeouts and processing-time timers, the source loop,
//! and, for tasks with inputs, the input loop over the input side (channels, alignment,
//! frame reassembly and credits) and its watermark valve.

mod clock;
mod in_flight;
mod input_loop;
mod inputs;
mod mailbox;
mod operator_scope;
mod output_barriers;
mod source_loop;
mod watermarks;
mod wiring;

pub use operator_scope::{enter_operator, panic_message, OperatorScope};

use crate::checkpoint::Uploader;
use crate::config::JobConfig;
use crate::control::JobManagerGateway;
use crate::control::{TaskDeployment, TaskManagerId};
use crate::element::BarrierOptions;
use crate::error::TaskError;
use crate::exchange::{ConnectionManager, GateRegistry, InputGate, NetworkBufferPool};
use crate::invokable::{InvokableFactory, TaskInvokable, TaskSetup};
use crate::metrics::MetricRegistry;
use crate::types::CheckpointId;
use crossbeam_channel::Receiver;
use mailbox::Commands;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The longest a task waits before it looks at its cancellation flag again.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

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
    /// Checkpoint `checkpoint` is complete; `last`: it is the job's final checkpoint.
    CheckpointComplete {
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Every task had ended its input before snapshotting it.
        last: bool,
    },
    /// Checkpoint `checkpoint` was aborted.
    CheckpointAborted(CheckpointId),
}

/// After the end of input: takes commands (sources still snapshot on triggers) until the
/// task may end (see [`mailbox::Commands::may_close`]), then closes the chain's outputs.
fn close_when_allowed(
    inv: &mut dyn TaskInvokable,
    cancel: &AtomicBool,
    commands: &mut mailbox::Commands<'_>,
    (is_source, metrics): (bool, &crate::metrics::TaskMetrics),
) -> Result<(), TaskError> {
    while !commands.may_close() {
        if cancel.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        // Waiting for the checkpoint that lets the task end is idle time.
        let since = std::time::Instant::now();
        let flow = commands.poll(inv, is_source, MAX_WAIT)?;
        metrics.add_idle_ns(since.elapsed().as_nanos() as u64);
        if flow == mailbox::Flow::Stop {
            return Ok(());
        }
    }
    inv.close()
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
    config
        .validate()
        .map_err(|e| TaskError::Configuration(e.to_string()))?;
    let gate = InputGate::new();
    let addresses = wiring::register_gates(deployment, config, env, &gate)?;
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
    let _ended = EndedOnDrop(metrics.clone());
    let uploader = match &config.checkpointing {
        Some(c) => Some(
            Uploader::start(
                c,
                deployment.subtask,
                deployment.parallelism,
                deployment.max_parallelism,
                env.jobmanager.clone(),
            )
            .map_err(|e| TaskError::Io(format!("cannot start the checkpoint uploader: {e}")))?,
        ),
        None => None,
    };
    let mut writers = wiring::build_writers(deployment, config, env, cancel, &metrics)?;
    let mut tasks = Commands::new(commands, uploader.as_ref());
    if let Some(barriers) = wiring::output_barriers(config, &writers) {
        tasks = tasks.with_outputs(barriers);
    }
    let restore = match &deployment.restore {
        Some(spec) => Some(Arc::new(crate::checkpoint::RestoredState::open(spec)?)),
        None => None,
    };
    let in_flight = match &restore {
        Some(r) => Some(wiring::restore_in_flight(deployment, r, &mut writers)?),
        None => None,
    };
    let setup = TaskSetup {
        subtask: deployment.subtask,
        name: deployment.name.clone(),
        parallelism: deployment.parallelism,
        max_parallelism: deployment.max_parallelism,
        config: config.clone(),
        writers,
        gate_inputs: deployment.gates.iter().map(|g| g.input).collect(),
        restore,
        metrics: metrics.clone(),
    };
    operator_scope::reset();
    let mut inv = factory.create(setup)?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        if deployment.is_source {
            source_loop::source_loop(&mut *inv, config, cancel, &metrics, &mut tasks)
        } else {
            let input = (gate, in_flight);
            input_loop::input_loop(
                &mut *inv, deployment, config, cancel, input, &metrics, &mut tasks,
            )
        }
    }));
    let result = match outcome {
        Ok(r) => r,
        Err(panic) => {
            let op = inv
                .operator_name(operator_scope::current())
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

/// Marks a task's metrics ended however its run ends (an early error included).
struct EndedOnDrop(Arc<crate::metrics::TaskMetrics>);

impl Drop for EndedOnDrop {
    fn drop(&mut self) {
        self.0.set_finished();
    }
}
