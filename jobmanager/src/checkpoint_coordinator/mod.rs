//! The checkpoint coordinator of one job: triggers checkpoints, collects the tasks'
//! acknowledgements, completes or aborts each checkpoint, and keeps storage tidy.
//!
//! It is a pure state machine driven by its JobMaster: [`CheckpointCoordinator::tick`] on
//! a timer, [`CheckpointCoordinator::acknowledge`] and [`CheckpointCoordinator::decline`]
//! on task messages. It performs no I/O: it returns [`CoordinatorAction`]s, the messages to
//! send and the storage work to do (store a checkpoint's metadata, delete files), which the
//! JobMaster carries out through [`crate::checkpoint_io`] and answers where the outcome
//! matters ([`CheckpointCoordinator::stored`], [`CheckpointCoordinator::subsumed`]).
//!
//! Invariants:
//! - a checkpoint completes only when every task of the job acknowledged it; its metadata
//!   is then written (last, atomically) and subsumed checkpoints beyond the retained count
//!   are deleted;
//! - at most `max_concurrent` checkpoints are pending, and a new one is triggered no
//!   earlier than `interval` after the previous trigger (or after the run started) and
//!   `min_pause` after the previous completion;
//! - a checkpoint that times out or is declined is aborted and its files deleted; more
//!   than `tolerable_failures` failures in a row fail the job;
//! - acknowledgements for unknown, aborted or completed checkpoints are ignored (their
//!   files are removed by the next cleanup);
//! - a task that finishes while every source still has a running subtask leaves the
//!   checkpoints (it acknowledges the pending ones without state); otherwise a task
//!   finishing ends checkpointing until a restart;
//! - a savepoint request waits until no checkpoint is pending (no periodic checkpoint is
//!   triggered meanwhile), then runs as a checkpoint whose completion also copies it into
//!   its own directory; a failed savepoint is answered with the reason and does not count
//!   as a failed checkpoint. Every request is answered exactly once (unless withdrawn
//!   before it was triggered); a stop-with-savepoint is answered when the job has ended:
//!   with the savepoint's URL if it finished, with an error naming the (usable) savepoint
//!   if it failed while stopping, when a restarted job runs on as before;
//! - a checkpoint is complete once its metadata is written: failing to delete subsumed
//!   checkpoints afterwards is logged, not a checkpoint failure;
//! - shared files (incremental checkpoints) are counted by a [`SharedStateRegistry`]: a
//!   completed checkpoint is registered, a deleted one unregistered, and a shared file is
//!   deleted exactly when no retained checkpoint references it any more; the shared files
//!   an aborted or dropped checkpoint uploaded, and those of late acknowledgements, are
//!   deleted unless a retained checkpoint references them.

mod abort;
mod action;
pub mod history;
mod savepoints;
#[cfg(test)]
mod tests;

use crate::SavepointError;
pub use action::{CompletedCheckpoint, CoordinatorAction, SavepointRequest, StoreOutcome};
use history::CheckpointHistory;
use savepoints::savepoint_failed;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tracing::{info, warn};
use weir_runtime::checkpoint::{CheckpointMetadata, OperatorStateHandles, SharedStateRegistry};
use weir_runtime::control::OperatorSubtaskState;
use weir_runtime::element::BarrierOptions;
use weir_runtime::{CheckpointConfig, CheckpointId, CheckpointingMode, JobId, SubtaskId};

struct Pending {
    triggered: Instant,
    timestamp_ms: i64,
    savepoint: Option<(u64, SavepointRequest)>,
    waiting: BTreeSet<SubtaskId>,
    state: Vec<OperatorSubtaskState>,
    max_alignment_ms: u64,
    /// Every acknowledgement so far came from a task whose input had ended.
    ended: bool,
}

/// Coordinates the checkpoints of one job.
pub struct CheckpointCoordinator {
    job: JobId,
    job_name: String,
    config: CheckpointConfig,
    /// The subtasks that take part in checkpoints (all but finished sources).
    tasks: BTreeSet<SubtaskId>,
    /// Every subtask of the job.
    all_tasks: BTreeSet<SubtaskId>,
    /// The subtasks of source vertices.
    sources: BTreeSet<SubtaskId>,
    next_id: CheckpointId,
    pending: BTreeMap<CheckpointId, Pending>,
    last_trigger: Option<Instant>,
    last_completion: Option<Instant>,
    failures_in_a_row: u32,
    /// A task finished: no checkpoint can complete any more.
    finished: bool,
    completed: Vec<CompletedCheckpoint>,
    stopped: bool,
    /// Savepoint requests not triggered yet, oldest first.
    queued: std::collections::VecDeque<(u64, SavepointRequest)>,
    next_request: u64,
    /// A stop-with-savepoint completed and the job is stopping: its request and URL,
    /// answered once the job has ended.
    stopping: Option<(u64, String)>,
    /// Which retained checkpoints reference which shared files.
    shared: SharedStateRegistry,
    /// Checkpoints every task acknowledged whose metadata is being stored.
    storing: BTreeMap<CheckpointId, Pending>,
    /// The subtasks whose input ended in this run: once all did, the final checkpoint is
    /// triggered without waiting for the interval.
    inputs_ended: BTreeSet<SubtaskId>,
    /// Counts and recent checkpoints, for the REST API.
    history: CheckpointHistory,
}

impl CheckpointCoordinator {
    /// Coordinates the checkpoints of `job`, whose subtasks are `tasks`; `shared` counts
    /// the shared files of the checkpoints retained in storage (see
    /// [`crate::checkpoint_io::registry`]). Checkpoint ids continue after `first_id - 1`
    /// (after a restore, they never repeat).
    pub fn new(
        job: JobId,
        job_name: &str,
        config: CheckpointConfig,
        shared: SharedStateRegistry,
        tasks: impl IntoIterator<Item = SubtaskId>,
        first_id: CheckpointId,
    ) -> Self {
        let tasks: BTreeSet<SubtaskId> = tasks.into_iter().collect();
        Self {
            job,
            job_name: job_name.to_string(),
            config,
            all_tasks: tasks.clone(),
            tasks,
            sources: BTreeSet::new(),
            next_id: first_id.max(1),
            pending: BTreeMap::new(),
            last_trigger: None,
            last_completion: None,
            failures_in_a_row: 0,
            finished: false,
            completed: Vec::new(),
            stopped: false,
            queued: std::collections::VecDeque::new(),
            next_request: 0,
            stopping: None,
            shared,
            storing: BTreeMap::new(),
            inputs_ended: BTreeSet::new(),
            history: CheckpointHistory::default(),
        }
    }

    /// Returns the shared-state registry.
    pub fn shared_state(&self) -> &SharedStateRegistry {
        &self.shared
    }

    /// Returns the job.
    pub fn job(&self) -> JobId {
        self.job
    }

    /// Returns how many completed checkpoints are retained.
    pub fn retained(&self) -> usize {
        self.config.retained
    }

    /// The deletion of the shared files `state` references that no retained checkpoint
    /// does (uploaded for a checkpoint that will not complete).
    fn delete_unreferenced(
        &self,
        checkpoint: CheckpointId,
        state: &[OperatorSubtaskState],
    ) -> Option<CoordinatorAction> {
        let files = state.iter().flat_map(|s| &s.handle.shared);
        let paths = self.shared.unreferenced(files);
        (!paths.is_empty()).then_some(CoordinatorAction::DeleteShared { checkpoint, paths })
    }

    /// Checkpoints `deleted` were deleted as subsumed: returns the deletion of the shared
    /// files only they referenced.
    pub fn subsumed(&mut self, deleted: Vec<CheckpointId>) -> Vec<CoordinatorAction> {
        deleted
            .into_iter()
            .filter_map(|checkpoint| {
                let paths = self.shared.unregister(checkpoint);
                (!paths.is_empty()).then_some(CoordinatorAction::DeleteShared { checkpoint, paths })
            })
            .collect()
    }

    /// The id the next checkpoint or savepoint will have.
    pub fn next_id(&self) -> CheckpointId {
        self.next_id
    }

    /// Returns the checkpoints completed so far.
    pub fn completed(&self) -> &[CompletedCheckpoint] {
        &self.completed
    }

    /// Returns the checkpoint statistics: counts and recent checkpoints.
    pub fn history(&self) -> &CheckpointHistory {
        &self.history
    }

    /// Records that a run restored `restored`.
    pub fn restored(&mut self, restored: history::RestoredCheckpoint) {
        self.history.restored(restored);
    }

    /// The location of completed checkpoint `checkpoint` in the checkpoint storage.
    fn location(&self, checkpoint: CheckpointId) -> String {
        let dir = weir_runtime::checkpoint::checkpoint_dir(self.job, checkpoint);
        weir_runtime::checkpoint::join_url(&self.config.dir, &dir)
    }

    /// Returns the ids of the pending checkpoints.
    pub fn pending(&self) -> Vec<CheckpointId> {
        self.pending.keys().copied().collect()
    }

    /// Returns the default savepoint directory (`state.savepoints.dir`), if set.
    pub fn savepoint_dir(&self) -> Option<&str> {
        self.config.savepoint_dir.as_deref()
    }

    /// The restarted job runs again: checkpoints resume (ids go on from the last one) with
    /// every task.
    pub fn resume(&mut self) {
        self.stopped = false;
        self.finished = false;
        self.last_trigger = None;
        self.tasks = self.all_tasks.clone();
        self.inputs_ended.clear();
    }

    /// Subtask `subtask`'s input ended. Once every subtask's did, the next tick triggers
    /// the job's final checkpoint at once (whether it is final is decided by the
    /// acknowledgements, so a late report of an earlier run triggers at worst an ordinary
    /// checkpoint early).
    pub fn input_ended(&mut self, subtask: SubtaskId) {
        self.inputs_ended.insert(subtask);
    }

    /// Returns whether every running subtask's input ended.
    fn all_inputs_ended(&self) -> bool {
        !self.tasks.is_empty() && self.tasks.iter().all(|t| self.inputs_ended.contains(t))
    }

    /// Marks which subtasks are sources (see [`Self::task_finished`]).
    pub fn with_sources(mut self, sources: impl IntoIterator<Item = SubtaskId>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// Task `subtask` finished.
    ///
    /// While every source still has a running subtask, a finished task has processed
    /// everything it ever will (its inputs ended, so did every task upstream of it) and its
    /// end of partition counts as every later barrier downstream: checkpoints go on
    /// without it (it acknowledges the pending ones with no state, so a restore gives it
    /// nothing, as nothing is left). Once a source has no running subtask (or the sources
    /// are unknown), a task finishing ends checkpointing: pending checkpoints are dropped
    /// (without counting as failures), savepoint requests are answered as failed, and none
    /// is triggered any more — a restore must never find a source without state.
    pub fn task_finished(&mut self, subtask: SubtaskId) -> Vec<CoordinatorAction> {
        if self.finished {
            return Vec::new();
        }
        let source_vertices: BTreeSet<_> = self.sources.iter().map(|s| s.vertex).collect();
        let sources_run = !source_vertices.is_empty()
            && source_vertices
                .iter()
                .all(|v| self.tasks.iter().any(|t| t.vertex == *v && *t != subtask));
        if sources_run && self.stopping.is_none() && self.tasks.remove(&subtask) {
            info!(job_id = %self.job, vertex = subtask.vertex, subtask = subtask.subtask, "a subtask finished; checkpoints go on without it");
            let waiting: Vec<CheckpointId> = self
                .pending
                .iter()
                .filter(|(_, p)| p.waiting.contains(&subtask))
                .map(|(id, _)| *id)
                .collect();
            let mut actions = Vec::new();
            for id in waiting {
                actions.extend(self.acknowledge(subtask, id, Vec::new(), 0, true));
            }
            return actions;
        }
        self.finished = true;
        self.stopped = true;
        if self.stopping.is_some() {
            // Tasks end one by one after a stop-with-savepoint.
            return Vec::new();
        }
        let reason = SavepointError::TaskFinished.to_string();
        let mut actions = self.drop_pending(&reason);
        actions.extend(self.fail_queued(SavepointError::TaskFinished));
        info!(job_id = %self.job, "a task finished: no further checkpoints");
        actions
    }

    /// Aborts timed-out checkpoints and triggers a new one when one is due.
    pub fn tick(&mut self, now: Instant, timestamp_ms: i64) -> Vec<CoordinatorAction> {
        let mut actions = Vec::new();
        if self.stopped {
            return actions;
        }
        let expired: Vec<CheckpointId> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.triggered) >= self.config.timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let reason = format!("not complete within {:?}", self.config.timeout);
            actions.extend(self.abort(id, &reason));
        }
        if !self.queued.is_empty() {
            if self.pending.is_empty() && !actions.iter().any(is_fail) {
                let (request, savepoint) = self.queued.pop_front().expect("not empty");
                actions.push(self.start(now, timestamp_ms, Some((request, savepoint))));
            }
            return actions;
        }
        // The first checkpoint of a run comes one interval after the run started; the
        // final one as soon as every input ended.
        let final_due = self.all_inputs_ended();
        let due = final_due
            || match self.last_trigger {
                None => {
                    self.last_trigger = Some(now);
                    false
                }
                Some(t) => now.saturating_duration_since(t) >= self.config.interval,
            };
        let paused = !final_due
            && self
                .last_completion
                .is_some_and(|t| now.saturating_duration_since(t) < self.config.min_pause);
        let room = self.pending.len() < self.config.max_concurrent;
        if due && !paused && room && !actions.iter().any(is_fail) {
            actions.push(self.start(now, timestamp_ms, None));
        }
        actions
    }

    /// Triggers a checkpoint, or the savepoint of request `savepoint`, now.
    fn start(
        &mut self,
        now: Instant,
        timestamp_ms: i64,
        savepoint: Option<(u64, SavepointRequest)>,
    ) -> CoordinatorAction {
        let target = savepoint.as_ref().and_then(|(_, s)| s.target.as_deref());
        if let Some((_, s)) = &savepoint {
            info!(job_id = %self.job, checkpoint = self.next_id, target, stop = s.stop, drain = s.drain, "triggering on request");
        }
        let is_savepoint = target.is_some();
        let stop = savepoint.as_ref().is_some_and(|(_, s)| s.stop);
        let overtaking = !is_savepoint && self.config.unaligned;
        let options = BarrierOptions {
            savepoint: is_savepoint,
            // Savepoints always align, so they are consistent whatever the mode.
            aligned: is_savepoint || self.config.mode == CheckpointingMode::ExactlyOnce,
            stop,
            drain: stop && savepoint.as_ref().is_some_and(|(_, s)| s.drain),
            // Savepoints align; checkpoints overtake the data in flight if configured, at
            // once or after the aligned-checkpoint timeout.
            unaligned: overtaking && self.config.aligned_timeout.is_zero(),
            timeout: overtaking && !self.config.aligned_timeout.is_zero(),
        };
        let checkpoint = self.next_id;
        self.next_id += 1;
        self.last_trigger = Some(now);
        self.history
            .triggered(checkpoint, timestamp_ms, is_savepoint, self.tasks.len());
        self.pending.insert(
            checkpoint,
            Pending {
                triggered: now,
                timestamp_ms,
                savepoint,
                waiting: self.tasks.clone(),
                state: Vec::new(),
                max_alignment_ms: 0,
                ended: true,
            },
        );
        CoordinatorAction::Trigger {
            checkpoint,
            timestamp_ms,
            options,
        }
    }

    /// A subtask acknowledged `checkpoint` with its state (`ended`: its input had ended
    /// before the snapshot). When it was the last one, returns the storing of the
    /// checkpoint's metadata ([`CoordinatorAction::Store`]), whose outcome completes it
    /// ([`Self::stored`]).
    pub fn acknowledge(
        &mut self,
        subtask: SubtaskId,
        checkpoint: CheckpointId,
        state: Vec<OperatorSubtaskState>,
        alignment_ms: u64,
        ended: bool,
    ) -> Vec<CoordinatorAction> {
        let Some(p) = self.pending.get_mut(&checkpoint) else {
            // Too late: the checkpoint was aborted (or never existed).
            return self
                .delete_unreferenced(checkpoint, &state)
                .into_iter()
                .collect();
        };
        if !p.waiting.remove(&subtask) {
            // Acknowledged twice: the files may be the first acknowledgement's, which the
            // pending checkpoint references; they go with it if it is aborted.
            warn!(job_id = %self.job, checkpoint, vertex = subtask.vertex, subtask = subtask.subtask, "duplicate acknowledgement ignored");
            return Vec::new();
        }
        p.state.extend(state);
        p.max_alignment_ms = p.max_alignment_ms.max(alignment_ms);
        p.ended &= ended;
        self.history.acknowledged(checkpoint, p.waiting.len());
        if !p.waiting.is_empty() {
            return Vec::new();
        }
        let p = self.pending.remove(&checkpoint).expect("present above");
        let metadata = self.metadata(checkpoint, &p);
        let savepoint = p.savepoint.as_ref().and_then(|(_, s)| s.target.clone());
        self.storing.insert(checkpoint, p);
        vec![CoordinatorAction::Store {
            checkpoint,
            metadata: Box::new(metadata),
            savepoint,
        }]
    }

    /// The metadata of `checkpoint` (from [`CoordinatorAction::Store`]) was stored, or not:
    /// completes the checkpoint (answering its savepoint, retiring subsumed checkpoints and
    /// aborting older pending ones) or fails it.
    pub fn stored(
        &mut self,
        now: Instant,
        metadata: &CheckpointMetadata,
        outcome: StoreOutcome,
    ) -> Vec<CoordinatorAction> {
        let checkpoint = metadata.checkpoint;
        let Some(p) = self.storing.remove(&checkpoint) else {
            return Vec::new();
        };
        let url = match outcome {
            StoreOutcome::Stored { savepoint } => savepoint,
            StoreOutcome::MetadataFailed(e) => {
                let reason = format!("cannot complete: {e}");
                // Its metadata may be written: a later start must not take it as complete.
                let mut actions = vec![CoordinatorAction::Discard { checkpoint }];
                actions.extend(self.delete_unreferenced(checkpoint, &p.state));
                self.history.failed(checkpoint, &reason);
                actions.extend(self.failed(checkpoint, &reason));
                if let Some((request, savepoint)) = p.savepoint {
                    actions.extend(savepoint_failed(
                        request, &savepoint, checkpoint, &reason, true,
                    ));
                }
                return actions;
            }
            StoreOutcome::SavepointFailed(reason) => {
                return self.abort_removed(checkpoint, p, &reason);
            }
        };
        let path = url.clone().unwrap_or_else(|| self.location(checkpoint));
        let answer = self.savepoint_stored(checkpoint, &p, url);
        let new_shared = self.shared.register(metadata);
        // The checkpoint is complete once its metadata is written: failing to delete
        // subsumed ones leaves them behind (the next completion retries) but undoes nothing.
        let mut actions = vec![CoordinatorAction::Retain];
        // Uploads the metadata names by their canonical upload instead are duplicates.
        actions.extend(self.delete_unreferenced(checkpoint, &p.state));
        self.failures_in_a_row = 0;
        self.last_completion = Some(now);
        let done = CompletedCheckpoint {
            checkpoint,
            duration: now.saturating_duration_since(p.triggered),
            size: metadata.state_size(),
            incremental_size: metadata.state_size()
                - metadata.shared_files().map(|f| f.size).sum::<u64>()
                + new_shared,
            max_alignment_ms: p.max_alignment_ms,
        };
        info!(job_id = %self.job, checkpoint, duration_ms = done.duration.as_millis() as u64, size = done.size, incremental_size = done.incremental_size, in_flight_size = metadata.in_flight_size(), alignment_ms = done.max_alignment_ms, "checkpoint complete");
        self.history.completed(&done, path);
        self.completed.push(done);
        // Older pending checkpoints are subsumed: abort them.
        let older: Vec<_> = self
            .pending
            .range(..checkpoint)
            .map(|(id, _)| *id)
            .collect();
        for id in older {
            actions.extend(self.abort(id, "subsumed by a newer checkpoint"));
        }
        let last = p.ended;
        if last {
            // Every task's input had ended: this is the final checkpoint; tasks end now.
            info!(job_id = %self.job, checkpoint, "final checkpoint complete");
            self.stopped = true;
        }
        actions.push(CoordinatorAction::NotifyComplete { checkpoint, last });
        actions.extend(answer);
        actions
    }

    /// The job ended (all its tasks, and so their uploads, are done): returns the deletion
    /// of every checkpoint that did not complete, keeping the retained completed ones.
    pub fn shutdown(&mut self) -> Vec<CoordinatorAction> {
        self.stopped = true;
        let mut actions = Vec::new();
        for (id, p) in std::mem::take(&mut self.pending) {
            self.history.failed(id, "the job ended before it completed");
            actions.extend(self.delete_unreferenced(id, &p.state));
        }
        self.queued.clear();
        actions.push(self.discard_incomplete(CheckpointId::MAX));
        actions.push(CoordinatorAction::Retain);
        actions
    }

    fn metadata(&self, checkpoint: CheckpointId, p: &Pending) -> CheckpointMetadata {
        let mut operators: BTreeMap<&str, OperatorStateHandles> = BTreeMap::new();
        for s in &p.state {
            let op = operators
                .entry(s.uid.as_str())
                .or_insert_with(|| OperatorStateHandles {
                    uid: s.uid.clone(),
                    parallelism: s.parallelism,
                    max_parallelism: s.max_parallelism,
                    subtasks: Vec::new(),
                });
            let mut handle = s.handle.clone();
            // A local file uploaded again (or named by an upload a later checkpoint
            // replaced) is referenced by its canonical upload.
            for file in &mut handle.shared {
                if self.shared.references(&file.path) > 0 {
                    continue;
                }
                if let Some(canonical) = self.shared.canonical(file) {
                    file.path = canonical.to_string();
                }
            }
            op.subtasks.push(handle);
        }
        let mut operators: Vec<_> = operators.into_values().collect();
        for op in &mut operators {
            op.subtasks.sort_by_key(|h| h.subtask);
        }
        CheckpointMetadata {
            job: self.job,
            job_name: self.job_name.clone(),
            checkpoint,
            timestamp_ms: p.timestamp_ms,
            savepoint: p
                .savepoint
                .as_ref()
                .is_some_and(|(_, s)| s.target.is_some()),
            operators,
        }
    }
}

fn is_fail(a: &CoordinatorAction) -> bool {
    matches!(a, CoordinatorAction::FailJob { .. })
}
