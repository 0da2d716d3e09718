//! The consumer side of an exchange: one queue per task that all its channels feed, and
//! beside it a queue of priority events (barriers of unaligned checkpoints, which overtake
//! the buffers queued ahead of them).
//!
//! Invariants: the queue holds at most the buffers the task granted credit for (exclusive
//! buffers per channel plus floating buffers per gate, see [`super::InputCredits`]), so a
//! producer whose consumer falls behind runs out of credit and blocks, and back-pressure
//! reaches the sources. Messages of one channel arrive in the order they were sent, except
//! that a priority event is taken before every message queued after it was, and before
//! messages queued earlier whenever it is there when the task looks.

use super::buffer::Buffer;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

/// Where a consumer sends the credits of one channel: its producer in this TaskManager
/// (a [`super::Subpartition`]) or the connection its buffers arrive on.
pub trait CreditSink: Send + Sync + std::fmt::Debug {
    /// Grants the producer `n` more buffers.
    fn announce(&self, n: u32);

    /// Asks the producer to flush each buffer once it holds `bytes` bytes (buffer
    /// debloating, see [`super::debloat`]).
    fn resize_buffers(&self, _bytes: u32) {}
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
    /// A barrier of an unaligned checkpoint, ahead of the channel's queued buffers (a
    /// priority event).
    Priority {
        /// Gate index.
        gate: u16,
        /// Channel index within the gate.
        channel: u32,
        /// The barrier, with the number of buffers the channel sent before it.
        barrier: crate::checkpoint::channel_state::PriorityBarrier,
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

/// Where producers send a task's input messages: priority events to the priority queue,
/// everything else to the queue.
#[derive(Clone, Debug)]
pub struct GateSender {
    data: Sender<InputMessage>,
    priority: Sender<InputMessage>,
}

impl GateSender {
    /// Queues `message`; fails if the task is gone.
    pub fn send(
        &self,
        message: InputMessage,
    ) -> Result<(), crossbeam_channel::SendError<InputMessage>> {
        match message {
            InputMessage::Priority { .. } => self.priority.send(message),
            other => self.data.send(other),
        }
    }
}

/// All input gates of one task behind one queue (and its priority queue).
pub struct InputGate {
    rx: Receiver<InputMessage>,
    priority: Receiver<InputMessage>,
    tx: GateSender,
}

impl Default for InputGate {
    fn default() -> Self {
        Self::new()
    }
}

impl InputGate {
    /// Creates a queue; its length is bounded by the credits its task grants.
    pub fn new() -> Self {
        let (data, rx) = crossbeam_channel::unbounded();
        let (priority, priority_rx) = crossbeam_channel::unbounded();
        Self {
            rx,
            priority: priority_rx,
            tx: GateSender { data, priority },
        }
    }

    /// Returns a sender for producers (local channels and network readers).
    pub fn sender(&self) -> GateSender {
        self.tx.clone()
    }

    /// Waits up to `timeout` for the next message, a priority event first.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<InputMessage, RecvTimeoutError> {
        if let Ok(m) = self.priority.try_recv() {
            return Ok(m);
        }
        crossbeam_channel::select! {
            recv(self.priority) -> m => m.map_err(|_| RecvTimeoutError::Disconnected),
            recv(self.rx) -> m => m.map_err(|_| RecvTimeoutError::Disconnected),
            default(timeout) => Err(RecvTimeoutError::Timeout),
        }
    }

    /// Takes a message other than a priority event if one is queued.
    pub fn try_recv_data(&self) -> Option<InputMessage> {
        self.rx.try_recv().ok()
    }

    /// Takes a priority event if one is queued.
    pub fn try_recv_priority(&self) -> Option<InputMessage> {
        self.priority.try_recv().ok()
    }

    /// Returns the number of messages queued.
    pub fn len(&self) -> usize {
        self.rx.len() + self.priority.len()
    }

    /// Returns whether no message is queued.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty() && self.priority.is_empty()
    }

    /// Takes a message if one is queued, a priority event first.
    pub fn try_recv(&self) -> Option<InputMessage> {
        self.priority
            .try_recv()
            .or_else(|_| self.rx.try_recv())
            .ok()
    }
}
