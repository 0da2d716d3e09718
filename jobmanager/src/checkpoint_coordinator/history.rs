//! The checkpoint statistics of one job, as Flink's checkpoint history shows them: how many
//! checkpoints were triggered, completed and failed, and the most recent ones with their
//! figures or the reason they failed. The REST API and the dashboard read them from the
//! job's snapshot, also after the job ended (cancelled or failed).
//!
//! Invariants: every triggered checkpoint enters the history once, in progress, and leaves
//! that state at most once (completed or failed); the counts never decrease; at most
//! [`HISTORY_SIZE`] settled entries are kept, oldest first, and every entry in progress
//! (the counts cover every checkpoint).

use serde::Serialize;
use std::collections::VecDeque;
use weir_runtime::CheckpointId;

/// How many recent checkpoints the history keeps (Flink's `web.checkpoints.history` is 10;
/// the dashboard's chart shows more).
pub const HISTORY_SIZE: usize = 32;

/// Where a checkpoint of the history is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CheckpointState {
    /// Triggered; not every task acknowledged it yet, or its metadata is being stored.
    InProgress,
    /// Complete: its metadata is stored.
    Completed,
    /// Aborted: declined, timed out, subsumed, dropped by a restart, or not stored.
    Failed,
}

/// One checkpoint (or savepoint) of the history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Its id.
    pub id: CheckpointId,
    /// Where it is.
    pub state: CheckpointState,
    /// Whether it is a savepoint.
    pub savepoint: bool,
    /// When it was triggered (milliseconds since the epoch).
    pub trigger_timestamp_ms: i64,
    /// When the latest acknowledgement arrived, if any did.
    pub latest_ack_timestamp_ms: Option<i64>,
    /// How many subtasks take part.
    pub num_subtasks: usize,
    /// How many acknowledged it.
    pub num_acknowledged: usize,
    /// Trigger to completion or failure, in milliseconds.
    pub duration_ms: Option<u64>,
    /// Size of its state in bytes (completed only).
    pub size: u64,
    /// Bytes it stored itself (completed only; see [`super::CompletedCheckpoint`]).
    pub incremental_size: u64,
    /// The longest alignment of any task, in milliseconds.
    pub alignment_ms: u64,
    /// Where it is stored (completed only): the checkpoint's directory, or the savepoint's.
    pub external_path: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
}

/// The checkpoint that a run of the job restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredCheckpoint {
    /// Its id.
    pub id: CheckpointId,
    /// When the run restored it (milliseconds since the epoch).
    pub restore_timestamp_ms: i64,
    /// Whether it was a savepoint.
    pub savepoint: bool,
    /// Where it is stored.
    pub external_path: String,
}

/// Counts and recent checkpoints of one job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckpointHistory {
    /// Checkpoints triggered.
    pub triggered: u64,
    /// Checkpoints completed.
    pub completed: u64,
    /// Checkpoints failed.
    pub failed: u64,
    /// Runs that restored a checkpoint or savepoint.
    pub restored: u64,
    /// The latest restore.
    pub latest_restore: Option<RestoredCheckpoint>,
    entries: VecDeque<CheckpointStats>,
}

impl CheckpointHistory {
    /// The recent checkpoints, oldest first.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &CheckpointStats> {
        self.entries.iter()
    }

    /// Checkpoints triggered that neither completed nor failed yet.
    pub fn in_progress(&self) -> u64 {
        self.triggered - self.completed - self.failed
    }

    pub(super) fn triggered(
        &mut self,
        id: CheckpointId,
        timestamp_ms: i64,
        savepoint: bool,
        subtasks: usize,
    ) {
        self.triggered += 1;
        if self.entries.len() >= HISTORY_SIZE {
            // The oldest settled entry goes; one in progress stays until it settles, so
            // that its outcome is counted.
            if let Some(i) = self
                .entries
                .iter()
                .position(|e| e.state != CheckpointState::InProgress)
            {
                self.entries.remove(i);
            }
        }
        self.entries.push_back(CheckpointStats {
            id,
            state: CheckpointState::InProgress,
            savepoint,
            trigger_timestamp_ms: timestamp_ms,
            latest_ack_timestamp_ms: None,
            num_subtasks: subtasks,
            num_acknowledged: 0,
            duration_ms: None,
            size: 0,
            incremental_size: 0,
            alignment_ms: 0,
            external_path: None,
            failure: None,
        });
    }

    /// Checkpoint `id` has `waiting` acknowledgements left.
    pub(super) fn acknowledged(&mut self, id: CheckpointId, waiting: usize) {
        if let Some(e) = self.in_progress_entry(id) {
            e.num_acknowledged = e.num_subtasks.saturating_sub(waiting);
            e.latest_ack_timestamp_ms = Some(weir_runtime::now_ms());
        }
    }

    pub(super) fn completed(&mut self, done: &super::CompletedCheckpoint, path: String) {
        let Some(e) = self.in_progress_entry(done.checkpoint) else {
            return;
        };
        e.state = CheckpointState::Completed;
        e.duration_ms = Some(done.duration.as_millis() as u64);
        e.size = done.size;
        e.incremental_size = done.incremental_size;
        e.alignment_ms = done.max_alignment_ms;
        e.num_acknowledged = e.num_subtasks;
        e.external_path = Some(path);
        self.completed += 1;
    }

    pub(super) fn failed(&mut self, id: CheckpointId, reason: &str) {
        let Some(e) = self.in_progress_entry(id) else {
            return;
        };
        e.state = CheckpointState::Failed;
        e.duration_ms = Some((weir_runtime::now_ms() - e.trigger_timestamp_ms).max(0) as u64);
        e.failure = Some(reason.to_string());
        self.failed += 1;
    }

    /// A run restored `restored`.
    pub fn restored(&mut self, restored: RestoredCheckpoint) {
        self.restored += 1;
        self.latest_restore = Some(restored);
    }

    fn in_progress_entry(&mut self, id: CheckpointId) -> Option<&mut CheckpointStats> {
        self.entries
            .iter_mut()
            .rev()
            .find(|e| e.id == id && e.state == CheckpointState::InProgress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn done(id: CheckpointId) -> crate::CompletedCheckpoint {
        crate::CompletedCheckpoint {
            checkpoint: id,
            duration: Duration::from_millis(40),
            size: 100,
            incremental_size: 60,
            max_alignment_ms: 3,
        }
    }

    #[test]
    fn a_checkpoint_leaves_in_progress_once_and_the_counts_cover_every_checkpoint() {
        let mut h = CheckpointHistory::default();
        h.triggered(1, 1_000, false, 4);
        h.triggered(2, 2_000, true, 4);
        assert_eq!(h.in_progress(), 2);
        h.acknowledged(1, 1);
        h.completed(&done(1), "file:///c/j/chk-1".into());
        // A late failure of a completed checkpoint changes nothing.
        h.failed(1, "late");
        h.failed(2, "declined");
        assert_eq!(
            (h.triggered, h.completed, h.failed, h.in_progress()),
            (2, 1, 1, 0)
        );
        let e: Vec<_> = h.entries().collect();
        assert_eq!(e[0].state, CheckpointState::Completed);
        assert_eq!((e[0].size, e[0].num_acknowledged), (100, 4));
        assert_eq!(e[0].external_path.as_deref(), Some("file:///c/j/chk-1"));
        assert_eq!(e[1].state, CheckpointState::Failed);
        assert_eq!(e[1].failure.as_deref(), Some("declined"));
        assert!(e[1].savepoint);
    }

    #[test]
    fn the_history_keeps_the_most_recent_checkpoints_only() {
        let mut h = CheckpointHistory::default();
        for id in 1..=(HISTORY_SIZE as u64 + 5) {
            h.triggered(id, 0, false, 1);
            h.completed(&done(id), String::new());
        }
        assert_eq!(h.entries().count(), HISTORY_SIZE);
        assert_eq!(h.entries().next().unwrap().id, 6);
        assert_eq!(h.completed, HISTORY_SIZE as u64 + 5);
    }
}
