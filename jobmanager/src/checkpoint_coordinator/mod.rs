//! The checkpoint coordinator of one job: triggers checkpoints, collects the tasks'
//! acknowledgements, completes or aborts each checkpoint, and keeps storage tidy.
//!
//! It is a state machine driven by the JobManager: [`CheckpointCoordinator::tick`] on a
//! timer, [`CheckpointCoordinator::acknowledge`] and [`CheckpointCoordinator::decline`]
//! on task messages. It performs storage I/O itself (metadata and cleanup) and returns the
//! messages the JobManager must send.
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

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weir_runtime::checkpoint::{
    CheckpointMetadata, CheckpointStorage, OperatorStateHandles, SharedStateRegistry, StorageError,
};
use weir_runtime::control::OperatorSubtaskState;
use weir_runtime::element::BarrierOptions;
use weir_runtime::{CheckpointConfig, CheckpointId, CheckpointingMode, JobId, SubtaskId};

/// What the JobManager must do for the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoordinatorAction {
    /// Send `TriggerCheckpoint` to the TaskManagers running the job's sources.
    Trigger {
        /// The new checkpoint.
        checkpoint: CheckpointId,
        /// Its trigger time (milliseconds since the epoch).
        timestamp_ms: i64,
        /// Its barrier options.
        options: BarrierOptions,
    },
    /// Send `NotifyCheckpointComplete` to every TaskManager running the job.
    NotifyComplete {
        /// The completed checkpoint.
        checkpoint: CheckpointId,
    },
    /// Fail the job: too many checkpoints failed in a row.
    FailJob {
        /// Why.
        reason: String,
    },
    /// Send `NotifyCheckpointAborted` to every TaskManager running the job (tasks stopping
    /// for it resume).
    NotifyAborted {
        /// The aborted checkpoint.
        checkpoint: CheckpointId,
    },
    /// Answer savepoint request `request`: the savepoint's URL, or why it failed.
    SavepointDone {
        /// The request (from [`CheckpointCoordinator::request_savepoint`]).
        request: u64,
        /// The savepoint's URL, or the reason it failed.
        result: Result<String, String>,
    },
}

/// A savepoint asked for on a running job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavepointRequest {
    /// The storage URL the savepoint's directory goes into.
    pub target: String,
    /// Whether the job stops once the savepoint completes (stop-with-savepoint).
    pub stop: bool,
}

/// Figures of one completed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompletedCheckpoint {
    /// Its id.
    pub checkpoint: CheckpointId,
    /// Trigger to completion.
    pub duration: Duration,
    /// Size of its state in bytes: its files and every shared file it references.
    pub size: u64,
    /// Bytes it stored: its files and the shared files no earlier retained checkpoint
    /// references (equal to `size` for full snapshots).
    pub incremental_size: u64,
    /// The longest alignment of any task, in milliseconds.
    pub max_alignment_ms: u64,
}

struct Pending {
    triggered: Instant,
    timestamp_ms: i64,
    savepoint: Option<(u64, SavepointRequest)>,
    waiting: BTreeSet<SubtaskId>,
    state: Vec<OperatorSubtaskState>,
    max_alignment_ms: u64,
}

/// Coordinates the checkpoints of one job.
pub struct CheckpointCoordinator {
    job: JobId,
    job_name: String,
    config: CheckpointConfig,
    storage: CheckpointStorage,
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
}

impl CheckpointCoordinator {
    /// Coordinates the checkpoints of `job`, whose subtasks are `tasks`, in `storage`;
    /// checkpoint ids continue after `first_id - 1` (after a restore, they never repeat).
    pub fn new(
        job: JobId,
        job_name: &str,
        config: CheckpointConfig,
        storage: CheckpointStorage,
        tasks: impl IntoIterator<Item = SubtaskId>,
        first_id: CheckpointId,
    ) -> Self {
        // Checkpoints retained from an earlier run of the job keep their shared files.
        let mut shared = SharedStateRegistry::default();
        for id in storage.completed(job).unwrap_or_default() {
            match storage.read_metadata(job, id) {
                Ok(m) => {
                    shared.register(&m);
                }
                Err(e) => {
                    warn!(job_id = %job, checkpoint = id, error = %e, "cannot read a retained checkpoint's shared files")
                }
            }
        }
        let tasks: BTreeSet<SubtaskId> = tasks.into_iter().collect();
        Self {
            job,
            job_name: job_name.to_string(),
            config,
            storage,
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
        }
    }

    /// Returns the shared-state registry.
    pub fn shared_state(&self) -> &SharedStateRegistry {
        &self.shared
    }

    /// Deletes the shared files `state` references that no retained checkpoint does
    /// (uploaded for a checkpoint that will not complete).
    fn delete_unreferenced(&self, checkpoint: CheckpointId, state: &[OperatorSubtaskState]) {
        let files = state.iter().flat_map(|s| &s.handle.shared);
        self.delete_shared(checkpoint, self.shared.unreferenced(files));
    }

    fn delete_shared(&self, checkpoint: CheckpointId, paths: Vec<String>) {
        for path in paths {
            if let Err(e) = self.storage.delete_shared(&path) {
                warn!(job_id = %self.job, checkpoint, path, error = %e, "cannot delete a shared state file");
            }
        }
    }

    /// Deletes subsumed checkpoints beyond the retained count, and the shared files only
    /// they referenced.
    fn retain(&mut self) -> Result<(), StorageError> {
        let deleted = self.storage.retain(self.job, self.config.retained)?;
        for id in deleted {
            let unused = self.shared.unregister(id);
            self.delete_shared(id, unused);
        }
        Ok(())
    }

    /// Queues a savepoint into `request.target`; it is triggered as soon as no checkpoint
    /// is pending. Returns the request's id, which its answer
    /// ([`CoordinatorAction::SavepointDone`]) carries.
    pub fn request_savepoint(&mut self, request: SavepointRequest) -> Result<u64, String> {
        if self.stopping.is_some() {
            return Err("the job is already stopping with a savepoint".into());
        }
        if self.finished {
            return Err("a task of the job finished: no further checkpoints or savepoints".into());
        }
        let id = self.next_request;
        self.next_request += 1;
        self.queued.push_back((id, request));
        Ok(id)
    }

    /// Returns the checkpoints completed so far.
    pub fn completed(&self) -> &[CompletedCheckpoint] {
        &self.completed
    }

    /// Returns the ids of the pending checkpoints.
    pub fn pending(&self) -> Vec<CheckpointId> {
        self.pending.keys().copied().collect()
    }

    /// Returns the default savepoint directory (`state.savepoints.dir`), if set.
    pub fn savepoint_dir(&self) -> Option<&str> {
        self.config.savepoint_dir.as_deref()
    }

    /// Returns the storage.
    pub fn storage(&self) -> &CheckpointStorage {
        &self.storage
    }

    /// The job restarts after `failure`: pending checkpoints are dropped (without counting
    /// as failures; pending savepoints are answered as failed) and none is triggered until
    /// [`Self::resume`]. Queued savepoint requests wait for the restarted job. A job that
    /// was stopping with a completed savepoint runs again, and the stop is answered as
    /// failed (the savepoint itself stays usable).
    pub fn pause(&mut self, failure: &str) -> Vec<CoordinatorAction> {
        self.stopped = true;
        let mut actions = self.ended(Some(&format!("{failure}; the job restarts")));
        actions.extend(self.drop_pending("the job restarted"));
        actions
    }

    /// The job ended, `Finished` (`failure` is `None`) or failed: answers a
    /// stop-with-savepoint whose savepoint completed, with its URL if the job finished.
    pub fn ended(&mut self, failure: Option<&str>) -> Vec<CoordinatorAction> {
        let Some((request, url)) = self.stopping.take() else {
            return Vec::new();
        };
        let result = match failure {
            None => Ok(url),
            Some(failure) => {
                warn!(job_id = %self.job, savepoint = %url, failure, "the job failed while stopping with a savepoint");
                Err(format!(
                    "the savepoint {url} is complete, but the job failed while stopping: {failure}"
                ))
            }
        };
        vec![CoordinatorAction::SavepointDone { request, result }]
    }

    /// Withdraws savepoint request `request` if it was not triggered yet (it is then not
    /// answered); returns whether it was.
    pub fn withdraw(&mut self, request: u64) -> bool {
        let before = self.queued.len();
        self.queued.retain(|(r, _)| *r != request);
        self.queued.len() != before
    }

    fn drop_pending(&mut self, reason: &str) -> Vec<CoordinatorAction> {
        let mut actions = Vec::new();
        for (id, p) in std::mem::take(&mut self.pending) {
            if let Err(e) = self.storage.discard(self.job, id) {
                warn!(job_id = %self.job, checkpoint = id, error = %e, "cannot delete a dropped checkpoint");
            }
            self.delete_unreferenced(id, &p.state);
            if let Some((request, savepoint)) = p.savepoint {
                actions.extend(savepoint_failed(request, &savepoint, id, reason));
            }
        }
        actions
    }

    fn fail_queued(&mut self, reason: &str) -> Vec<CoordinatorAction> {
        self.queued
            .drain(..)
            .map(|(request, _)| CoordinatorAction::SavepointDone {
                request,
                result: Err(reason.to_string()),
            })
            .collect()
    }

    /// The restarted job runs again: checkpoints resume (ids go on from the last one) with
    /// every task.
    pub fn resume(&mut self) {
        self.stopped = false;
        self.finished = false;
        self.last_trigger = None;
        self.tasks = self.all_tasks.clone();
    }

    /// Marks which subtasks are sources (see [`Self::task_finished`]).
    pub fn with_sources(mut self, sources: impl IntoIterator<Item = SubtaskId>) -> Self {
        self.sources = sources.into_iter().collect();
        self
    }

    /// Task `subtask` finished at `now`.
    ///
    /// While every source still has a running subtask, a finished task has processed
    /// everything it ever will (its inputs ended, so did every task upstream of it) and its
    /// end of partition counts as every later barrier downstream: checkpoints go on
    /// without it (it acknowledges the pending ones with no state, so a restore gives it
    /// nothing, as nothing is left). Once a source has no running subtask (or the sources
    /// are unknown), a task finishing ends checkpointing: pending checkpoints are dropped
    /// (without counting as failures), savepoint requests are answered as failed, and none
    /// is triggered any more — a restore must never find a source without state.
    pub fn task_finished(&mut self, now: Instant, subtask: SubtaskId) -> Vec<CoordinatorAction> {
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
                actions.extend(self.acknowledge(now, subtask, id, Vec::new(), 0));
            }
            return actions;
        }
        self.finished = true;
        self.stopped = true;
        if self.stopping.is_some() {
            // Tasks end one by one after a stop-with-savepoint.
            return Vec::new();
        }
        let reason = "a task of the job finished: no further checkpoints or savepoints";
        let mut actions = self.drop_pending(reason);
        actions.extend(self.fail_queued(reason));
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
        // The first checkpoint of a run comes one interval after the run started.
        let due = match self.last_trigger {
            None => {
                self.last_trigger = Some(now);
                false
            }
            Some(t) => now.saturating_duration_since(t) >= self.config.interval,
        };
        let paused = self
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
        if let Some((_, s)) = &savepoint {
            info!(job_id = %self.job, checkpoint = self.next_id, target = %s.target, stop = s.stop, "triggering savepoint");
        }
        let options = BarrierOptions {
            savepoint: savepoint.is_some(),
            // Savepoints always align, so they are consistent whatever the mode.
            aligned: savepoint.is_some() || self.config.mode == CheckpointingMode::ExactlyOnce,
            stop: savepoint.as_ref().is_some_and(|(_, s)| s.stop),
        };
        let checkpoint = self.next_id;
        self.next_id += 1;
        self.last_trigger = Some(now);
        self.pending.insert(
            checkpoint,
            Pending {
                triggered: now,
                timestamp_ms,
                savepoint,
                waiting: self.tasks.clone(),
                state: Vec::new(),
                max_alignment_ms: 0,
            },
        );
        CoordinatorAction::Trigger {
            checkpoint,
            timestamp_ms,
            options,
        }
    }

    /// A subtask acknowledged `checkpoint` with its state. When it was the last one, the
    /// checkpoint completes: its metadata is written and older checkpoints are cleaned up.
    pub fn acknowledge(
        &mut self,
        now: Instant,
        subtask: SubtaskId,
        checkpoint: CheckpointId,
        state: Vec<OperatorSubtaskState>,
        alignment_ms: u64,
    ) -> Vec<CoordinatorAction> {
        let Some(p) = self.pending.get_mut(&checkpoint) else {
            // Too late: the checkpoint was aborted (or never existed).
            self.delete_unreferenced(checkpoint, &state);
            return Vec::new();
        };
        if !p.waiting.remove(&subtask) {
            // Acknowledged twice: the files may be the first acknowledgement's, which the
            // pending checkpoint references; they go with it if it is aborted.
            warn!(job_id = %self.job, checkpoint, vertex = subtask.vertex, subtask = subtask.subtask, "duplicate acknowledgement ignored");
            return Vec::new();
        }
        p.state.extend(state);
        p.max_alignment_ms = p.max_alignment_ms.max(alignment_ms);
        if !p.waiting.is_empty() {
            return Vec::new();
        }
        let p = self.pending.remove(&checkpoint).expect("present above");
        let metadata = self.metadata(checkpoint, &p);
        if let Err(e) = self.storage.write_metadata(&metadata) {
            self.delete_unreferenced(checkpoint, &p.state);
            let reason = format!("cannot complete: {e}");
            let mut actions = self.failed(checkpoint, &reason);
            if let Some((request, savepoint)) = p.savepoint {
                actions.extend(savepoint_failed(request, &savepoint, checkpoint, &reason));
            }
            return actions;
        }
        let mut answer = None;
        if let Some((request, savepoint)) = &p.savepoint {
            // Copied before retention can delete the checkpoint it is copied from.
            match self.storage.export_savepoint(&metadata, &savepoint.target) {
                Err(e) => {
                    let reason = e.to_string();
                    return self.abort_removed(checkpoint, p, &reason);
                }
                Ok(url) => {
                    info!(job_id = %self.job, checkpoint, path = %url, stop = savepoint.stop, "savepoint complete");
                    if savepoint.stop {
                        // Answered once the job has ended (see `ended`).
                        self.stopping = Some((*request, url));
                        self.stopped = true;
                    } else {
                        answer = Some(CoordinatorAction::SavepointDone {
                            request: *request,
                            result: Ok(url),
                        });
                    }
                }
            }
        }
        let new_shared = self.shared.register(&metadata);
        // The checkpoint is complete once its metadata is written: failing to delete
        // subsumed ones leaves them behind (the next completion retries) but undoes nothing.
        if let Err(e) = self.retain() {
            warn!(job_id = %self.job, checkpoint, error = %e, "cannot delete subsumed checkpoints");
        }
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
        info!(job_id = %self.job, checkpoint, duration_ms = done.duration.as_millis() as u64, size = done.size, incremental_size = done.incremental_size, alignment_ms = done.max_alignment_ms, "checkpoint complete");
        self.completed.push(done);
        // Older pending checkpoints are subsumed: abort them.
        let older: Vec<_> = self
            .pending
            .range(..checkpoint)
            .map(|(id, _)| *id)
            .collect();
        let mut actions = Vec::new();
        for id in older {
            actions.extend(self.abort(id, "subsumed by a newer checkpoint"));
        }
        actions.push(CoordinatorAction::NotifyComplete { checkpoint });
        actions.extend(answer);
        actions
    }

    /// A subtask declined `checkpoint`: it is aborted.
    pub fn decline(
        &mut self,
        subtask: SubtaskId,
        checkpoint: CheckpointId,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        self.abort(
            checkpoint,
            &format!(
                "declined by subtask {} of vertex {}: {reason}",
                subtask.subtask, subtask.vertex
            ),
        )
    }

    /// The job ended (all its tasks, and so their uploads, are done): deletes every
    /// checkpoint that did not complete and keeps the retained completed ones.
    pub fn shutdown(&mut self) -> Result<(), StorageError> {
        self.stopped = true;
        for (id, p) in std::mem::take(&mut self.pending) {
            self.delete_unreferenced(id, &p.state);
        }
        self.queued.clear();
        let complete = self.storage.completed(self.job)?;
        for id in self.storage.checkpoints(self.job)? {
            if !complete.contains(&id) {
                self.storage.discard(self.job, id)?;
            }
        }
        self.retain()
    }

    fn abort(&mut self, checkpoint: CheckpointId, reason: &str) -> Vec<CoordinatorAction> {
        match self.pending.remove(&checkpoint) {
            Some(p) => self.abort_removed(checkpoint, p, reason),
            None => Vec::new(),
        }
    }

    /// Aborts `checkpoint`, already removed from the pending ones: deletes its files and
    /// answers its savepoint, or counts it as a failed checkpoint.
    fn abort_removed(
        &mut self,
        checkpoint: CheckpointId,
        p: Pending,
        reason: &str,
    ) -> Vec<CoordinatorAction> {
        if let Err(e) = self.storage.discard(self.job, checkpoint) {
            warn!(job_id = %self.job, checkpoint, error = %e, "cannot delete an aborted checkpoint");
        }
        self.delete_unreferenced(checkpoint, &p.state);
        match p.savepoint {
            // A failed savepoint is answered, and the job goes on.
            Some((request, savepoint)) => {
                warn!(job_id = %self.job, checkpoint, reason, "savepoint aborted");
                savepoint_failed(request, &savepoint, checkpoint, reason)
            }
            None => self.failed(checkpoint, reason),
        }
    }

    fn failed(&mut self, checkpoint: CheckpointId, reason: &str) -> Vec<CoordinatorAction> {
        self.failures_in_a_row += 1;
        warn!(job_id = %self.job, checkpoint, reason, failures_in_a_row = self.failures_in_a_row, "checkpoint aborted");
        if self.failures_in_a_row > self.config.tolerable_failures {
            vec![CoordinatorAction::FailJob {
                reason: format!(
                    "checkpoint {checkpoint} failed ({reason}); {} checkpoint failure(s) in a row exceed the {} tolerated (execution.checkpointing.tolerable-failed-checkpoints)",
                    self.failures_in_a_row, self.config.tolerable_failures
                ),
            }]
        } else {
            Vec::new()
        }
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
            op.subtasks.push(s.handle.clone());
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
            savepoint: p.savepoint.is_some(),
            operators,
        }
    }
}

/// The answer to savepoint `request`, whose checkpoint `checkpoint` failed for `reason`;
/// tasks waiting for a failed stop-with-savepoint resume.
fn savepoint_failed(
    request: u64,
    savepoint: &SavepointRequest,
    checkpoint: CheckpointId,
    reason: &str,
) -> Vec<CoordinatorAction> {
    let mut actions = vec![CoordinatorAction::SavepointDone {
        request,
        result: Err(format!("savepoint {checkpoint} failed: {reason}")),
    }];
    if savepoint.stop {
        actions.push(CoordinatorAction::NotifyAborted { checkpoint });
    }
    actions
}

fn is_fail(a: &CoordinatorAction) -> bool {
    matches!(a, CoordinatorAction::FailJob { .. })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: JobId = JobId(3);

    fn task(i: u16) -> SubtaskId {
        SubtaskId {
            job: JOB,
            vertex: 1,
            subtask: i,
        }
    }

    /// A coordinator whose run started long enough ago for the first checkpoint to be due.
    fn coordinator(config: CheckpointConfig) -> CheckpointCoordinator {
        let storage = CheckpointStorage::open("memory://").unwrap();
        let mut c = CheckpointCoordinator::new(JOB, "job", config, storage, [task(0), task(1)], 1);
        let started = Instant::now().checked_sub(Duration::from_secs(10)).unwrap();
        assert!(
            c.tick(started, 0).is_empty(),
            "nothing is due as the run starts"
        );
        c
    }

    fn config() -> CheckpointConfig {
        CheckpointConfig::new(Duration::from_millis(100), "memory://")
    }

    /// Uploads a state file for `subtask` and returns its acknowledgement payload.
    fn state(
        c: &CheckpointCoordinator,
        checkpoint: CheckpointId,
        i: u16,
    ) -> Vec<OperatorSubtaskState> {
        let handle = c
            .storage()
            .write_state(
                JOB,
                checkpoint,
                &format!("count-{i}"),
                i,
                (i * 64, i * 64 + 63),
                b"counts",
            )
            .unwrap();
        vec![OperatorSubtaskState {
            uid: "count".into(),
            parallelism: 2,
            max_parallelism: 128,
            handle,
        }]
    }

    fn triggered(actions: &[CoordinatorAction]) -> Option<CheckpointId> {
        actions.iter().find_map(|a| match a {
            CoordinatorAction::Trigger { checkpoint, .. } => Some(*checkpoint),
            _ => None,
        })
    }

    #[test]
    fn a_checkpoint_completes_when_every_task_acknowledged_and_its_metadata_lists_them() {
        let mut c = coordinator(config());
        let t0 = Instant::now();
        let id = triggered(&c.tick(t0, 1_000)).unwrap();
        assert_eq!(id, 1);
        let s0 = state(&c, id, 0);
        assert!(c.acknowledge(t0, task(0), id, s0, 3).is_empty());
        let s1 = state(&c, id, 1);
        let actions = c.acknowledge(t0 + Duration::from_millis(40), task(1), id, s1, 7);
        assert_eq!(
            actions,
            vec![CoordinatorAction::NotifyComplete { checkpoint: 1 }]
        );
        let m = c.storage().latest_usable(JOB).unwrap();
        assert_eq!(m.checkpoint, 1);
        assert_eq!(m.operators.len(), 1);
        assert_eq!(m.operators[0].subtasks.len(), 2);
        let done = &c.completed()[0];
        assert_eq!(
            (done.max_alignment_ms, done.duration),
            (7, Duration::from_millis(40))
        );
        assert!(done.size > 0);
    }

    /// Stores the shared files `files` (each `name` holds `name` as bytes) and a state file
    /// for `subtask` referencing them; returns its acknowledgement payload.
    fn shared_state(
        c: &CheckpointCoordinator,
        checkpoint: CheckpointId,
        i: u16,
        files: &[&str],
    ) -> Vec<OperatorSubtaskState> {
        let mut s = state(c, checkpoint, i);
        for name in files {
            let path = CheckpointStorage::shared_path(JOB, name);
            c.storage()
                .write_shared(&path, name.as_bytes().to_vec())
                .unwrap();
            s[0].handle
                .shared
                .push(weir_runtime::checkpoint::SharedStateFile {
                    local: format!("{name}.sst"),
                    path,
                    size: name.len() as u64,
                    checksum: crc32fast::hash(name.as_bytes()),
                });
        }
        s
    }

    fn stored(c: &CheckpointCoordinator, name: &str) -> bool {
        let path = CheckpointStorage::shared_path(JOB, name);
        let file = weir_runtime::checkpoint::SharedStateFile {
            local: String::new(),
            path,
            size: name.len() as u64,
            checksum: crc32fast::hash(name.as_bytes()),
        };
        c.storage().read_shared(&file).is_ok()
    }

    #[test]
    fn shared_files_are_deleted_exactly_when_the_last_retained_checkpoint_using_them_is_subsumed() {
        let mut cfg = config();
        cfg.retained = 2;
        let mut c = coordinator(cfg);
        let mut now = Instant::now();
        let mut run = |c: &mut CheckpointCoordinator, t0: &[&str], t1: &[&str]| {
            now += Duration::from_secs(1);
            let id = triggered(&c.tick(now, 0)).expect("due");
            let (s0, s1) = (shared_state(c, id, 0, t0), shared_state(c, id, 1, t1));
            c.acknowledge(now, task(0), id, s0, 0);
            let actions = c.acknowledge(now, task(1), id, s1, 0);
            assert!(actions.contains(&CoordinatorAction::NotifyComplete { checkpoint: id }));
            id
        };
        run(&mut c, &["aaaa", "bb"], &["xxxxxxxx"]);
        run(&mut c, &["aaaa", "ccc"], &["xxxxxxxx"]);
        let second = c.completed()[1].clone();
        assert_eq!(
            second.size - second.incremental_size,
            12,
            "aaaa and xxxxxxxx were stored by checkpoint 1"
        );
        let all = ["aaaa", "bb", "ccc", "ddddd", "xxxxxxxx", "yy"];
        let present = |c: &CheckpointCoordinator| -> Vec<&str> {
            all.iter().copied().filter(|f| stored(c, f)).collect()
        };
        assert_eq!(present(&c), ["aaaa", "bb", "ccc", "xxxxxxxx"]);
        // Checkpoint 1 is subsumed: only bb was used by it alone.
        run(&mut c, &["ccc", "ddddd"], &["yy"]);
        assert_eq!(present(&c), ["aaaa", "ccc", "ddddd", "xxxxxxxx", "yy"]);
        // Checkpoint 2 is subsumed: aaaa and xxxxxxxx go, ccc stays for checkpoint 3.
        run(&mut c, &["ddddd"], &["yy"]);
        assert_eq!(present(&c), ["ccc", "ddddd", "yy"]);
        assert_eq!(c.shared_state().checkpoints().collect::<Vec<_>>(), [3, 4]);

        // An aborted checkpoint's new file is deleted; the retained ones' files stay.
        now += Duration::from_secs(1);
        let id = triggered(&c.tick(now, 0)).unwrap();
        let s0 = shared_state(&c, id, 0, &["ddddd", "eeeeee"]);
        c.acknowledge(now, task(0), id, s0, 0);
        assert!(stored(&c, "eeeeee"));
        c.decline(task(1), id, "test");
        assert!(!stored(&c, "eeeeee"));
        // So is one a late acknowledgement of the aborted checkpoint brings.
        let late = shared_state(&c, id, 1, &["ffff", "yy"]);
        assert!(c.acknowledge(now, task(1), id, late, 0).is_empty());
        assert_eq!(present(&c), ["ccc", "ddddd", "yy"]);
        assert!(!stored(&c, "ffff"));

        // The job ends: the retained checkpoints keep their files.
        c.shutdown().unwrap();
        assert_eq!(present(&c), ["ccc", "ddddd", "yy"]);
    }

    #[test]
    fn checkpoints_go_on_without_finished_subtasks_until_a_whole_source_finished() {
        let storage = CheckpointStorage::open("memory://").unwrap();
        let (s0, s1, sink) = (
            task(0),
            task(1),
            SubtaskId {
                vertex: 2,
                ..task(0)
            },
        );
        let mut c = CheckpointCoordinator::new(JOB, "job", config(), storage, [s0, s1, sink], 1)
            .with_sources([s0, s1]);
        let t0 = Instant::now();
        c.tick(t0, 0);
        let mut now = t0 + Duration::from_secs(1);
        let id = triggered(&c.tick(now, 0)).unwrap();
        c.acknowledge(now, s0, id, Vec::new(), 0);
        c.acknowledge(now, sink, id, Vec::new(), 0);
        // Source subtask 1 finishes before the barrier reached it: the checkpoint completes.
        let actions = c.task_finished(now, s1);
        assert_eq!(
            actions,
            vec![CoordinatorAction::NotifyComplete { checkpoint: id }]
        );
        // The next checkpoint waits for the running subtasks only.
        now += Duration::from_secs(1);
        let next = triggered(&c.tick(now, 0)).unwrap();
        c.acknowledge(now, s0, next, Vec::new(), 0);
        let actions = c.acknowledge(now, sink, next, Vec::new(), 0);
        assert!(actions.contains(&CoordinatorAction::NotifyComplete { checkpoint: next }));
        // The last subtask of the source finishing ends checkpointing.
        now += Duration::from_secs(1);
        let last = triggered(&c.tick(now, 0)).unwrap();
        c.task_finished(now, s0);
        assert!(c.pending().is_empty(), "checkpoint {last} dropped");
        assert_eq!(triggered(&c.tick(now + Duration::from_secs(9), 0)), None);
        // A restarted job checkpoints with every subtask again.
        c.resume();
        c.tick(now, 0);
        now += Duration::from_secs(10);
        let again = triggered(&c.tick(now, 0)).unwrap();
        c.acknowledge(now, s0, again, Vec::new(), 0);
        assert!(c.acknowledge(now, sink, again, Vec::new(), 0).is_empty());
        assert_eq!(c.pending(), [again], "waits for source subtask 1 again");
    }

    #[test]
    fn triggers_follow_the_interval_the_minimum_pause_and_the_concurrency_limit() {
        let mut cfg = config();
        cfg.min_pause = Duration::from_millis(300);
        let mut c = coordinator(cfg);
        let t0 = Instant::now();
        assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
        // One pending already (max 1), and the interval has not passed.
        assert_eq!(triggered(&c.tick(t0 + Duration::from_millis(50), 0)), None);
        assert_eq!(triggered(&c.tick(t0 + Duration::from_millis(150), 0)), None);
        let done_at = t0 + Duration::from_millis(200);
        let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
        c.acknowledge(done_at, task(0), 1, s0, 0);
        c.acknowledge(done_at, task(1), 1, s1, 0);
        // The interval passed, but the minimum pause after completion did not.
        assert_eq!(
            triggered(&c.tick(done_at + Duration::from_millis(200), 0)),
            None
        );
        assert_eq!(
            triggered(&c.tick(done_at + Duration::from_millis(300), 0)),
            Some(2)
        );
    }

    #[test]
    fn a_timed_out_checkpoint_is_aborted_its_files_deleted_and_the_job_fails_past_the_tolerance() {
        let mut cfg = config();
        cfg.timeout = Duration::from_millis(500);
        cfg.tolerable_failures = 1;
        let mut c = coordinator(cfg);
        let t0 = Instant::now();
        c.tick(t0, 0);
        let s0 = state(&c, 1, 0);
        c.acknowledge(t0, task(0), 1, s0, 0);
        // Checkpoint 1 times out (first failure, tolerated); checkpoint 2 is triggered.
        let actions = c.tick(t0 + Duration::from_millis(500), 0);
        assert_eq!(triggered(&actions), Some(2));
        assert!(!actions.iter().any(is_fail));
        assert!(c.storage().completed(JOB).unwrap().is_empty());
        // A late acknowledgement of the aborted checkpoint changes nothing.
        assert!(c.acknowledge(t0, task(1), 1, Vec::new(), 0).is_empty());
        // Checkpoint 2 is declined: a second failure in a row fails the job.
        let actions = c.decline(task(1), 2, "source not running");
        match &actions[..] {
            [CoordinatorAction::FailJob { reason }] => {
                assert!(
                    reason.contains("declined by subtask 1") && reason.contains("tolerable"),
                    "{reason}"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn only_the_retained_checkpoints_remain_after_fifty_and_shutdown_removes_pending_ones() {
        let mut cfg = config();
        cfg.retained = 2;
        let mut c = coordinator(cfg);
        let mut now = Instant::now();
        for _ in 0..50 {
            now += Duration::from_millis(100);
            let id = triggered(&c.tick(now, 0)).unwrap();
            let (s0, s1) = (state(&c, id, 0), state(&c, id, 1));
            c.acknowledge(now, task(0), id, s0, 0);
            c.acknowledge(now, task(1), id, s1, 0);
        }
        assert_eq!(c.storage().completed(JOB).unwrap(), vec![49, 50]);
        now += Duration::from_millis(100);
        let id = triggered(&c.tick(now, 0)).unwrap();
        let s0 = state(&c, id, 0);
        c.acknowledge(now, task(0), id, s0, 0);
        c.shutdown().unwrap();
        assert_eq!(c.storage().checkpoints(JOB).unwrap(), vec![49, 50]);
    }

    #[test]
    fn a_savepoint_waits_for_the_pending_checkpoint_and_a_failed_one_is_answered_not_counted() {
        let mut c = coordinator(config());
        let t0 = Instant::now();
        assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
        let request = c
            .request_savepoint(SavepointRequest {
                target: "memory://".into(),
                stop: false,
            })
            .unwrap();
        // Checkpoint 1 is pending: neither the savepoint nor a periodic checkpoint starts.
        assert_eq!(triggered(&c.tick(t0 + Duration::from_millis(250), 0)), None);
        let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
        c.acknowledge(t0, task(0), 1, s0, 0);
        c.acknowledge(t0, task(1), 1, s1, 0);
        let actions = c.tick(t0 + Duration::from_millis(260), 0);
        match &actions[..] {
            [CoordinatorAction::Trigger {
                checkpoint: 2,
                options,
                ..
            }] => {
                assert!(options.savepoint && options.aligned && !options.stop)
            }
            other => panic!("unexpected {other:?}"),
        }
        let (s0, s1) = (state(&c, 2, 0), state(&c, 2, 1));
        c.acknowledge(t0, task(0), 2, s0, 0);
        let actions = c.acknowledge(t0, task(1), 2, s1, 0);
        let answer = actions.iter().find_map(|a| match a {
            CoordinatorAction::SavepointDone { request: r, result } if *r == request => {
                Some(result.clone())
            }
            _ => None,
        });
        let url = answer.expect("the request is answered").unwrap();
        assert!(
            url.starts_with("memory://") && url.ends_with(&format!("savepoint-{JOB}-2")),
            "{url}"
        );

        // A declined stop-with-savepoint is answered with the reason, tells the tasks to
        // resume, and does not fail the job (no failure is tolerated by this config).
        let request = c
            .request_savepoint(SavepointRequest {
                target: "memory://".into(),
                stop: true,
            })
            .unwrap();
        assert_eq!(
            triggered(&c.tick(t0 + Duration::from_millis(270), 0)),
            Some(3)
        );
        let actions = c.decline(task(0), 3, "source not running");
        assert!(!actions.iter().any(is_fail), "{actions:?}");
        assert!(actions.contains(&CoordinatorAction::NotifyAborted { checkpoint: 3 }));
        assert!(actions.iter().any(|a| matches!(a,
            CoordinatorAction::SavepointDone { request: r, result: Err(e) }
                if *r == request && e.contains("source not running"))));
    }

    fn answer(actions: &[CoordinatorAction], request: u64) -> Option<Result<String, String>> {
        actions.iter().find_map(|a| match a {
            CoordinatorAction::SavepointDone { request: r, result } if *r == request => {
                Some(result.clone())
            }
            _ => None,
        })
    }

    fn stop_request(c: &mut CheckpointCoordinator) -> u64 {
        c.request_savepoint(SavepointRequest {
            target: "memory://".into(),
            stop: true,
        })
        .unwrap()
    }

    #[test]
    fn a_stop_savepoint_dropped_because_a_task_finished_is_answered_and_resumes_the_tasks() {
        let mut c = coordinator(config());
        let t0 = Instant::now();
        let request = stop_request(&mut c);
        assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
        let s0 = state(&c, 1, 0);
        assert!(c.acknowledge(t0, task(0), 1, s0, 0).is_empty());
        let actions = c.task_finished(Instant::now(), task(0));
        assert!(actions.contains(&CoordinatorAction::NotifyAborted { checkpoint: 1 }));
        let answer = answer(&actions, request).expect("answered").unwrap_err();
        assert!(answer.contains("a task of the job finished"), "{answer}");
        assert!(c.pending().is_empty());
    }

    #[test]
    fn a_completed_stop_savepoint_is_answered_when_the_job_ends_and_a_failure_while_stopping_resumes_checkpoints(
    ) {
        let mut c = coordinator(config());
        let t0 = Instant::now();
        let request = stop_request(&mut c);
        assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
        let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
        c.acknowledge(t0, task(0), 1, s0, 0);
        let actions = c.acknowledge(t0, task(1), 1, s1, 0);
        assert_eq!(
            actions,
            vec![CoordinatorAction::NotifyComplete { checkpoint: 1 }],
            "the stop is answered once the job has ended"
        );
        assert!(stop_request_refused(&mut c));
        assert!(c.tick(t0 + Duration::from_secs(1), 0).is_empty());
        // A sink's commit fails: the job restarts and the stop is answered as failed,
        // naming the savepoint, which stays usable.
        let actions = c.pause("commit failed");
        let err = answer(&actions, request).expect("answered").unwrap_err();
        assert!(
            err.contains(&format!("savepoint-{JOB}-1")) && err.contains("commit failed"),
            "{err}"
        );
        assert!(c.storage().completed(JOB).unwrap().contains(&1));
        c.resume();
        // The restarted job can be stopped again, and this time it finishes.
        let request = stop_request(&mut c);
        assert_eq!(triggered(&c.tick(t0 + Duration::from_secs(2), 0)), Some(2));
        let (s0, s1) = (state(&c, 2, 0), state(&c, 2, 1));
        c.acknowledge(t0, task(0), 2, s0, 0);
        c.acknowledge(t0, task(1), 2, s1, 0);
        assert!(
            c.task_finished(Instant::now(), task(0)).is_empty(),
            "tasks end one by one"
        );
        let url = answer(&c.ended(None), request).expect("answered").unwrap();
        assert!(url.ends_with(&format!("savepoint-{JOB}-2")), "{url}");
        assert!(c.ended(None).is_empty(), "answered once");
    }

    fn stop_request_refused(c: &mut CheckpointCoordinator) -> bool {
        c.request_savepoint(SavepointRequest {
            target: "memory://".into(),
            stop: false,
        })
        .is_err()
    }

    #[test]
    fn a_savepoint_request_withdrawn_before_its_trigger_is_never_triggered() {
        let mut c = coordinator(config());
        let t0 = Instant::now();
        assert_eq!(triggered(&c.tick(t0, 0)), Some(1));
        let request = stop_request(&mut c);
        assert!(c.withdraw(request));
        assert!(!c.withdraw(request), "withdrawn once");
        let (s0, s1) = (state(&c, 1, 0), state(&c, 1, 1));
        c.acknowledge(t0, task(0), 1, s0, 0);
        c.acknowledge(t0, task(1), 1, s1, 0);
        match &c.tick(t0 + Duration::from_secs(1), 0)[..] {
            [CoordinatorAction::Trigger { options, .. }] => {
                assert!(
                    !options.savepoint,
                    "a periodic checkpoint, not the savepoint"
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
