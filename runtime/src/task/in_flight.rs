//! The input side of unaligned checkpoints: which buffers a checkpoint's barriers overtook
//! on their way in (see [`crate::checkpoint::channel_state`]).
//!
//! A capture starts when the task snapshots on the first overtaking barrier of a
//! checkpoint, or when an aligned checkpoint times out (see `inputs/overtaking.rs`); a
//! channel that delivered the aligned barrier before starts cut at 0, and an aligned barrier
//! that ends a flagged buffer cuts its channel as the buffer arrives.
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
use crate::element::{Element, ElementReader};
use crate::exchange::{Buffer, FLAG_BARRIER, FLAG_CONTINUES};
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
    /// Per channel: the copies of the buffers taken since the snapshot, before the cut,
    /// with their numbers (none for the start of a record taken before the snapshot).
    data: Vec<Vec<(Option<u64>, ChannelBuffer)>>,
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
    /// The newest checkpoint this task captured or passed (declined or restored).
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
        if c.cut[flat].is_some_and(|cut| sequence >= cut) {
            return;
        }
        c.bytes += buffer.payload_len();
        c.data[flat].push((Some(sequence), ChannelBuffer::copy_of(buffer)));
        if c.cut[flat].is_none() {
            // The channel's aligned barrier of the checkpoint ends this buffer: cut here.
            if let Some((checkpoint, at)) = ending_barrier(buffer) {
                if checkpoint == c.checkpoint {
                    let cut = self.cut_in_band(flat, sequence, at);
                    debug_assert!(cut, "a flagged barrier frame ends its buffer");
                }
            }
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

    /// Starts capturing `checkpoint`, whose snapshot is `state`; `cut` holds, per channel,
    /// the number of buffers it delivers before the barrier, where known (0 for a channel
    /// whose barrier was read before the snapshot); `partial` holds, per channel, the start
    /// of a record that continues in the channel's next buffer, and `unread` the buffers
    /// that arrived but were not read yet, with their channels and numbers, in order.
    pub(super) fn start<'b>(
        &mut self,
        (checkpoint, cut): (CheckpointId, Vec<Option<u64>>),
        (state, ended): (Vec<OperatorSnapshot>, bool),
        partial: impl Iterator<Item = Vec<u8>>,
        unread: impl Iterator<Item = (usize, u64, &'b Buffer)>,
    ) {
        let data = partial
            .map(|bytes| {
                if bytes.is_empty() {
                    return Vec::new();
                }
                vec![(
                    None,
                    ChannelBuffer {
                        bytes,
                        flags: FLAG_CONTINUES,
                        complete: 0,
                    },
                )]
            })
            .collect();
        self.latest = Some(checkpoint);
        self.capture = Some(Capture {
            checkpoint,
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

    /// Returns the newest checkpoint this task snapshotted or declined here.
    pub(super) fn latest(&self) -> Option<CheckpointId> {
        self.latest
    }

    /// Returns the checkpoint being captured.
    pub(super) fn capturing(&self) -> Option<CheckpointId> {
        self.capture.as_ref().map(|c| c.checkpoint)
    }

    /// The aligned barrier of the checkpoint being captured was read on channel `flat`,
    /// as the last frame of its buffer number `sequence`, starting `at` bytes in: the
    /// channel's data in flight ends there. Returns false if the capture holds no copy of
    /// that buffer (it cannot be cut consistently).
    pub(super) fn cut_in_band(&mut self, flat: usize, sequence: u64, at: usize) -> bool {
        let Some(c) = &mut self.capture else {
            return false;
        };
        if c.cut[flat].is_some() {
            // Cut when the buffer arrived.
            return true;
        }
        let buffers = &mut c.data[flat];
        let Some(i) = buffers.iter().position(|(n, _)| *n == Some(sequence)) else {
            return false;
        };
        buffers.truncate(i + 1);
        let last = &mut buffers[i].1;
        if at > last.bytes.len() || last.flags & FLAG_CONTINUES != 0 {
            return false;
        }
        last.bytes.truncate(at);
        last.complete = at as u32;
        last.flags &= !FLAG_BARRIER;
        if last.bytes.is_empty() {
            buffers.pop();
        }
        c.cut[flat] = Some(sequence + 1);
        true
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
            .map(|(i, buffers)| (i as u32, buffers.into_iter().map(|(_, b)| b).collect()))
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

/// The checkpoint and start of the aligned barrier that ends `buffer`, if it is flagged
/// so ([`FLAG_BARRIER`]).
fn ending_barrier(buffer: &Buffer) -> Option<(CheckpointId, usize)> {
    if buffer.flags & FLAG_BARRIER == 0 || buffer.flags & FLAG_CONTINUES != 0 {
        return None;
    }
    let at = buffer.complete as usize;
    let tail = buffer.payload().get(at..)?;
    let mut reader = ElementReader::new(tail);
    match reader.next_element() {
        Some(Ok(Element::Barrier(checkpoint, _))) if reader.position() == tail.len() => {
            Some((checkpoint, at))
        }
        _ => None,
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
            (5, vec![Some(1), None]),
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
            (1, vec![Some(0), None]),
            (Vec::new(), false),
            [vec![], vec![]].into_iter(),
            std::iter::empty(),
        );
        assert_eq!(
            f.on_barrier(0, &barrier(2, 0)),
            BarrierStep::Start { abandoned: Some(1) }
        );
        f.start(
            (2, vec![Some(0), None]),
            (Vec::new(), false),
            [vec![], vec![]].into_iter(),
            std::iter::empty(),
        );
        assert!(f.take_complete(&[false, true]).is_some());
    }

    #[test]
    fn an_aligned_barrier_read_in_band_cuts_its_channel_at_its_frame() {
        let mut f = InFlight::new(2);
        f.on_buffer(0, &buffer(1)); // channel 0 delivered its barrier before the snapshot
        f.on_buffer(1, &buffer(2)); // unread at the snapshot
        let unread = [(1usize, 0u64, Buffer::unpooled(b"ab-barrier"))];
        f.start(
            (6, vec![Some(0), None]),
            (Vec::new(), false),
            [vec![], vec![]].into_iter(),
            unread.iter().map(|(c, n, b)| (*c, *n, b)),
        );
        assert_eq!(f.capturing(), Some(6));
        f.on_buffer(0, &buffer(3)); // after channel 0's barrier: not captured
        f.on_buffer(1, &buffer(4)); // arrived before channel 1's barrier was read
        assert!(!f.cut_in_band(1, 7, 2), "no copy of buffer 7");
        assert!(
            f.cut_in_band(1, 0, 2),
            "the barrier ends buffer 0, 2 bytes in"
        );
        f.on_buffer(1, &buffer(5));
        let captured = f.take_complete(&[false, false]).unwrap();
        assert_eq!(
            captured.data,
            vec![(1, vec![ChannelBuffer::copy_of(&Buffer::unpooled(b"ab"))])]
        );
    }

    #[test]
    fn a_flagged_barrier_of_the_checkpoint_cuts_its_channel_as_its_buffer_arrives() {
        let flagged = |checkpoint: CheckpointId| {
            let mut b = Buffer::unpooled(b"xy");
            crate::element::write_event(
                b.vec_mut(),
                &Element::Barrier(checkpoint, BarrierOptions::from_byte(0b10_0010)),
            );
            b.flags = FLAG_BARRIER;
            b.complete = 2;
            b
        };
        let mut f = InFlight::new(2);
        f.start(
            (4, vec![None, Some(0)]),
            (Vec::new(), false),
            [vec![], vec![]].into_iter(),
            std::iter::empty(),
        );
        f.on_buffer(0, &flagged(3)); // an older checkpoint's barrier: data like any other
        assert!(f.take_complete(&[false, false]).is_none());
        f.on_buffer(0, &flagged(4));
        f.on_buffer(0, &buffer(9)); // after the barrier
        let captured = f.take_complete(&[false, false]).expect("channel 0 was cut");
        let older = ChannelBuffer::copy_of(&flagged(3));
        let cut = ChannelBuffer {
            bytes: b"xy".to_vec(),
            flags: 0,
            complete: 2,
        };
        assert_eq!(captured.data, vec![(0, vec![older, cut])]);
    }

    #[test]
    fn a_barrier_behind_buffers_already_taken_is_an_overrun() {
        let mut f = InFlight::new(1);
        f.on_buffer(0, &buffer(1));
        f.on_buffer(0, &buffer(2));
        assert_eq!(f.on_barrier(0, &barrier(3, 1)), BarrierStep::Overrun);
    }
}
