//! Errors of tasks and exchanges.
//!
//! A [`TaskError`] always says where it happened (operator, subtask, channel or peer) so the
//! job's failure message can be read without logs.

use crate::failure::{FailureCause, FailureKind};
use thiserror::Error;

/// Errors on the data plane between tasks.
#[derive(Debug, Error)]
pub enum ExchangeError {
    /// An input channel failed (its producer or its connection broke); the message names
    /// the peer, gate and channel.
    #[error("{0}")]
    InputFailed(String),
    /// The consumer of a channel is gone (its task ended or failed).
    #[error("consumer of channel {channel} ({target}) is gone")]
    ConsumerGone {
        /// Channel index in the producer's partition.
        channel: usize,
        /// The consumer's address.
        target: String,
    },
    /// A TCP connection to or from a peer failed.
    #[error("data connection to {peer} for {target}: {source}")]
    Io {
        /// The remote socket address.
        peer: String,
        /// The logical channel the connection carries.
        target: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The peer sent bytes that are not a valid frame.
    #[error("bad data from {peer} on {target}: {reason}")]
    Protocol {
        /// The remote socket address.
        peer: String,
        /// The logical channel.
        target: String,
        /// What was wrong.
        reason: String,
    },
    /// A consumer's input gate never appeared in the registry.
    #[error("input gate {target} was not registered within {waited_ms} ms")]
    GateNotFound {
        /// The missing gate.
        target: String,
        /// How long the lookup waited.
        waited_ms: u64,
    },
    /// A channel failed: its connection broke, its consumer refused or left it, or its
    /// producer gave it up.
    #[error("channel to {target} failed: {reason}")]
    ChannelFailed {
        /// The consumer's gate and channel, and the peer.
        target: String,
        /// What happened.
        reason: String,
    },
    /// The TaskManager's network buffers do not cover a task's pools.
    #[error(
        "insufficient network buffers for {owner}: {required} required, {available} of {total} \
         available; raise taskmanager.network.pool-size or lower the parallelism"
    )]
    InsufficientBuffers {
        /// The pool that asked (task and output or gate).
        owner: String,
        /// Buffers it asked for.
        required: usize,
        /// Buffers not reserved by others.
        available: usize,
        /// The TaskManager's pool size.
        total: usize,
    },
    /// The task was cancelled while it waited for a channel.
    #[error("cancelled while waiting on a channel")]
    Cancelled,
    /// A record could not be serialized.
    #[error("cannot serialize record: {0}")]
    Serialize(String),
}

/// Why a task stopped with an error.
#[derive(Debug, Error)]
pub enum TaskError {
    /// User code failed (returned an error or panicked).
    #[error("operator '{operator}' failed: {message}")]
    User {
        /// Name of the failing operator.
        operator: String,
        /// The error or panic message.
        message: String,
    },
    /// A record on an input could not be decoded.
    #[error("operator '{operator}' cannot decode a record on input {input}: {message}")]
    Decode {
        /// The consuming operator.
        operator: String,
        /// Logical input index.
        input: u8,
        /// The decoder's message.
        message: String,
    },
    /// The data plane failed.
    #[error(transparent)]
    Exchange(ExchangeError),
    /// The task was cancelled.
    #[error("task was cancelled")]
    Cancelled,
    /// Reading or writing outside the task failed (a file, a socket, checkpoint storage);
    /// the message names what and where.
    #[error("{0}")]
    Io(String),
    /// The job's configuration or graph cannot run (every run fails the same way).
    #[error("{0}")]
    Configuration(String),
    /// The state the task restores, or what it refers to, is unusable (every run fails the
    /// same way).
    #[error("{0}")]
    RestoredState(String),
    /// The task could not take its part in a checkpoint (encoding or storing its state).
    #[error("{0}")]
    Checkpoint(String),
    /// The task thread panicked outside any operator's code.
    #[error("{0}")]
    Panic(String),
}

impl From<ExchangeError> for TaskError {
    /// A wait on the data plane ended by cancellation is the task's cancellation, not a
    /// failure of the exchange.
    fn from(e: ExchangeError) -> Self {
        match e {
            ExchangeError::Cancelled => TaskError::Cancelled,
            e => TaskError::Exchange(e),
        }
    }
}

impl TaskError {
    /// Returns the class of this failure, which decides root-cause selection and whether a
    /// restart can heal it.
    pub fn kind(&self) -> FailureKind {
        match self {
            TaskError::User { .. } | TaskError::Decode { .. } | TaskError::Panic(_) => {
                FailureKind::UserCode
            }
            TaskError::Exchange(ExchangeError::InsufficientBuffers { .. }) => {
                FailureKind::Configuration
            }
            TaskError::Exchange(ExchangeError::Serialize(_)) => FailureKind::UserCode,
            TaskError::Exchange(_) => FailureKind::BrokenChannel,
            TaskError::Cancelled => FailureKind::Cancelled,
            TaskError::Io(_) => FailureKind::Io,
            TaskError::Configuration(_) => FailureKind::Configuration,
            TaskError::RestoredState(_) => FailureKind::RestoredState,
            TaskError::Checkpoint(_) => FailureKind::Checkpoint,
        }
    }

    /// Returns this error as the failure of subtask `subtask` of task `operator`.
    pub fn into_cause(self, operator: &str, subtask: u16) -> FailureCause {
        FailureCause::task(self.kind(), operator, subtask, self.to_string())
    }

    /// Builds a [`TaskError::User`].
    pub fn user(operator: impl Into<String>, message: impl Into<String>) -> Self {
        TaskError::User {
            operator: operator.into(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_exchange_wait_is_the_tasks_cancellation_not_a_failure() {
        assert!(matches!(
            TaskError::from(ExchangeError::Cancelled),
            TaskError::Cancelled
        ));
        let gone = ExchangeError::ConsumerGone {
            channel: 1,
            target: "g".into(),
        };
        assert!(matches!(TaskError::from(gone), TaskError::Exchange(_)));
    }
}
