//! The consumer side of an exchange: one queue per task that all its channels feed.
//!
//! Invariant: the queue holds at most the buffers the task granted credit for (exclusive
//! buffers per channel plus floating buffers per gate, see [`super::InputCredits`]), so a
//! producer whose consumer falls behind runs out of credit and blocks, and back-pressure
//! reaches the sources. Messages of one channel arrive in the order they were sent.

use super::buffer::Buffer;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// Where a consumer sends the credits of one channel: its producer in this TaskManager
/// (a [`super::Subpartition`]) or the connection its buffers arrive on.
pub trait CreditSink: Send + Sync + std::fmt::Debug {
    /// Grants the producer `n` more buffers.
    fn announce(&self, n: u32);
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
        credit: Box<dyn CreditSink>,
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
