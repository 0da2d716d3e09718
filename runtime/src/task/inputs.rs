//! The input side of a task: every channel of its input gates, read in the order of the
//! task's queue.
//!
//! A buffer taken from the queue is accounted (its credit, see [`GateCredits`]), then read
//! frame by frame into the chain: records, watermarks and idleness through the valve
//! ([`Watermarks`]), barriers through the aligner, ends of partition through both. A frame
//! that continues in the channel's next buffer waits in the channel's [`PartialFrame`].
//!
//! Barriers of unaligned checkpoints arrive ahead of the buffers as priority events; what
//! they overtook is captured by [`InFlight`], and restored data in flight is read first
//! ([`Inputs::replay`]).
//!
//! Invariants: the frames of one channel reach the chain in the order they were sent; a
//! channel blocked for alignment is not read, and the aligner holds its buffers back,
//! unrecycled, until it is released; a buffer's credit goes back only once every frame of
//! it was read; a channel that ends inside a frame is an error.

mod overtaking;

use super::in_flight::InFlight;
use super::mailbox::Commands;
use super::watermarks::Watermarks;
use crate::checkpoint::channel_state::ChannelData;
use crate::checkpoint::{AlignAction, BarrierAligner};
use crate::config::JobConfig;
use crate::control::TaskDeployment;
use crate::element::{BarrierOptions, Element, ElementReader};
use crate::error::TaskError;
use crate::exchange::debloat::InputDebloat;
use crate::exchange::{Buffer, CreditSink, GateCredits, FLAG_CONTINUES};
use crate::invokable::TaskInvokable;
use crate::metrics::TaskMetrics;
use crate::reassembly::PartialFrame;
use crate::types::CheckpointId;
use std::sync::Arc;

/// The consumer-side state of all input channels of one task.
pub(super) struct Inputs {
    /// First flat channel index of each gate.
    offsets: Vec<usize>,
    /// Logical input of each gate.
    inputs: Vec<u8>,
    /// Credits of every gate, and where they go.
    credits: GateCredits,
    /// Per flat channel: the start of a frame that continues in the next buffer.
    pending: Vec<PartialFrame>,
    /// Per flat channel: whether its end of partition was read.
    ended: Vec<bool>,
    watermarks: Watermarks,
    /// Barriers per flat channel, and the buffers held back while a channel is blocked.
    aligner: BarrierAligner,
    /// Buffers per flat channel, and the data in flight of an unaligned checkpoint.
    in_flight: InFlight,
    /// The job vertex of the task (names its in-flight data).
    vertex: u32,
    /// Restored data in flight is being read: it holds no credit.
    replaying: bool,
    /// Buffers that arrived and were not read yet, with their channels and numbers.
    unread: std::collections::VecDeque<(usize, u64, Buffer)>,
    /// The number of the buffer being read (none for restored or held-back buffers).
    reading: Option<u64>,
    /// How long an aligned checkpoint aligns before it gives way to an unaligned snapshot
    /// (`execution.checkpointing.aligned-checkpoint-timeout`), if it may.
    align_timeout: Option<std::time::Duration>,
    /// The gates' buffer sizes, with buffer debloating.
    debloat: Option<InputDebloat>,
}

/// Where reading whole frames stopped.
enum Stop {
    /// At the end of the bytes.
    End,
    /// After a barrier frame, `after` bytes in; the frame starts `at` bytes in, if in
    /// these bytes.
    Barrier {
        after: usize,
        at: Option<usize>,
        checkpoint: CheckpointId,
        options: BarrierOptions,
    },
    /// After the end-of-partition frame, `after` bytes in.
    EndOfPartition { after: usize },
}

impl Inputs {
    pub(super) fn new(
        deployment: &TaskDeployment,
        config: &JobConfig,
        metrics: Arc<TaskMetrics>,
    ) -> Self {
        let mut offsets = Vec::with_capacity(deployment.gates.len());
        let mut total = 0usize;
        for g in &deployment.gates {
            offsets.push(total);
            total += g.channels as usize;
        }
        let channels: Vec<usize> = deployment
            .gates
            .iter()
            .map(|g| g.channels as usize)
            .collect();
        Self {
            offsets,
            inputs: deployment.gates.iter().map(|g| g.input).collect(),
            credits: GateCredits::new(
                &channels,
                config.buffers_per_channel as u32,
                config.floating_buffers_per_gate as u32,
            ),
            pending: (0..total).map(|_| PartialFrame::default()).collect(),
            ended: vec![false; total],
            watermarks: Watermarks::new(total, metrics),
            aligner: BarrierAligner::new(total),
            in_flight: InFlight::new(total),
            vertex: deployment.subtask.vertex,
            replaying: false,
            unread: std::collections::VecDeque::new(),
            reading: None,
            debloat: config.buffer_debloat.as_ref().map(|d| {
                let buffers: Vec<usize> = channels
                    .iter()
                    .map(|&c| c * config.buffers_per_channel + config.floating_buffers_per_gate)
                    .collect();
                InputDebloat::new(d, &buffers, config.buffer_size)
            }),
            align_timeout: config
                .checkpointing
                .as_ref()
                .filter(|c| c.unaligned && !c.aligned_timeout.is_zero())
                .map(|c| c.aligned_timeout),
        }
    }

    /// The task restored checkpoint `checkpoint`: barriers of it and older checkpoints
    /// (data in flight may hold some) are stale. Then reads the data in flight the
    /// checkpoint stored for these inputs, before anything that arrives: each channel's
    /// buffers, in order.
    pub(super) fn replay(
        &mut self,
        inv: &mut dyn TaskInvokable,
        (checkpoint, data): (CheckpointId, ChannelData),
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        self.aligner.pass(checkpoint);
        self.in_flight.pass(checkpoint);
        self.replaying = true;
        let mut records = 0;
        for (flat, buffers) in data {
            let flat = flat as usize;
            if flat >= self.total() {
                return Err(input_failed(format!(
                    "restored data in flight names input channel {flat} of {}",
                    self.total()
                )));
            }
            for stored in buffers {
                let mut buffer = Buffer::unpooled(&stored.bytes);
                buffer.flags = stored.flags;
                buffer.complete = stored.complete;
                records += self.read(inv, flat, buffer, None, commands)?;
            }
        }
        self.replaying = false;
        Ok(records)
    }

    /// A buffer arrived from the queue: numbered (see [`InFlight`]) and queued behind the
    /// buffers that arrived before it, to be read by [`Self::take_next`].
    pub(super) fn arrive(
        &mut self,
        gate: u16,
        channel: u32,
        buffer: Buffer,
        commands: &mut Commands<'_>,
    ) -> Result<(), TaskError> {
        let (g, ch) = self.check(gate, channel)?;
        let flat = self.offsets[g] + ch;
        let sequence = self.in_flight.on_buffer(flat, &buffer);
        self.unread.push_back((flat, sequence, buffer));
        self.finish_capture(commands)
    }

    /// Whether buffers arrived that were not read yet.
    pub(super) fn has_unread(&self) -> bool {
        !self.unread.is_empty()
    }

    /// Reads the buffer that arrived first (see [`Self::take`]); returns the records read.
    pub(super) fn take_next(
        &mut self,
        inv: &mut dyn TaskInvokable,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        match self.unread.pop_front() {
            Some((flat, sequence, buffer)) => self.take(inv, (flat, sequence), buffer, commands),
            None => Ok(0),
        }
    }

    /// The task waited `idle` on an empty queue (buffer debloating leaves it out).
    pub(super) fn waited(&mut self, idle: std::time::Duration) {
        if let Some(d) = &mut self.debloat {
            d.idle(idle);
        }
    }

    /// With buffer debloating, once a period passed: asks the producers of each gate
    /// whose throughput changed enough for buffers of the new size.
    pub(super) fn debloat(&mut self) {
        let Some(d) = &mut self.debloat else {
            return;
        };
        for (gate, size) in d.sample() {
            tracing::debug!(gate, size, "debloated buffer size");
            self.credits.buffer_size(gate, size as u32);
        }
    }

    /// Returns the number of input channels, over all gates.
    pub(super) fn total(&self) -> usize {
        self.pending.len()
    }

    /// Returns the number of buffers all inputs may hold at most.
    pub(super) fn capacity(&self) -> usize {
        self.credits.capacity()
    }

    /// Returns whether every channel's data ended (and so event time).
    pub(super) fn all_ended(&self) -> bool {
        self.watermarks.all_ended()
    }

    /// Returns whether every channel delivered its end of partition.
    pub(super) fn all_closed(&self) -> bool {
        self.ended.iter().all(|e| *e)
    }

    /// Channel `flat` delivered its last record: event time ends on it (the valve ignores
    /// a second end, so the end of partition after the end of data changes nothing).
    fn end_data(&mut self, inv: &mut dyn TaskInvokable, flat: usize) -> Result<(), TaskError> {
        self.watermarks.end(inv, flat)
    }

    /// Starts a pass of the task loop that finds `queued` messages in the queue (see
    /// [`GateCredits::on_pass`]).
    pub(super) fn on_pass(&mut self, queued: usize) {
        self.credits.on_pass(queued);
    }

    fn check(&self, gate: u16, channel: u32) -> Result<(usize, usize), TaskError> {
        let g = gate as usize;
        if self.credits.has_channel(g, channel as usize) {
            Ok((g, channel as usize))
        } else {
            Err(input_failed(format!(
                "message for unknown gate {g} channel {channel}"
            )))
        }
    }

    fn unflat(&self, flat: usize) -> (usize, usize) {
        let g = self.offsets.partition_point(|&o| o <= flat) - 1;
        (g, flat - self.offsets[g])
    }

    /// A channel's producer connected: its credits go to `sink`.
    pub(super) fn opened(
        &mut self,
        gate: u16,
        channel: u32,
        sink: Box<dyn CreditSink>,
    ) -> Result<(), TaskError> {
        let (g, ch) = self.check(gate, channel)?;
        self.credits.opened(g, ch, sink);
        Ok(())
    }

    /// Takes one buffer of channel `flat`: accounts its credit, then reads it, or holds it
    /// back if its channel is blocked for alignment. Returns the records read.
    fn take(
        &mut self,
        inv: &mut dyn TaskInvokable,
        (flat, sequence): (usize, u64),
        buffer: Buffer,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        let (g, ch) = self.unflat(flat);
        self.credits
            .received(g, ch, buffer.backlog)
            .map_err(|e| input_failed(format!("gate {g}: {e}")))?;
        if let Some(d) = &mut self.debloat {
            d.consumed(g, buffer.payload_len());
        }
        if self.aligner.holds_back(flat) {
            self.aligner.hold(flat, buffer);
            return Ok(0);
        }
        self.reading = Some(sequence);
        let read = self.read(inv, flat, buffer, None, commands);
        self.reading = None;
        let mut records = read?;
        records += self.drain_released(inv, commands)?;
        self.finish_capture(commands)?;
        Ok(records)
    }

    /// Reads the held buffers of channels that are no longer blocked.
    fn drain_released(
        &mut self,
        inv: &mut dyn TaskInvokable,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        let mut records = 0;
        while let Some((flat, h)) = self.aligner.next_released() {
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
        buffer: Buffer,
        resume: Option<(usize, usize)>,
        commands: &mut Commands<'_>,
    ) -> Result<u64, TaskError> {
        let (g, ch) = self.unflat(flat);
        let mut records = 0;
        let (mut pos, whole_end) = match resume {
            Some(r) => r,
            None => {
                let (r, from, blocked) =
                    self.complete_pending(inv, flat, buffer.payload(), commands)?;
                records += r;
                let whole_end = whole_end(&buffer, from);
                if blocked {
                    self.aligner.hold_rest(flat, buffer, (from, whole_end));
                    return Ok(records);
                }
                (from, whole_end)
            }
        };
        let data = buffer.payload();
        while pos < whole_end {
            let (r, stop) = self.elements(inv, g, ch, &data[pos..whole_end])?;
            records += r;
            let (after, stop) = match stop {
                Stop::End => (whole_end - pos, stop),
                Stop::EndOfPartition { after } => (after, stop),
                Stop::Barrier {
                    after,
                    at,
                    checkpoint,
                    options,
                } => (
                    after,
                    Stop::Barrier {
                        after,
                        at: at.map(|a| a + pos),
                        checkpoint,
                        options,
                    },
                ),
            };
            pos += after;
            if self.on_stop(inv, flat, stop, commands)? {
                self.aligner.hold_rest(flat, buffer, (pos, whole_end));
                return Ok(records);
            }
        }
        if buffer.flags & FLAG_CONTINUES != 0 {
            self.pending[flat].extend(&data[whole_end..]);
        }
        drop(buffer);
        self.recycle(flat)?;
        Ok(records)
    }

    /// Completes the frame of channel `flat` that began in its earlier buffers with the
    /// start of `data`, and reads it into the chain if it is whole. Returns the records
    /// read, the bytes of `data` taken, and whether the frame (a barrier) blocked the
    /// channel.
    fn complete_pending(
        &mut self,
        inv: &mut dyn TaskInvokable,
        flat: usize,
        data: &[u8],
        commands: &mut Commands<'_>,
    ) -> Result<(u64, usize, bool), TaskError> {
        if self.pending[flat].is_empty() {
            return Ok((0, 0, false));
        }
        let (g, ch) = self.unflat(flat);
        let mut pending = std::mem::take(&mut self.pending[flat]);
        let from = pending
            .complete(data)
            .map_err(|e| input_failed(format!("gate {g} channel {ch}: {e}")))?;
        let mut records = 0;
        let stop = if pending.is_whole() {
            let (r, mut stop) = self.elements(inv, g, ch, pending.bytes())?;
            records += r;
            pending.clear();
            if let Stop::Barrier { at, .. } = &mut stop {
                // The frame began in an earlier buffer.
                *at = None;
            }
            Some(stop)
        } else {
            None
        };
        self.pending[flat] = pending;
        let blocked = match stop {
            Some(stop) => self.on_stop(inv, flat, stop, commands)?,
            None => false,
        };
        Ok((records, from, blocked))
    }

    /// The task is done with a buffer of channel `flat`: its credit goes back, and so do
    /// the channel's floating credits if the buffer ended the channel.
    fn recycle(&mut self, flat: usize) -> Result<(), TaskError> {
        let (g, ch) = self.unflat(flat);
        if self.ended[flat] && !self.pending[flat].is_empty() {
            return Err(input_failed(format!(
                "gate {g} channel {ch} ended inside a record"
            )));
        }
        if !self.replaying {
            self.credits.recycled(g, ch, self.ended[flat]);
        }
        Ok(())
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
                at,
                ..
            } => {
                if self.cut_in_flight(flat, (checkpoint, at), commands) {
                    return Ok(false);
                }
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
            Stop::EndOfPartition { .. } if commands.is_stopping() => {
                // An upstream task that stopped with the savepoint: not an end of input.
                self.ended[flat] = true;
                return Ok(false);
            }
            Stop::EndOfPartition { .. } => {
                self.ended[flat] = true;
                self.end_data(inv, flat)?;
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
            let at = reader.position();
            let stop = match reader.next_element() {
                None => Stop::End,
                Some(Err(e)) => {
                    return Err(input_failed(format!(
                        "corrupt buffer on gate {g} channel {ch}: {e}"
                    )))
                }
                Some(Ok(Element::Watermark(wm))) => {
                    self.watermarks.watermark(inv, flat, wm)?;
                    continue;
                }
                Some(Ok(Element::Idle(idle))) => {
                    self.watermarks.idle(inv, flat, idle)?;
                    continue;
                }
                Some(Ok(Element::EndOfData)) => {
                    self.end_data(inv, flat)?;
                    continue;
                }
                Some(Ok(Element::EndOfPartition)) => Stop::EndOfPartition {
                    after: reader.position(),
                },
                Some(Ok(Element::Barrier(checkpoint, options))) => Stop::Barrier {
                    after: reader.position(),
                    at: Some(at),
                    checkpoint,
                    options,
                },
                Some(Ok(Element::Record { .. })) => {
                    return Err(TaskError::Configuration(
                        "operator chain left records unconsumed".into(),
                    ))
                }
            };
            return Ok((reader.records_read(), stop));
        }
    }
}

/// Returns the end of the whole frames of `buffer`, reading from `from`: a buffer whose
/// last frame continues in the next buffer says where that frame starts.
fn whole_end(buffer: &Buffer, from: usize) -> usize {
    let len = buffer.payload().len();
    if buffer.flags & FLAG_CONTINUES != 0 {
        (buffer.complete as usize).clamp(from, len)
    } else {
        len
    }
}

/// A failure of the task's input side: its channels, and so a broken channel.
pub(super) fn input_failed(message: String) -> TaskError {
    TaskError::Exchange(crate::error::ExchangeError::InputFailed(message))
}
