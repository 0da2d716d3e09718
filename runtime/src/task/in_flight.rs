//! The input side of unaligned checkpoints: which buffers a checkpoint's barriers overtook
//! on their way in (see [`crate::checkpoint::channel_state`]).
//!
//! Every buffer a channel delivers gets the channel's next sequence number as it arrives.
//! The first barrier of a checkpoint (a priority event) makes the task snapshot at once and
//! take every buffer queued for it off its queue; from then on, each buffer of a channel
//! whose number is below that channel's barrier's (the buffers its producer sent before
//! the barrier) and that the snapshot does not reflect, because it was not read yet, is
//! copied as it arrives, and so is the start of a record that an earlier buffer began. The
//! capture is complete when every channel's barrier came and all buffers before it arrived,
//! or the channel ended; the copied buffers are read afterwards as usual.
//!
//! Invariants: a barrier is taken before any buffer its producer sent after it (the input
//! loop takes priority events first, and before every buffer); buffers are copied in the
//! order they are taken, which is the order they were sent; at most one capture runs, and
//! a newer checkpoint's barrier abandons an older capture (which the task declines).

use crate::checkpoint::channel_state::{ChannelBuffer, ChannelData, PriorityBarrier};
use crate::checkpoint::OperatorSnapshot;
use crate::exchange::{Buffer, FLAG_CONTINUES};
use crate::types::CheckpointId;
use std::time::{Duration, Instant};

/// What a task does with a barrier of an unaligned checkpoint.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BarrierStep {
    /// Snapshot now: the checkpoint's first barrier; `abandoned` is an older capture that
    /// never completed.
    Start {
        /// The older checkpoint to decline.
        abandoned: Option<CheckpointId>,
    },
    /// The checkpoint is being captured: the barrier marks where its channel's data ends.
    Cut,
    /// The barrier belongs to a checkpoint this task already passed: ignore it.
    Stale,
    /// The channel delivered more buffers than its producer sent before the barrier: the
    /// checkpoint cannot be captured consistently and is declined.
    Overrun,
}

/// The most bytes a capture copies: a channel whose barrier does not come (its producer
/// declined) would otherwise be copied until the checkpoint times out.
const MAX_CAPTURE_BYTES: usize = 256 << 20;

/// A checkpoint being captured.
struct Capture {
    checkpoint: CheckpointId,
    started: Instant,
    /// Whether the task's input had ended when it snapshotted.
    ended: bool,
    /// Bytes copied so far.
    bytes: usize,
    /// Per channel: the buffers its producer sent before its barrier, once known.
    cut: Vec<Option<u64>>,
    /// Per channel: the copies of the buffers taken since the snapshot, before the cut.
    data: Vec<Vec<ChannelBuffer>>,
    /// The snapshot of the chain (and of its outputs' data in flight), waiting.
    state: Vec<OperatorSnapshot>,
}

/// A complete capture.
pub(super) struct Captured {
    /// The checkpoint.
    pub(super) checkpoint: CheckpointId,
    /// The chain's snapshot (and its outputs' data in flight).
    pub(super) state: Vec<OperatorSnapshot>,
    /// The inputs' data in flight, per channel.
    pub(super) data: ChannelData,
    /// How long the capture took.
    pub(super) took: Duration,
    /// Whether the task's input had ended when it snapshotted.
    pub(super) ended: bool,
}

/// The buffers each channel delivered, and the capture in progress.
pub(super) struct InFlight {
    received: Vec<u64>,
    capture: Option<Capture>,
    /// The newest checkpoint whose barrier started a capture here.
    latest: Option<CheckpointId>,
}

impl InFlight {
    pub(super) fn new(channels: usize) -> Self {
        Self {
            received: vec![0; channels],
            capture: None,
            latest: None,
        }
    }

    /// A buffer of channel `flat` arrived: numbered, and copied if it precedes the
    /// channel's barrier of the checkpoint being captured. Returns its number.
    pub(super) fn on_buffer(&mut self, flat: usize, buffer: &Buffer) -> u64 {
        let sequence = self.received[flat];
        self.received[flat] += 1;
        self.record(flat, sequence, buffer);
        sequence
    }

    /// Copies buffer `sequence` of channel `flat`, not read yet, if it precedes the
    /// channel's barrier of the checkpoint being captured.
    fn record(&mut self, flat: usize, sequence: u64, buffer: &Buffer) {
        let Some(c) = &mut self.capture else {
            return;
        };
        if c.cut[flat].is_none_or(|cut| sequence < cut) {
            c.bytes += buffer.payload_len();
            c.data[flat].push(ChannelBuffer {
                bytes: buffer.payload().to_vec(),
                flags: buffer.flags,
                complete: buffer.complete,
            });
        }
    }

    /// A barrier of an unaligned checkpoint arrived on channel `flat`.
    pub(super) fn on_barrier(&mut self, flat: usize, barrier: &PriorityBarrier) -> BarrierStep {
        let capturing = self.capture.as_ref().map(|c| c.checkpoint);
        if capturing != Some(barrier.checkpoint)
            && self.latest.is_some_and(|l| l >= barrier.checkpoint)
        {
            return BarrierStep::Stale;
        }
        if barrier.sequence < self.received[flat] {
            return BarrierStep::Overrun;
        }
        match &mut self.capture {
            Some(c) if c.checkpoint == barrier.checkpoint => {
                c.cut[flat] = Some(barrier.sequence);
                BarrierStep::Cut
            }
            _ => BarrierStep::Start {
                abandoned: capturing,
            },
        }
    }

    /// Starts capturing `barrier`'s checkpoint (first seen on channel `flat`), whose
    /// snapshot is `state`; `partial` holds, per channel, the start of a record that
    /// continues in the channel's next buffer, and `unread` the buffers that arrived but
    /// were not read yet, with their channels and numbers, in order.
    pub(super) fn start<'b>(
        &mut self,
        (flat, barrier): (usize, &PriorityBarrier),
        (state, ended): (Vec<OperatorSnapshot>, bool),
        partial: impl Iterator<Item = Vec<u8>>,
        unread: impl Iterator<Item = (usize, u64, &'b Buffer)>,
    ) {
        let mut cut = vec![None; self.received.len()];
        cut[flat] = Some(barrier.sequence);
        let data = partial
            .map(|bytes| {
                if bytes.is_empty() {
                    return Vec::new();
                }
                vec![ChannelBuffer {
                    bytes,
                    flags: FLAG_CONTINUES,
                    complete: 0,
                }]
            })
            .collect();
        self.latest = Some(barrier.checkpoint);
        self.capture = Some(Capture {
            checkpoint: barrier.checkpoint,
            started: Instant::now(),
            ended,
            bytes: 0,
            cut,
            data,
            state,
        });
        for (f, sequence, buffer) in unread {
            self.record(f, sequence, buffer);
        }
    }

    /// Forgets the capture in progress (its checkpoint is declined); returns its
    /// checkpoint.
    pub(super) fn abandon(&mut self) -> Option<CheckpointId> {
        self.capture.take().map(|c| c.checkpoint)
    }

    /// The barriers of `checkpoint` and older ones are not taken: the task declined it, or
    /// restored it (its data in flight may hold barriers of older checkpoints).
    pub(super) fn pass(&mut self, checkpoint: CheckpointId) {
        self.latest = self.latest.max(Some(checkpoint));
    }

    /// Returns the checkpoint being captured if it was aborted (`aborted`: the newest
    /// checkpoint aborted) or copied more than it may; the capture is forgotten.
    pub(super) fn give_up(
        &mut self,
        aborted: Option<CheckpointId>,
    ) -> Option<(CheckpointId, bool)> {
        let c = self.capture.as_ref()?;
        let too_large = c.bytes > MAX_CAPTURE_BYTES;
        if !too_large && aborted.is_none_or(|a| a < c.checkpoint) {
            return None;
        }
        self.abandon().map(|checkpoint| (checkpoint, too_large))
    }

    /// Returns the capture once complete: every channel ended (`ended`) or delivered all
    /// it sent before its barrier. Yields the checkpoint, the chain's snapshot, the data in
    /// flight per channel, and how long the capture took.
    pub(super) fn take_complete(&mut self, ended: &[bool]) -> Option<Captured> {
        let c = self.capture.as_ref()?;
        let done = (0..self.received.len())
            .all(|i| ended[i] || c.cut[i].is_some_and(|cut| self.received[i] >= cut));
        if !done {
            return None;
        }
        let c = self.capture.take()?;
        let data = c
            .data
            .into_iter()
            .enumerate()
            .filter(|(_, buffers)| !buffers.is_empty())
            .map(|(i, buffers)| (i as u32, buffers))
            .collect();
        Some(Captured {
            checkpoint: c.checkpoint,
            state: c.state,
            data,
            took: c.started.elapsed(),
            ended: c.ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::element::BarrierOptions;

    fn barrier(checkpoint: CheckpointId, sequence: u64) -> PriorityBarrier {
        PriorityBarrier {
            checkpoint,
            options: BarrierOptions::from_byte(0b1_0010),
            sequence,
        }
    }

    fn buffer(b: u8) -> Buffer {
        Buffer::unpooled(&[b])
    }

    #[test]
    fn buffers_sent_before_each_channels_barrier_and_taken_after_the_snapshot_are_captured() {
        let mut f = InFlight::new(2);
        f.on_buffer(0, &buffer(1)); // before the snapshot: in the operators' state
        assert_eq!(
            f.on_barrier(0, &barrier(5, 1)),
            BarrierStep::Start { abandoned: None }
        );
        f.start(
            (0, &barrier(5, 1)),
            (Vec::new(), false),
            [vec![], vec![9]].into_iter(),
            std::iter::empty(),
        );
        f.on_buffer(0, &buffer(2)); // after channel 0's barrier: not captured
        f.on_buffer(1, &buffer(3)); // channel 1's barrier is still to come: captured
        assert!(f.take_complete(&[false, false]).is_none());
        assert_eq!(f.on_barrier(1, &barrier(5, 2)), BarrierStep::Cut);
        assert!(
            f.take_complete(&[false, false]).is_none(),
            "one more to come"
        );
        f.on_buffer(1, &buffer(4));
        let captured = f.take_complete(&[false, false]).unwrap();
        assert_eq!(captured.checkpoint, 5);
        let bytes: Vec<(u32, Vec<Vec<u8>>)> = captured
            .data
            .into_iter()
            .map(|(i, b)| (i, b.into_iter().map(|b| b.bytes).collect()))
            .collect();
        assert_eq!(bytes, vec![(1, vec![vec![9], vec![3], vec![4]])]);
        assert_eq!(f.on_barrier(0, &barrier(5, 2)), BarrierStep::Stale);
    }

    #[test]
    fn an_ended_channel_needs_no_barrier_and_a_newer_checkpoint_abandons_the_older() {
        let mut f = InFlight::new(2);
        f.start(
            (0, &barrier(1, 0)),
            (Vec::new(), false),
            [vec![], vec![]].into_iter(),
            std::iter::empty(),
        );
        assert_eq!(
            f.on_barrier(0, &barrier(2, 0)),
            BarrierStep::Start { abandoned: Some(1) }
        );
        f.start(
            (0, &barrier(2, 0)),
            (Vec::new(), false),
            [vec![], vec![]].into_iter(),
            std::iter::empty(),
        );
        assert!(f.take_complete(&[false, true]).is_some());
    }

    #[test]
    fn a_barrier_behind_buffers_already_taken_is_an_overrun() {
        let mut f = InFlight::new(1);
        f.on_buffer(0, &buffer(1));
        f.on_buffer(0, &buffer(2));
        assert_eq!(f.on_barrier(0, &barrier(3, 1)), BarrierStep::Overrun);
    }
}
