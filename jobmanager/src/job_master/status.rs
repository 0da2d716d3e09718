//! A job's status as one typed state machine, and the snapshot of it that the dispatcher,
//! the CLI and the REST API read.
//!
//! ```text
//! Created -> Scheduling -> Deploying -> Running -> Finished
//!    |           ^             |    \      |
//!    |           |             v     \     v
//!    |           +-------- Restarting <----+          any non-terminal state
//!    +------------------------------------------->   -> Failed | Cancelled
//! ```
//!
//! Invariants: every change of status goes through [`transition`], whose one `match` lists
//! the legal moves; a terminal status never changes; the published [`JobSnapshot`] is
//! replaced only by the job's JobMaster, after each event it handled.

use crate::checkpoint_coordinator::history::CheckpointHistory;
use crate::CompletedCheckpoint;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use weir_runtime::control::{ExecutionState, TaskManagerId};
use weir_runtime::rpc::messages::JobStatus;
use weir_runtime::{FailureCause, SubtaskId};

/// How many failures a job's exception history keeps (Flink's
/// `web.exception-history-size`).
pub const EXCEPTION_HISTORY_SIZE: usize = 16;

/// One subtask of the current run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubtaskStatus {
    /// Which.
    pub subtask: SubtaskId,
    /// Where it is.
    pub state: ExecutionState,
    /// The TaskManager it is deployed on.
    pub taskmanager: TaskManagerId,
}

/// One failure of a run (or of the job) in the exception history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExceptionEntry {
    /// When the JobMaster learned it (milliseconds since the epoch).
    pub timestamp_ms: i64,
    /// The root cause.
    pub cause: FailureCause,
    /// The run that failed.
    pub attempt: u32,
}

/// A move the state machine does not allow (a bug in the JobMaster, logged and ignored).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("illegal job status transition {from:?} -> {to:?}")]
pub struct IllegalTransition {
    /// The status the job had.
    pub from: JobStatus,
    /// The status asked for.
    pub to: JobStatus,
}

/// Returns `to` if a job in status `from` may move there.
pub fn transition(from: JobStatus, to: JobStatus) -> Result<JobStatus, IllegalTransition> {
    use JobStatus::*;
    let legal = match (from, to) {
        (Created, Scheduling | Deploying) => true,
        (Scheduling, Deploying) => true,
        (Deploying, Running) => true,
        // Every subtask may finish before the last one reported running.
        (Deploying | Running, Finished) => true,
        (Deploying | Running, Restarting) => true,
        // A failed placement of a restart is one more failed run.
        (Restarting, Scheduling | Deploying | Restarting) => true,
        (Scheduling, Restarting) => true,
        (Created | Scheduling | Deploying | Running | Restarting, Failed | Cancelled) => true,
        _ => false,
    };
    if legal {
        Ok(to)
    } else {
        Err(IllegalTransition { from, to })
    }
}

/// What the JobMaster of one job publishes about it.
#[derive(Clone, Debug)]
pub struct JobSnapshot {
    /// The job's name.
    pub name: String,
    /// Where it is.
    pub status: JobStatus,
    /// Why it waits, restarts or failed.
    pub message: Option<String>,
    /// Restarts after failures so far (the current run's number).
    pub attempt: u32,
    /// The checkpoints that completed so far, oldest first.
    pub checkpoints: Vec<CompletedCheckpoint>,
    /// The root cause of the current run's failure, or of the job's.
    pub failure: Option<FailureCause>,
    /// The root causes of the latest failed runs, oldest first (at most
    /// [`EXCEPTION_HISTORY_SIZE`]).
    pub exceptions: Vec<ExceptionEntry>,
    /// How many failures the exception history saw (older ones were dropped).
    pub exception_count: u64,
    /// Checkpoint counts and the latest checkpoints, failed ones included; kept after the
    /// job ended.
    pub history: CheckpointHistory,
    /// The subtasks of the current (or last) run.
    pub subtasks: Vec<SubtaskStatus>,
    /// When the current (or last) run was deployed (milliseconds since the epoch).
    pub run_started_ms: Option<i64>,
    /// When it was submitted (milliseconds since the epoch).
    pub submitted_ms: i64,
    /// When it ended, if it did.
    pub ended_ms: Option<i64>,
}

impl JobSnapshot {
    /// The snapshot of a job just accepted.
    pub fn created(name: &str) -> Self {
        Self {
            name: name.to_string(),
            status: JobStatus::Created,
            message: None,
            attempt: 0,
            checkpoints: Vec::new(),
            failure: None,
            exceptions: Vec::new(),
            exception_count: 0,
            history: CheckpointHistory::default(),
            subtasks: Vec::new(),
            run_started_ms: None,
            submitted_ms: weir_runtime::now_ms(),
            ended_ms: None,
        }
    }
}

/// The latest snapshot of one job, shared between its JobMaster (the only writer) and
/// readers, who may wait for its end.
pub(crate) struct Published {
    snapshot: Mutex<JobSnapshot>,
    changed: Condvar,
}

impl Published {
    pub(crate) fn new(snapshot: JobSnapshot) -> Self {
        Self {
            snapshot: Mutex::new(snapshot),
            changed: Condvar::new(),
        }
    }

    /// Returns the latest snapshot.
    pub(crate) fn get(&self) -> JobSnapshot {
        self.lock().clone()
    }

    /// Returns the latest status.
    pub(crate) fn status(&self) -> JobStatus {
        self.lock().status
    }

    /// Changes the snapshot with `f` and wakes the waiters.
    pub(crate) fn update(&self, f: impl FnOnce(&mut JobSnapshot)) {
        f(&mut self.lock());
        self.changed.notify_all();
    }

    /// Waits up to `timeout` for the job to end; returns the latest snapshot either way.
    pub(crate) fn wait_terminal(&self, timeout: Duration) -> JobSnapshot {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            let now = Instant::now();
            if s.status.is_terminal() || now >= deadline {
                return s.clone();
            }
            s = self
                .changed
                .wait_timeout(s, deadline - now)
                .expect("job snapshot poisoned")
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JobSnapshot> {
        self.snapshot.lock().expect("job snapshot poisoned")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn a_job_moves_through_scheduling_deploying_and_running_to_its_end() {
        let path = [
            Created, Scheduling, Deploying, Running, Restarting, Deploying,
        ];
        for w in path.windows(2) {
            assert_eq!(transition(w[0], w[1]), Ok(w[1]));
        }
        assert_eq!(transition(Running, Finished), Ok(Finished));
        assert_eq!(transition(Restarting, Cancelled), Ok(Cancelled));
        assert_eq!(transition(Scheduling, Failed), Ok(Failed));
    }

    #[test]
    fn a_terminal_status_never_changes_and_no_step_is_skipped() {
        for end in [Finished, Failed, Cancelled] {
            for to in [Created, Scheduling, Deploying, Running, Restarting, Failed] {
                assert!(transition(end, to).is_err(), "{end:?} -> {to:?}");
            }
        }
        assert!(transition(Created, Running).is_err());
        assert!(transition(Scheduling, Running).is_err());
        assert!(transition(Restarting, Finished).is_err());
    }

    #[test]
    fn a_waiter_sees_the_end_published_by_another_thread() {
        let p = std::sync::Arc::new(Published::new(JobSnapshot::created("j")));
        let q = p.clone();
        let t = std::thread::spawn(move || q.wait_terminal(Duration::from_secs(30)));
        p.update(|s| s.status = Finished);
        assert_eq!(t.join().unwrap().status, Finished);
    }
}
