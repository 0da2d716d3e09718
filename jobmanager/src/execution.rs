//! The execution state of one job run: a pure state machine over its subtasks' states.
//!
//! Invariants: a subtask's state only moves forward (never out of a terminal state); the
//! first failure is the run's root cause, except that a failure whose kind is a consequence
//! (a broken channel) gives way to a later failure of another kind; every other subtask is
//! cancelled after the first failure; the run ends when every subtask is terminal.

use std::collections::HashMap;
use weir_runtime::control::ExecutionState;
use weir_runtime::{FailureCause, FailureKind, SubtaskId};

/// What the job master must do after a state change.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing.
    Continue,
    /// A subtask failed: cancel the others.
    CancelAll,
    /// Every subtask finished.
    Finished,
    /// Every subtask is terminal after a failure or a cancellation.
    Ended {
        /// The root cause, if any.
        failure: Option<FailureCause>,
    },
}

/// Tracks all subtasks of one job run.
#[derive(Debug)]
pub struct JobExecution {
    states: HashMap<SubtaskId, ExecutionState>,
    names: HashMap<SubtaskId, String>,
    failure: Option<FailureCause>,
    cancelling: bool,
}

impl JobExecution {
    /// Creates the execution with every subtask deploying.
    pub fn new(subtasks: impl IntoIterator<Item = (SubtaskId, String)>) -> Self {
        let mut states = HashMap::new();
        let mut names = HashMap::new();
        for (s, n) in subtasks {
            states.insert(s, ExecutionState::Deploying);
            names.insert(s, n);
        }
        Self {
            states,
            names,
            failure: None,
            cancelling: false,
        }
    }

    /// Returns whether every subtask runs or has finished, and at least one runs
    /// (checkpoints can be triggered; the coordinator decides whether finished subtasks
    /// allow it).
    pub fn can_checkpoint(&self) -> bool {
        self.states
            .values()
            .all(|s| matches!(s, ExecutionState::Running | ExecutionState::Finished))
            && self.states.values().any(|s| *s == ExecutionState::Running)
    }

    /// Returns the state of `subtask`, if it belongs to the run.
    pub fn state(&self, subtask: SubtaskId) -> Option<ExecutionState> {
        self.states.get(&subtask).copied()
    }

    /// Returns the number of subtasks in `state`.
    pub fn count(&self, state: ExecutionState) -> usize {
        self.states.values().filter(|s| **s == state).count()
    }

    /// Returns whether every subtask is in a terminal state.
    pub fn all_terminal(&self) -> bool {
        self.states.values().all(|s| s.is_terminal())
    }

    /// Returns the root cause so far.
    pub fn failure(&self) -> Option<&FailureCause> {
        self.failure.as_ref()
    }

    /// Fails the run for a cause outside its tasks (its checkpoints kept failing, it was
    /// cancelled): the cause becomes the run's root cause unless one is recorded already.
    pub fn fail(&mut self, cause: FailureCause) -> Decision {
        self.cancelling = true;
        if self.failure.is_none() {
            self.failure = Some(cause);
        }
        Decision::CancelAll
    }

    /// Marks the run as being cancelled on request: the cancellation becomes the root cause,
    /// even over a failure that came first (the job ends cancelled, and is not restarted).
    pub fn cancel(&mut self) -> Decision {
        self.cancelling = true;
        self.failure = Some(FailureCause::job(
            FailureKind::Cancelled,
            "job was cancelled",
        ));
        Decision::CancelAll
    }

    /// Applies a subtask state change and decides what follows. A task's failure becomes
    /// the root cause when none is known, or when the known one is a consequence (a broken
    /// channel) and this one is not: a consumer often notices its producer's failure (its
    /// channel breaks) before the producer's own report arrives.
    pub fn update(
        &mut self,
        subtask: SubtaskId,
        state: ExecutionState,
        failure: Option<FailureCause>,
    ) -> Decision {
        let Some(current) = self.states.get_mut(&subtask) else {
            return Decision::Continue;
        };
        if current.is_terminal() {
            return Decision::Continue;
        }
        *current = state;
        let mut decision = Decision::Continue;
        if state == ExecutionState::Failed {
            let name = self.names.get(&subtask).map_or("", String::as_str);
            let cause = failure
                .unwrap_or_else(|| FailureCause::job(FailureKind::Io, "unknown error"))
                .in_task(name, subtask.subtask);
            let root = match &self.failure {
                None => true,
                Some(known) => known.kind.is_consequence() && !cause.kind.is_consequence(),
            };
            if root {
                self.failure = Some(cause);
                // A replaced root cause changes the message only: the run is cancelling
                // already.
                if !self.cancelling {
                    self.cancelling = true;
                    decision = Decision::CancelAll;
                }
            }
        }
        if self.all_terminal() {
            let all_finished = self.states.values().all(|s| *s == ExecutionState::Finished);
            return if all_finished && self.failure.is_none() {
                Decision::Finished
            } else {
                Decision::Ended {
                    failure: self.failure.clone(),
                }
            };
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::JobId;

    fn failed(kind: FailureKind, message: &str) -> Option<FailureCause> {
        Some(FailureCause::job(kind, message))
    }

    fn st(i: u16) -> SubtaskId {
        SubtaskId {
            job: JobId(1),
            vertex: 0,
            subtask: i,
        }
    }

    #[test]
    fn job_finishes_when_every_subtask_finished() {
        let mut j = JobExecution::new([(st(0), "a".into()), (st(1), "a".into())]);
        assert_eq!(
            j.update(st(0), ExecutionState::Running, None),
            Decision::Continue
        );
        assert_eq!(
            j.update(st(0), ExecutionState::Finished, None),
            Decision::Continue
        );
        assert_eq!(
            j.update(st(1), ExecutionState::Finished, None),
            Decision::Finished
        );
    }

    #[test]
    fn first_failure_cancels_the_rest_and_is_the_cause() {
        let mut j = JobExecution::new([(st(0), "map".into()), (st(1), "map".into())]);
        let d = j.update(
            st(1),
            ExecutionState::Failed,
            failed(FailureKind::UserCode, "boom"),
        );
        assert_eq!(d, Decision::CancelAll);
        let d = j.update(
            st(0),
            ExecutionState::Failed,
            failed(FailureKind::Io, "consumer gone"),
        );
        let Decision::Ended { failure: Some(f) } = d else {
            panic!("unexpected {d:?}");
        };
        assert_eq!(f.to_string(), "task 'map' (subtask 1) failed: boom");
        assert_eq!(f.kind, FailureKind::UserCode);
    }

    #[test]
    fn terminal_states_are_final() {
        let mut j = JobExecution::new([(st(0), "a".into()), (st(1), "a".into())]);
        j.update(st(0), ExecutionState::Finished, None);
        j.update(
            st(0),
            ExecutionState::Failed,
            failed(FailureKind::Io, "late"),
        );
        assert_eq!(j.failure(), None);
    }

    #[test]
    fn a_broken_channel_gives_way_to_the_failure_that_caused_it() {
        let mut e = JobExecution::new([(st(0), "source".into()), (st(1), "sink".into())]);
        e.update(st(0), ExecutionState::Running, None);
        e.update(st(1), ExecutionState::Running, None);
        let broke = failed(FailureKind::BrokenChannel, "data connection broke");
        let d = e.update(st(1), ExecutionState::Failed, broke);
        assert_eq!(d, Decision::CancelAll);
        let row = failed(FailureKind::Io, "bad row at line 3");
        let d = e.update(st(0), ExecutionState::Failed, row);
        let Decision::Ended { failure: Some(f) } = d else {
            panic!("unexpected {d:?}");
        };
        assert!(f.message.contains("line 3"), "{f}");
        assert_eq!(f.operator.as_deref(), Some("source"));
    }

    #[test]
    fn a_second_real_failure_does_not_replace_the_first() {
        let mut e = JobExecution::new([(st(0), "a".into()), (st(1), "b".into())]);
        e.update(st(0), ExecutionState::Running, None);
        e.update(st(1), ExecutionState::Running, None);
        e.update(
            st(0),
            ExecutionState::Failed,
            failed(FailureKind::UserCode, "first"),
        );
        let d = e.update(
            st(1),
            ExecutionState::Failed,
            failed(FailureKind::Io, "second"),
        );
        let Decision::Ended { failure: Some(f) } = d else {
            panic!("unexpected {d:?}");
        };
        assert_eq!(f.to_string(), "task 'a' (subtask 0) failed: first");
    }

    #[test]
    fn a_cancellation_is_the_root_cause_even_after_a_failure() {
        let mut e = JobExecution::new([(st(0), "a".into()), (st(1), "b".into())]);
        e.update(
            st(0),
            ExecutionState::Failed,
            failed(FailureKind::UserCode, "boom"),
        );
        e.cancel();
        let d = e.update(st(1), ExecutionState::Cancelled, None);
        let Decision::Ended { failure: Some(f) } = d else {
            panic!("unexpected {d:?}");
        };
        assert_eq!(f.kind, FailureKind::Cancelled);
    }
}
