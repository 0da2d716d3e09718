//! Barrier alignment of one task's input channels (asynchronous barrier snapshotting).
//!
//! Each input channel delivers `Barrier(n)` in order with its records. In exactly-once
//! mode a channel that delivered barrier `n` is blocked (its later buffers are held back,
//! unrecycled, so its producer runs out of credit) until every other channel delivered it
//! too; then the task snapshots its state and forwards the barrier. In at-least-once mode
//! no channel is blocked; the task snapshots when the last barrier arrives. A channel that
//! ended counts as having delivered every barrier.
//!
//! The aligner owns the buffers it holds back ([`HeldBuffer`]), per channel and in order:
//! a buffer of a channel that still holds buffers back is held too, so a released channel
//! is read in the order its buffers arrived.
//!
//! Invariants (checked by the tests): at most one checkpoint is being aligned at a time; a
//! barrier of a newer checkpoint aborts the older alignment (its channels are released) and
//! starts the newer one; barriers of an aborted or completed checkpoint are ignored; a
//! completed alignment releases every channel and reports how long it took; an alignment
//! that gives way to an unaligned snapshot ([`BarrierAligner::give_way`]) releases every
//! channel too.

use crate::element::BarrierOptions;
use crate::exchange::Buffer;
use crate::types::CheckpointId;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the task must do after a barrier or an end of partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AlignAction {
    /// Nothing: keep consuming every channel that is not blocked.
    Continue,
    /// Hold back the channel that delivered the barrier until the alignment ends.
    Block,
    /// Every channel delivered the barrier: snapshot now, forward the barrier, release
    /// every blocked channel.
    Snapshot {
        /// The checkpoint.
        checkpoint: CheckpointId,
        /// Its options.
        options: BarrierOptions,
        /// Time from the first barrier to the last.
        alignment: Duration,
    },
}

/// The answer to one barrier or end of partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlignOutcome {
    /// A newer barrier arrived before an older alignment ended: the older checkpoint is
    /// abandoned (its blocked channels are released; the task declines it).
    pub aborted: Option<CheckpointId>,
    /// What to do for the current checkpoint.
    pub action: AlignAction,
}

impl AlignOutcome {
    fn just(action: AlignAction) -> Self {
        Self {
            aborted: None,
            action,
        }
    }
}

/// A buffer held back by alignment: where reading goes on when its channel is released.
#[derive(Debug)]
pub struct HeldBuffer {
    /// The buffer, unrecycled while held, so its credit stays taken.
    pub buffer: Buffer,
    /// `None` if nothing of it was read yet; else the next byte and the end of its whole
    /// frames.
    pub resume: Option<(usize, usize)>,
}

#[derive(Debug)]
struct Pending {
    checkpoint: CheckpointId,
    options: BarrierOptions,
    started: Instant,
    seen: Vec<bool>,
    missing: usize,
}

/// Tracks the barriers of one task's input channels.
#[derive(Debug)]
pub struct BarrierAligner {
    ended: Vec<bool>,
    blocked: Vec<bool>,
    pending: Option<Pending>,
    /// The newest checkpoint completed or aborted here; older barriers are stale.
    last_done: Option<CheckpointId>,
    /// Per channel: the buffers held back, oldest first.
    held: Vec<VecDeque<HeldBuffer>>,
}

impl BarrierAligner {
    /// Tracks `channels` input channels.
    pub fn new(channels: usize) -> Self {
        Self {
            ended: vec![false; channels],
            blocked: vec![false; channels],
            pending: None,
            last_done: None,
            held: (0..channels).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Returns whether `channel` is held back.
    #[cfg(test)]
    fn is_blocked(&self, channel: usize) -> bool {
        self.blocked[channel]
    }

    /// The barriers of `checkpoint` and older ones are stale: the task restored it, or
    /// snapshotted it without aligning.
    pub fn pass(&mut self, checkpoint: CheckpointId) {
        self.last_done = self.last_done.max(Some(checkpoint));
    }

    /// Returns the newest checkpoint completed or aborted here.
    pub fn last_done(&self) -> Option<CheckpointId> {
        self.last_done
    }

    /// Returns whether a buffer arriving on `channel` must be held back: the channel is
    /// blocked, or buffers that arrived before it still are.
    pub fn holds_back(&self, channel: usize) -> bool {
        self.blocked[channel] || !self.held[channel].is_empty()
    }

    /// Holds back `buffer`, which arrived on `channel` and of which nothing was read, behind
    /// the channel's other held buffers.
    pub fn hold(&mut self, channel: usize, buffer: Buffer) {
        self.held[channel].push_back(HeldBuffer {
            buffer,
            resume: None,
        });
    }

    /// Holds back the rest of `buffer`, which a barrier read from it at `resume.0` blocked,
    /// ahead of the channel's other held buffers.
    pub fn hold_rest(&mut self, channel: usize, buffer: Buffer, resume: (usize, usize)) {
        self.held[channel].push_front(HeldBuffer {
            buffer,
            resume: Some(resume),
        });
    }

    /// Takes the oldest held buffer of the first channel that is no longer blocked, with
    /// its channel.
    pub fn next_released(&mut self) -> Option<(usize, HeldBuffer)> {
        let channel =
            (0..self.held.len()).find(|&c| !self.blocked[c] && !self.held[c].is_empty())?;
        let held = self.held[channel].pop_front().expect("non-empty");
        Some((channel, held))
    }

    /// Returns the checkpoint being aligned, if any.
    pub fn pending(&self) -> Option<CheckpointId> {
        self.pending.as_ref().map(|p| p.checkpoint)
    }

    /// Returns the checkpoint being aligned, its options and when its first barrier came.
    pub fn alignment(&self) -> Option<(CheckpointId, BarrierOptions, Instant)> {
        self.pending
            .as_ref()
            .map(|p| (p.checkpoint, p.options, p.started))
    }

    /// The alignment of the pending checkpoint gives way to an unaligned snapshot (its
    /// alignment timed out): every channel is released, and later barriers of the
    /// checkpoint are stale. Returns, per channel, whether it delivered the barrier (or
    /// ended) before.
    pub fn give_way(&mut self) -> Option<Vec<bool>> {
        let p = self.pending.take()?;
        self.blocked.iter_mut().for_each(|b| *b = false);
        self.last_done = Some(p.checkpoint);
        Some(p.seen)
    }

    /// Channel `channel` delivered `Barrier(checkpoint)`.
    pub fn barrier(
        &mut self,
        channel: usize,
        checkpoint: CheckpointId,
        options: BarrierOptions,
    ) -> AlignOutcome {
        if self.last_done.is_some_and(|d| checkpoint <= d) {
            return AlignOutcome::just(AlignAction::Continue);
        }
        let mut aborted = None;
        match &self.pending {
            Some(p) if p.checkpoint == checkpoint => {}
            Some(p) if p.checkpoint > checkpoint => {
                return AlignOutcome::just(AlignAction::Continue)
            }
            other => {
                if let Some(p) = other {
                    aborted = Some(p.checkpoint);
                    self.blocked.iter_mut().for_each(|b| *b = false);
                }
                let live = self.ended.iter().filter(|e| !**e).count();
                self.pending = Some(Pending {
                    checkpoint,
                    options,
                    started: Instant::now(),
                    seen: self.ended.clone(),
                    missing: live,
                });
            }
        }
        let p = self.pending.as_mut().expect("set above");
        if !p.seen[channel] {
            p.seen[channel] = true;
            p.missing -= 1;
        }
        let action = if p.missing == 0 {
            self.complete()
        } else if options.aligned {
            self.blocked[channel] = true;
            AlignAction::Block
        } else {
            AlignAction::Continue
        };
        AlignOutcome { aborted, action }
    }

    /// Channel `channel` delivered its end of partition.
    pub fn end(&mut self, channel: usize) -> AlignAction {
        if self.ended[channel] {
            return AlignAction::Continue;
        }
        self.ended[channel] = true;
        let Some(p) = self.pending.as_mut() else {
            return AlignAction::Continue;
        };
        if !p.seen[channel] {
            p.seen[channel] = true;
            p.missing -= 1;
            if p.missing == 0 {
                return self.complete();
            }
        }
        AlignAction::Continue
    }

    fn complete(&mut self) -> AlignAction {
        let p = self.pending.take().expect("an alignment is pending");
        self.blocked.iter_mut().for_each(|b| *b = false);
        self.last_done = Some(p.checkpoint);
        AlignAction::Snapshot {
            checkpoint: p.checkpoint,
            options: p.options,
            alignment: p.started.elapsed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACTLY_ONCE: BarrierOptions = BarrierOptions {
        savepoint: false,
        aligned: true,
        stop: false,
        drain: false,
        unaligned: false,
        timeout: false,
    };
    const AT_LEAST_ONCE: BarrierOptions = BarrierOptions {
        savepoint: false,
        aligned: false,
        stop: false,
        drain: false,
        unaligned: false,
        timeout: false,
    };

    fn is_snapshot(a: &AlignAction, id: CheckpointId) -> bool {
        matches!(a, AlignAction::Snapshot { checkpoint, .. } if *checkpoint == id)
    }

    #[test]
    fn exactly_once_blocks_each_channel_until_every_channel_delivered_the_barrier() {
        let mut a = BarrierAligner::new(3);
        assert_eq!(a.barrier(1, 7, EXACTLY_ONCE).action, AlignAction::Block);
        assert!(a.is_blocked(1));
        assert_eq!(a.barrier(0, 7, EXACTLY_ONCE).action, AlignAction::Block);
        assert!(!a.is_blocked(2));
        assert!(is_snapshot(&a.barrier(2, 7, EXACTLY_ONCE).action, 7));
        assert!(
            (0..3).all(|c| !a.is_blocked(c)),
            "every channel is released"
        );
        assert_eq!(a.pending(), None);
    }

    #[test]
    fn at_least_once_never_blocks_and_snapshots_on_the_last_barrier() {
        let mut a = BarrierAligner::new(2);
        assert_eq!(a.barrier(0, 1, AT_LEAST_ONCE).action, AlignAction::Continue);
        assert!(!a.is_blocked(0));
        assert!(is_snapshot(&a.barrier(1, 1, AT_LEAST_ONCE).action, 1));
    }

    #[test]
    fn a_single_channel_snapshots_at_once() {
        let mut a = BarrierAligner::new(1);
        assert!(is_snapshot(&a.barrier(0, 3, EXACTLY_ONCE).action, 3));
        assert!(!a.is_blocked(0));
    }

    #[test]
    fn an_ended_channel_counts_as_aligned_before_and_during_an_alignment() {
        let mut a = BarrierAligner::new(3);
        a.end(2);
        assert_eq!(a.barrier(0, 1, EXACTLY_ONCE).action, AlignAction::Block);
        // The last live channel ends instead of delivering the barrier.
        assert!(is_snapshot(&a.end(1), 1));
        assert!(!a.is_blocked(0));
    }

    #[test]
    fn a_newer_barrier_aborts_the_older_alignment_and_stale_barriers_are_ignored() {
        let mut a = BarrierAligner::new(2);
        assert_eq!(a.barrier(0, 1, EXACTLY_ONCE).action, AlignAction::Block);
        // Channel 1 skipped checkpoint 1 (it was declined upstream) and sends 2.
        assert_eq!(
            a.barrier(1, 2, EXACTLY_ONCE),
            AlignOutcome {
                aborted: Some(1),
                action: AlignAction::Block
            }
        );
        assert!(!a.is_blocked(0), "the aborted alignment released channel 0");
        assert!(a.is_blocked(1));
        assert_eq!(a.pending(), Some(2));
        assert_eq!(a.barrier(0, 1, EXACTLY_ONCE).action, AlignAction::Continue);
        assert!(is_snapshot(&a.barrier(0, 2, EXACTLY_ONCE).action, 2));
        assert_eq!(a.barrier(1, 2, EXACTLY_ONCE).action, AlignAction::Continue);
    }

    #[test]
    fn a_barrier_that_completes_at_once_snapshots_and_reports_any_abandoned_checkpoint() {
        let mut a = BarrierAligner::new(2);
        a.barrier(0, 1, EXACTLY_ONCE);
        a.end(1);
        // Checkpoint 1 completed when channel 1 ended; a fresh one on the only live
        // channel completes at once.
        let out = a.barrier(0, 2, EXACTLY_ONCE);
        assert_eq!(out.aborted, None);
        assert!(is_snapshot(&out.action, 2));
        let mut c = BarrierAligner::new(2);
        c.barrier(0, 1, EXACTLY_ONCE);
        c.end(0);
        let out = c.barrier(1, 2, EXACTLY_ONCE);
        assert_eq!(out.aborted, Some(1));
        assert!(is_snapshot(&out.action, 2));
    }

    #[test]
    fn held_buffers_are_released_in_arrival_order_once_their_channel_is_unblocked() {
        let mut a = BarrierAligner::new(2);
        assert!(!a.holds_back(0));
        assert_eq!(a.barrier(0, 1, EXACTLY_ONCE).action, AlignAction::Block);
        assert!(a.holds_back(0));
        a.hold_rest(0, Buffer::unpooled(b"rest"), (2, 4));
        a.hold(0, Buffer::unpooled(b"next"));
        assert!(a.next_released().is_none(), "channel 0 is blocked");
        assert!(!a.holds_back(1));

        assert!(is_snapshot(&a.barrier(1, 1, EXACTLY_ONCE).action, 1));
        assert!(
            a.holds_back(0),
            "a released channel's later buffers queue behind its held ones"
        );
        let (channel, first) = a.next_released().expect("channel 0 is released");
        assert_eq!((channel, first.buffer.payload()), (0, &b"rest"[..]));
        assert_eq!(first.resume, Some((2, 4)));
        let (_, second) = a.next_released().expect("in arrival order");
        assert_eq!(
            (second.buffer.payload(), second.resume),
            (&b"next"[..], None)
        );
        assert!(a.next_released().is_none());
        assert!(!a.holds_back(0));
    }

    #[test]
    fn an_alignment_that_gives_way_releases_every_channel_and_its_later_barriers_are_stale() {
        let mut a = BarrierAligner::new(3);
        assert_eq!(a.give_way(), None, "nothing is aligning");
        a.end(2);
        assert_eq!(a.barrier(0, 4, EXACTLY_ONCE).action, AlignAction::Block);
        assert_eq!(
            a.alignment().map(|(c, o, _)| (c, o)),
            Some((4, EXACTLY_ONCE))
        );
        assert_eq!(a.give_way(), Some(vec![true, false, true]));
        assert!((0..3).all(|c| !a.is_blocked(c)));
        assert_eq!(a.pending(), None);
        assert_eq!(a.barrier(1, 4, EXACTLY_ONCE).action, AlignAction::Continue);
        assert_eq!(a.barrier(1, 5, EXACTLY_ONCE).action, AlignAction::Block);
    }

    #[test]
    fn alignment_time_runs_from_the_first_barrier_to_the_last() {
        let mut a = BarrierAligner::new(2);
        a.barrier(0, 1, EXACTLY_ONCE);
        std::thread::sleep(Duration::from_millis(20));
        match a.barrier(1, 1, EXACTLY_ONCE).action {
            AlignAction::Snapshot { alignment, .. } => {
                assert!(alignment >= Duration::from_millis(20), "{alignment:?}")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
