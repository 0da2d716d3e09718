//! The consumer side of an exchange: one queue per task that all its channels feed.
//!
//! Invariant: the queue holds at most the buffers the task granted credit for (exclusive
//! buffers per channel plus floating buffers per gate, see [`super::InputCredits`]), so a
//! producer whose consumer falls behind runs out of credit and blocks, and back-pressure
//! reaches the sources. Messages of one channel arrive in the order they were sent.

use super::buffer::Buffer;
use super::server::RemoteCredit;
use super::subpartition::Subpartition;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

/// Where a consumer sends the credits of one channel.
pub enum CreditSink {
    /// The producer runs in this TaskManager.
    Local(Arc<Subpartition>),
    /// The producer runs in another TaskManager: credits go back over its connection.
    Remote(RemoteCredit),
}

impl CreditSink {
    /// Grants the producer `n` more buffers.
    pub fn announce(&self, n: u32) {
        match self {
            CreditSink::Local(s) => s.add_credit(n),
            CreditSink::Remote(r) => r.announce(n),
        }
    }
}

impl std::fmt::Debug for CreditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreditSink::Local(s) => write!(f, "Local({})", s.target()),
            CreditSink::Remote(r) => write!(f, "Remote({r:?})"),
        }
    }
}

/// What arrives at a task's input.
#[derive(Debug)]
pub enum InputMessage {
    /// A producer connected to a channel; credits for it go to `credit`.
    Opened {
        /// Gate index.
        gate: u16,
        /// Channel index within the gate.
        channel: u32,
        /// Where the channel's credits go.
        credit: CreditSink,
    },
    /// A buffer of elements from one channel of one gate.
    Buffer {
        /// Gate index.
        gate: u16,
        /// Channel index within the gate.
        channel: u32,
        /// The buffer, with its producer's backlog and flags.
        buffer: Buffer,
    },
    /// The channel broke (bad bytes, dropped connection).
    Failed {
        /// Gate index.
        gate: u16,
        /// Channel index within the gate.
        channel: u32,
        /// What happened, naming the peer.
        error: String,
    },
}

/// All input gates of one task behind one queue.
pub struct InputGate {
    rx: Receiver<InputMessage>,
    tx: Sender<InputMessage>,
}

impl Default for InputGate {
    fn default() -> Self {
        Self::new()
    }
}

impl InputGate {
    /// Creates a queue; its length is bounded by the credits its task grants.
    pub fn new() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Self { rx, tx }
    }

    /// Returns a sender for producers (local channels and network readers).
    pub fn sender(&self) -> Sender<InputMessage> {
        self.tx.clone()
    }

    /// Waits up to `timeout` for the next message.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<InputMessage, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Returns the number of messages queued.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Returns whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Takes a message if one is queued.
    pub fn try_recv(&self) -> Option<InputMessage> {
        self.rx.try_recv().ok()
    }
}
