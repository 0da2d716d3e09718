//! The two-phase-commit bookkeeping both file sink writers share (local files and S3
//! uploads): parts closed since the last barrier, and parts pre-committed for a checkpoint
//! and waiting for it to complete.
//!
//! Invariant: a part is closed once, pre-committed with the first barrier after it closed,
//! and handed out for commit once, by the completion of that checkpoint or a later one.

use weir_runtime::CheckpointId;

/// Closed and pre-committed parts, of whatever a writer calls a part (`P`).
pub(super) struct PendingParts<P> {
    closed: Vec<P>,
    pending: Vec<(CheckpointId, P)>,
}

impl<P: Clone> PendingParts<P> {
    pub fn new() -> Self {
        Self {
            closed: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// A part closed since the last barrier.
    pub fn close(&mut self, part: P) {
        self.closed.push(part);
    }

    /// At `checkpoint`'s barrier: the closed parts become its pending parts; returns every
    /// part still pending (what the checkpoint's state lists).
    pub fn pre_commit(&mut self, checkpoint: CheckpointId) -> Vec<P> {
        for p in self.closed.drain(..) {
            self.pending.push((checkpoint, p));
        }
        self.pending.iter().map(|(_, p)| p.clone()).collect()
    }

    /// The parts `checkpoint`'s completion commits (those of it and earlier ones).
    pub fn ready(&mut self, checkpoint: CheckpointId) -> Vec<P> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(c, _)| *c <= checkpoint);
        self.pending = waiting;
        ready.into_iter().map(|(_, p)| p).collect()
    }
}
