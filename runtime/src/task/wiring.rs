//! The wiring of a subtask into the data exchange: its input gates registered in the
//! TaskManager's directory, and one partition writer per output.
//!
//! Invariants: a task registers either all its gates or none (every gate's buffer pool is
//! reserved before the first registration); each gate and each output gets its own pool of
//! `channels × buffers_per_channel + floating_buffers_per_gate` buffers.

use super::output_barriers::{OutputBarriers, OutputChannels};
use super::TaskEnvironment;
use crate::checkpoint::channel_state::{self, ChannelData};
use crate::config::JobConfig;
use crate::control::TaskDeployment;
use crate::error::{ExchangeError, TaskError};
use crate::exchange::{
    BufferPool, GateEntry, InputGate, InputMessage, PartitionWriter, Subpartition,
};
use crate::metrics::TaskMetrics;
use crate::types::GateAddress;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// The longest a producer waits for a consumer in its own TaskManager to register a gate.
const LOCAL_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Registers the task's input gates, all feeding `gate`, in the TaskManager's directory;
/// returns their addresses, to unregister when the task ends.
pub(super) fn register_gates(
    deployment: &TaskDeployment,
    config: &JobConfig,
    env: &TaskEnvironment,
    gate: &InputGate,
) -> Result<Vec<GateAddress>, TaskError> {
    let addresses: Vec<GateAddress> = (0..deployment.gates.len())
        .map(|i| GateAddress {
            subtask: deployment.subtask,
            gate: i as u16,
            attempt: deployment.attempt,
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
    Ok(addresses)
}

/// Names the subtask in buffer pool owners: `name (index/parallelism)`.
fn task_label(deployment: &TaskDeployment) -> String {
    format!(
        "{} ({}/{})",
        deployment.name,
        deployment.subtask.subtask + 1,
        deployment.parallelism
    )
}

/// Opens every output channel (in memory to a consumer in this TaskManager, else over its
/// connection) and returns one writer per output.
pub(super) fn build_writers(
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
            // This attempt's consumer: a lookup never finds an earlier or later one's gate.
            let gate = GateAddress {
                attempt: deployment.attempt,
                ..t.gate
            };
            let sub = if t.taskmanager == env.taskmanager {
                let entry = env
                    .registry
                    .lookup(&gate, LOCAL_LOOKUP_TIMEOUT, Some(cancel))?;
                let sub = Arc::new(Subpartition::local(entry.sender.clone(), gate, t.channel));
                let opened = InputMessage::Opened {
                    gate: gate.gate,
                    channel: t.channel,
                    credit: Box::new(sub.clone()),
                };
                if entry.sender.send(opened).is_err() {
                    return Err(ExchangeError::ConsumerGone {
                        channel: subs.len(),
                        target: format!("{:?}", gate),
                    });
                }
                sub
            } else {
                env.connections
                    .open_channel(t.data_address, gate, t.channel)?
            };
            subs.push(sub);
        }
        let uid = crate::checkpoint::channel_state::output_uid(deployment.subtask.vertex, k);
        writers.push(
            PartitionWriter::new(
                subs,
                pool,
                config.buffer_size,
                cancel.clone(),
                metrics.clone(),
            )
            .with_in_flight_uid(uid),
        );
    }
    Ok(writers)
}

/// The outputs whose aligned barriers overtake after the aligned-checkpoint timeout, if the
/// job's checkpoints start aligned and may turn unaligned.
pub(super) fn output_barriers(
    config: &JobConfig,
    writers: &[PartitionWriter],
) -> Option<OutputBarriers> {
    let c = config.checkpointing.as_ref()?;
    if !c.unaligned || c.aligned_timeout.is_zero() || writers.is_empty() {
        return None;
    }
    let outputs = writers
        .iter()
        .map(|w| OutputChannels {
            uid: w.in_flight_uid().to_string(),
            subpartitions: w.subpartitions(),
        })
        .collect();
    Some(OutputBarriers::new(outputs, c.aligned_timeout))
}

/// Queues the data in flight that the restored unaligned checkpoint stored for each output
/// of the subtask, and returns the checkpoint with what it stored for its inputs (read
/// before anything new; empty if nothing).
pub(super) fn restore_in_flight(
    deployment: &TaskDeployment,
    restored: &crate::checkpoint::RestoredState,
    writers: &mut [PartitionWriter],
) -> Result<(crate::types::CheckpointId, ChannelData), TaskError> {
    let (vertex, subtask) = (deployment.subtask.vertex, deployment.subtask.subtask);
    let count = |data: &ChannelData| data.iter().map(|(_, b)| b.len()).sum::<usize>();
    let mut outputs = 0;
    for (k, writer) in writers.iter_mut().enumerate() {
        let uid = channel_state::output_uid(vertex, k);
        if let Some(data) = restored.channel_data(&uid, subtask, deployment.parallelism)? {
            outputs += count(&data);
            writer.restore_in_flight(data)?;
        }
    }
    let inputs = restored.channel_data(
        &channel_state::input_uid(vertex),
        subtask,
        deployment.parallelism,
    )?;
    let input_buffers = inputs.as_ref().map_or(0, count);
    if outputs + input_buffers > 0 {
        tracing::info!(task = %deployment.name, subtask, checkpoint = restored.checkpoint(), output_buffers = outputs, input_buffers, "data in flight restored");
    }
    Ok((restored.checkpoint(), inputs.unwrap_or_default()))
}
