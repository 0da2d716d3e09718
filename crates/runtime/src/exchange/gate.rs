//! The consumer side of an exchange: one queue per task that all its channels feed.
//!
//! Invariant: the queue is bounded (exclusive buffers per channel plus floating buffers per
//! gate), so a producer whose consumer falls behind blocks, and back-pressure reaches the
//! sources. Messages of one channel arrive in the order they were sent.

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// What arrives at a task's input.
#[derive(Debug)]
pub enum InputMessage {
    /// A buffer of elements from one channel of one gate.
    Buffer {
        /// Gate index.
        gate: u16,
        /// Channel index within the gate.
        channel: u32,
        /// Encoded elements.
        data: Bytes,
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

/// All input gates of one task behind one bounded queue.
pub struct InputGate {
    rx: Receiver<InputMessage>,
    tx: Sender<InputMessage>,
}

impl InputGate {
    /// Creates a queue holding at most `capacity` buffers.
    pub fn new(capacity: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
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

    /// Returns the number of buffers queued.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Returns whether no buffer is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Returns the number of buffers the queue holds at most.
    pub fn capacity(&self) -> usize {
        self.rx.capacity().unwrap_or(0)
    }

    /// Takes a message if one is queued.
    pub fn try_recv(&self) -> Option<InputMessage> {
        self.rx.try_recv().ok()
    }
}
