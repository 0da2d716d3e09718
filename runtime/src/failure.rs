//! Why a task or a job failed, as one typed value that travels from the task that failed to
//! the JobManager and drives its decisions.
//!
//! Invariants: every failed task reports exactly one [`FailureCause`]; its [`FailureKind`]
//! alone decides whether the failure can be the job's root cause while another is known
//! ([`FailureKind::is_consequence`]) and whether restarting can heal it
//! ([`FailureKind::is_restartable`]). Messages name the operator and subtask, so a failure
//! reads without logs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The class of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailureKind {
    /// User code returned an error or panicked.
    UserCode,
    /// Reading or writing outside the task failed: a file, a socket, checkpoint storage.
    Io,
    /// The TaskManager (or job worker) running the task was lost.
    LostTaskManager,
    /// An input or output channel broke: often the consequence of another task's failure.
    BrokenChannel,
    /// Checkpoints failed more often than the job tolerates.
    Checkpoint,
    /// The job was cancelled.
    Cancelled,
    /// The job's configuration or graph cannot run: the same error recurs on every run.
    Configuration,
    /// The state the job restores (a checkpoint or savepoint, or what it refers to outside
    /// Weir, such as a file sink's pending parts) is unusable: the same error recurs on
    /// every run.
    RestoredState,
}

impl FailureKind {
    /// Returns whether a restart can heal a failure of this kind. Configuration and
    /// restored-state errors are deterministic (every run would fail the same way), and a
    /// cancellation is final: the job ends at once, naming the cause.
    pub fn is_restartable(self) -> bool {
        !matches!(
            self,
            FailureKind::Configuration | FailureKind::RestoredState | FailureKind::Cancelled
        )
    }

    /// Returns whether a failure of this kind is usually the consequence of another one (a
    /// consumer noticing its failed producer's channel close): it is the job's root cause
    /// only until a failure of another kind arrives.
    pub fn is_consequence(self) -> bool {
        self == FailureKind::BrokenChannel
    }

    /// Returns the kind's name as written in logs and JSON (`user-code`, `io`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::UserCode => "user-code",
            FailureKind::Io => "io",
            FailureKind::LostTaskManager => "lost-taskmanager",
            FailureKind::BrokenChannel => "broken-channel",
            FailureKind::Checkpoint => "checkpoint",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Configuration => "configuration",
            FailureKind::RestoredState => "restored-state",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One failure: its kind, where it happened and what it says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCause {
    /// What class of failure it is.
    pub kind: FailureKind,
    /// The task (its chain's name) that failed; `None` for a failure outside tasks.
    pub operator: Option<String>,
    /// The failed subtask's index.
    pub subtask: Option<u16>,
    /// The error message.
    pub message: String,
}

impl FailureCause {
    /// A failure of no particular task (checkpoints, cancellation, placement).
    pub fn job(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            operator: None,
            subtask: None,
            message: message.into(),
        }
    }

    /// A failure of subtask `subtask` of task `operator`.
    pub fn task(
        kind: FailureKind,
        operator: impl Into<String>,
        subtask: u16,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operator: Some(operator.into()),
            subtask: Some(subtask),
            message: message.into(),
        }
    }

    /// Returns the same failure attributed to subtask `subtask` of task `operator`, unless
    /// it names a task already.
    pub fn in_task(mut self, operator: &str, subtask: u16) -> Self {
        if self.operator.is_none() {
            self.operator = Some(operator.to_string());
            self.subtask = Some(subtask);
        }
        self
    }
}

impl fmt::Display for FailureCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.operator, self.subtask) {
            (Some(op), Some(s)) => write!(f, "task '{op}' (subtask {s}) failed: {}", self.message),
            (Some(op), None) => write!(f, "task '{op}' failed: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FailureCause {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_deterministic_and_cancelled_failures_are_not_restartable() {
        use FailureKind::*;
        for k in [UserCode, Io, LostTaskManager, BrokenChannel, Checkpoint] {
            assert!(k.is_restartable(), "{k}");
        }
        for k in [Configuration, RestoredState, Cancelled] {
            assert!(!k.is_restartable(), "{k}");
        }
    }

    #[test]
    fn a_task_failure_names_its_task_and_subtask() {
        let c = FailureCause::task(FailureKind::UserCode, "map", 3, "boom");
        assert_eq!(c.to_string(), "task 'map' (subtask 3) failed: boom");
        let j = FailureCause::job(FailureKind::Checkpoint, "too many failed checkpoints");
        assert_eq!(j.to_string(), "too many failed checkpoints");
        assert_eq!(
            j.in_task("sink", 1).to_string(),
            "task 'sink' (subtask 1) failed: too many failed checkpoints"
        );
    }

    #[test]
    fn only_a_broken_channel_is_a_consequence() {
        assert!(FailureKind::BrokenChannel.is_consequence());
        assert!(!FailureKind::Io.is_consequence());
    }
}
