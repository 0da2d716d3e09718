//! Barrier alignment of one task's input channels (asynchronous barrier snapshotting).
//!
//! Each input channel delivers `Barrier(n)` in order with its records. In exactly-once
//! mode a channel that delivered barrier `n` is blocked (its later buffers are held back,
//! unrecycled, so its producer runs out of credit) until every other channel delivered it
//! too; then the task snapshots its state and forwards the barrier. In at-least-once mode
//! no channel is blocked; the task snapshots when the last barrier arrives. A channel that
//! ended counts as having delivered every barrier.
//!
//! Invariants (checked by the tests): at most one checkpoint is being aligned at a time; a
//! barrier of a newer checkpoint aborts the older alignment (its channels are released) and
//! starts the newer one; barriers of an aborted or completed checkpoint are ignored; a
//! completed alignment releases every channel and reports how long it took.

use crate::element::BarrierOptions;
use crate::types::CheckpointId;
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
}

impl BarrierAligner {
    /// Tracks `channels` input channels.
    pub fn new(channels: usize) -> Self {
        Self {
            ended: vec![false; channels],
            blocked: vec![false; channels],
            pending: None,
            last_done: None,
        }
    }

    /// Returns whether `channel` is held back.
    pub fn is_blocked(&self, channel: usize) -> bool {
        self.blocked[channel]
    }

    /// Returns the checkpoint being aligned, if any.
    pub fn pending(&self) -> Option<CheckpointId> {
        self.pending.as_ref().map(|p| p.checkpoint)
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
    };
    const AT_LEAST_ONCE: BarrierOptions = BarrierOptions {
        savepoint: false,
        aligned: false,
        stop: false,
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
