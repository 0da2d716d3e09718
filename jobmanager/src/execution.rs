//! The execution state of one job: a pure state machine over its subtasks' states.
//!
//! Invariants: a subtask's state only moves forward (never out of a terminal state); the
//! first failure is the job's failure cause and every other subtask is then cancelled; the
//! job ends when every subtask is terminal.

use std::collections::HashMap;
use weir_runtime::control::ExecutionState;
use weir_runtime::SubtaskId;

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
        /// The first failure, if any.
        failure: Option<String>,
    },
}

/// Tracks all subtasks of one job.
#[derive(Debug)]
pub struct JobExecution {
    states: HashMap<SubtaskId, ExecutionState>,
    names: HashMap<SubtaskId, String>,
    failure: Option<String>,
    /// Whether `failure` is a broken channel (a later real failure replaces it).
    failure_is_channel: bool,
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
            failure_is_channel: false,
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

    /// Returns the number of subtasks in `state`.
    pub fn count(&self, state: ExecutionState) -> usize {
        self.states.values().filter(|s| **s == state).count()
    }

    /// Returns whether every subtask is in a terminal state.
    pub fn all_terminal(&self) -> bool {
        self.states.values().all(|s| s.is_terminal())
    }

    /// Returns the first failure.
    pub fn failure(&self) -> Option<&str> {
        self.failure.as_deref()
    }

    /// Fails the job for a reason outside its tasks (its checkpoints kept failing): the
    /// reason becomes the job's failure unless one is recorded already.
    pub fn fail(&mut self, reason: String) -> Decision {
        self.cancelling = true;
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
        Decision::CancelAll
    }

    /// Marks the job as being cancelled on request.
    pub fn cancel(&mut self) -> Decision {
        self.cancelling = true;
        if self.failure.is_none() {
            self.failure = Some("job was cancelled".into());
        }
        Decision::CancelAll
    }

    /// Applies a subtask state change and decides what follows.
    pub fn update(
        &mut self,
        subtask: SubtaskId,
        state: ExecutionState,
        error: Option<String>,
    ) -> Decision {
        self.update_with_cause(subtask, state, error, false)
    }

    /// Applies a subtask state change; `channel_failure` marks a failure that is a broken
    /// channel. The job's failure is the first one, except that a broken channel gives way
    /// to a later failure of another kind: a consumer often notices its producer's failure
    /// (its channel breaks) before the producer's own report arrives.
    pub fn update_with_cause(
        &mut self,
        subtask: SubtaskId,
        state: ExecutionState,
        error: Option<String>,
        channel_failure: bool,
    ) -> Decision {
        let Some(current) = self.states.get_mut(&subtask) else {
            return Decision::Continue;
        };
        if current.is_terminal() {
            return Decision::Continue;
        }
        *current = state;
        let mut decision = Decision::Continue;
        let root_cause = self.failure.is_none() || (self.failure_is_channel && !channel_failure);
        if state == ExecutionState::Failed && root_cause {
            let name = self.names.get(&subtask).cloned().unwrap_or_default();
            let cause = error.unwrap_or_else(|| "unknown error".into());
            self.failure = Some(format!(
                "task '{name}' (subtask {}) failed: {cause}",
                subtask.subtask
            ));
            self.failure_is_channel = channel_failure;
            // A replaced root cause changes the message only: the job is cancelling already.
            if !self.cancelling {
                self.cancelling = true;
                decision = Decision::CancelAll;
            }
        }
        if self.states.values().all(|s| s.is_terminal()) {
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
        let d = j.update(st(1), ExecutionState::Failed, Some("boom".into()));
        assert_eq!(d, Decision::CancelAll);
        let d = j.update(st(0), ExecutionState::Failed, Some("consumer gone".into()));
        assert_eq!(
            d,
            Decision::Ended {
                failure: Some("task 'map' (subtask 1) failed: boom".into())
            }
        );
    }

    #[test]
    fn terminal_states_are_final() {
        let mut j = JobExecution::new([(st(0), "a".into()), (st(1), "a".into())]);
        j.update(st(0), ExecutionState::Finished, None);
        j.update(st(0), ExecutionState::Failed, Some("late".into()));
        assert_eq!(j.failure(), None);
    }

    #[test]
    fn a_broken_channel_gives_way_to_the_failure_that_caused_it() {
        let mut e = JobExecution::new([(st(0), "source".into()), (st(1), "sink".into())]);
        e.update(st(0), ExecutionState::Running, None);
        e.update(st(1), ExecutionState::Running, None);
        let d = e.update_with_cause(
            st(1),
            ExecutionState::Failed,
            Some("data connection broke".into()),
            true,
        );
        assert_eq!(d, Decision::CancelAll);
        let d = e.update_with_cause(
            st(0),
            ExecutionState::Failed,
            Some("bad row at line 3".into()),
            false,
        );
        match d {
            Decision::Ended { failure } => {
                assert!(failure.unwrap().contains("line 3"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_second_real_failure_does_not_replace_the_first() {
        let mut e = JobExecution::new([(st(0), "a".into()), (st(1), "b".into())]);
        e.update(st(0), ExecutionState::Running, None);
        e.update(st(1), ExecutionState::Running, None);
        e.update_with_cause(st(0), ExecutionState::Failed, Some("first".into()), false);
        let d = e.update_with_cause(st(1), ExecutionState::Failed, Some("second".into()), false);
        assert_eq!(
            d,
            Decision::Ended {
                failure: Some("task 'a' (subtask 0) failed: first".into())
            }
        );
    }
}
