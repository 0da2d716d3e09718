//! The output side of the aligned-checkpoint timeout
//! (`execution.checkpointing.aligned-checkpoint-timeout`): a task's aligned barriers that
//! wait too long in its output queues overtake the buffers ahead of them.
//!
//! A task that snapshots a checkpoint whose barriers may time out sends them aligned, at
//! the end of each channel's queued data, and holds its acknowledgement back. Once every
//! barrier was delivered, the acknowledgement goes as it is. Once the timeout passed since
//! the snapshot, each barrier still queued is taken off its buffer and sent ahead of the
//! buffers before it, as a barrier of an unaligned checkpoint; copies of those buffers join
//! the acknowledgement as the output's data in flight (see
//! [`crate::checkpoint::channel_state`]), as if the barrier had been unaligned from the
//! start.
//!
//! Invariants: at most one acknowledgement is held; it is released before the task
//! snapshots again (its barriers then overtake at once, so the next barrier can be noted),
//! and forgotten when its checkpoint is aborted; the buffers copied are exactly those queued
//! before the barrier, which the task's snapshot already reflects.

use crate::checkpoint::OperatorSnapshot;
use crate::element::BarrierOptions;
use crate::error::TaskError;
use crate::exchange::Subpartition;
use crate::types::CheckpointId;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One output edge of a task: the name of its data in flight and its subpartitions.
pub(super) struct OutputChannels {
    /// The state name of the output's data in flight.
    pub(super) uid: String,
    /// One subpartition per consumer channel, in order.
    pub(super) subpartitions: Vec<Arc<Subpartition>>,
}

/// A snapshot waiting to be handed to the uploader.
pub(super) struct Ack {
    /// The checkpoint.
    pub(super) checkpoint: CheckpointId,
    /// The chain's snapshot.
    pub(super) state: Vec<OperatorSnapshot>,
    /// How long the inputs aligned.
    pub(super) alignment: Duration,
    /// Whether the task's input had ended when it snapshotted.
    pub(super) ended: bool,
}

struct Held {
    ack: Ack,
    options: BarrierOptions,
    since: Instant,
}

/// The aligned barriers of a task's outputs that may still overtake.
pub(super) struct OutputBarriers {
    outputs: Vec<OutputChannels>,
    timeout: Duration,
    held: Option<Held>,
}

impl OutputBarriers {
    /// Watches `outputs`, whose barriers overtake after `timeout`.
    pub(super) fn new(outputs: Vec<OutputChannels>, timeout: Duration) -> Self {
        Self {
            outputs,
            timeout,
            held: None,
        }
    }

    /// Takes the acknowledgement of a checkpoint whose barriers just went out with
    /// `options`: returns it if they cannot overtake or every one was delivered, else holds
    /// it (see [`Self::settle`]).
    pub(super) fn hold(&mut self, ack: Ack, options: BarrierOptions) -> Option<Ack> {
        if !options.timeout || options.unaligned || !self.any_queued(ack.checkpoint) {
            return Some(ack);
        }
        self.held = Some(Held {
            ack,
            options,
            since: Instant::now(),
        });
        None
    }

    /// Returns the acknowledgement held once every barrier was delivered, or once the
    /// timeout passed (at once if `now`), after the barriers still queued overtook the
    /// buffers ahead of them. Forgets it if its checkpoint is the newest `aborted` (an
    /// acknowledgement of an aborted checkpoint that goes anyway is ignored).
    pub(super) fn settle(
        &mut self,
        now: bool,
        aborted: Option<CheckpointId>,
    ) -> Result<Option<Ack>, TaskError> {
        let Some(held) = &self.held else {
            return Ok(None);
        };
        let checkpoint = held.ack.checkpoint;
        if aborted == Some(checkpoint) {
            self.held = None;
            return Ok(None);
        }
        if !self.any_queued(checkpoint) {
            return Ok(self.held.take().map(|h| h.ack));
        }
        if !now && held.since.elapsed() < self.timeout {
            return Ok(None);
        }
        let mut held = self.held.take().expect("checked above");
        let options = held.options.overtaking();
        for output in &self.outputs {
            let mut data = Vec::new();
            for (i, sub) in output.subpartitions.iter().enumerate() {
                if let Some(overtaken) = sub.overtake_barrier(checkpoint, options)? {
                    if !overtaken.is_empty() {
                        data.push((i as u32, overtaken));
                    }
                }
            }
            if !data.is_empty() {
                held.ack
                    .state
                    .push(OperatorSnapshot::channels(&output.uid, &data)?);
            }
        }
        tracing::info!(
            checkpoint,
            waited_ms = held.since.elapsed().as_millis() as u64,
            "aligned barriers timed out in the output queues; they overtook the data in flight"
        );
        Ok(Some(held.ack))
    }

    fn any_queued(&self, checkpoint: CheckpointId) -> bool {
        self.outputs
            .iter()
            .flat_map(|o| &o.subpartitions)
            .any(|s| s.barrier_queued(checkpoint))
    }
}
