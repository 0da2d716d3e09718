//! The producer end of one channel: buffers wait here until the consumer grants credit.
//!
//! A filled buffer is queued; while the channel has credit, the head of the queue is
//! delivered (handed to the consumer's queue in memory, or written to the shared TCP
//! connection) together with the backlog, the number of buffers still queued behind it.
//! Credit arrives from the consumer: directly on a local channel, as a `CREDIT` frame read
//! by the connection's reader on a remote one.
//!
//! A barrier of an unaligned checkpoint ([`Subpartition::priority_barrier`]) goes out at
//! once, without credit, ahead of the queued buffers, with the number of buffers delivered
//! before it; copies of the buffers it overtook become the checkpoint's in-flight data. An
//! aligned barrier that may time out is noted as it is queued, at the end of its buffer, and
//! can later be taken off that buffer and sent the same way
//! ([`Subpartition::overtake_barrier`]). The consumer may ask for smaller buffers (buffer
//! debloating, [`Subpartition::set_buffer_size`]).
//!
//! Invariants: buffers are delivered in the order they were queued and only against
//! credit, one buffer per credit (priority events need none); the queue holds buffers of the producer's pool only, so
//! a channel without credit stops its producer once the pool is out; after a failure the
//! queue is emptied (its buffers go back to the pool, which wakes a waiting producer) and
//! every later call reports the failure; nothing is delivered after the end-of-partition
//! buffer.

use super::buffer::Buffer;
use super::gate::{CreditSink, GateSender, InputMessage};
use crate::checkpoint::channel_state::{ChannelBuffer, PriorityBarrier};
use crate::error::ExchangeError;
use crate::types::GateAddress;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

const DRAIN_WAIT_SLICE: Duration = Duration::from_millis(50);

/// How a channel's buffers reach its consumer: its queue in this TaskManager
/// ([`LocalChannel`]) or the connection to its TaskManager. Called for whole buffers, never
/// per record.
pub trait Push: Send + Sync {
    /// Hands one buffer (its backlog set) to the consumer; the error says why the channel
    /// broke.
    fn push(&self, buffer: Buffer) -> Result<(), PushError>;

    /// Hands the consumer a barrier of an unaligned checkpoint, ahead of its queued buffers.
    fn push_priority(&self, barrier: PriorityBarrier) -> Result<(), PushError>;

    /// The buffer carrying the channel's end was pushed: nothing more will come.
    fn ended(&self) {}

    /// The producer gives the channel up before its end; `failed`: the channel had failed
    /// already.
    fn give_up(&self, _failed: bool) {}
}

/// A channel to a consumer in this TaskManager: buffers go to its task's queue.
pub struct LocalChannel {
    sender: GateSender,
    gate: u16,
    channel: u32,
}

impl Push for LocalChannel {
    fn push(&self, buffer: Buffer) -> Result<(), PushError> {
        self.sender
            .send(InputMessage::Buffer {
                gate: self.gate,
                channel: self.channel,
                buffer,
            })
            .map_err(|_| PushError::ConsumerGone)
    }

    fn push_priority(&self, barrier: PriorityBarrier) -> Result<(), PushError> {
        self.sender
            .send(InputMessage::Priority {
                gate: self.gate,
                channel: self.channel,
                barrier,
            })
            .map_err(|_| PushError::ConsumerGone)
    }
}

/// Why a buffer could not be handed to its consumer; the channel is broken.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The consumer's task (and so its queue) is gone.
    #[error("its consumer is gone")]
    ConsumerGone,
    /// The connection to the consumer's TaskManager broke.
    #[error(transparent)]
    Connection(#[from] super::connection::ConnectionError),
}

#[derive(Default)]
struct State {
    credit: u32,
    queue: VecDeque<Buffer>,
    failed: Option<String>,
    finished: bool,
    /// Buffers delivered so far.
    delivered: u64,
    /// Threads waiting in [`Subpartition::wait_drained`].
    waiters: usize,
    /// The aligned barrier that may still overtake: its checkpoint and the number of the
    /// queued buffer that ends with it.
    barrier: Option<(crate::types::CheckpointId, u64)>,
}

/// The producer end of one channel.
pub struct Subpartition {
    state: Mutex<State>,
    /// The buffer size the consumer asked for (buffer debloating); 0: the job's.
    debloated: std::sync::atomic::AtomicU32,
    drained: Condvar,
    transport: Box<dyn Push>,
    target: String,
}

impl std::fmt::Debug for Subpartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Local({})", self.target)
    }
}

/// The consumer of a channel in the same TaskManager grants credit to its producer
/// directly.
impl CreditSink for Arc<Subpartition> {
    fn announce(&self, n: u32) {
        self.add_credit(n);
    }

    fn resize_buffers(&self, bytes: u32) {
        self.set_buffer_size(bytes);
    }
}

impl Subpartition {
    pub(crate) fn new(transport: Box<dyn Push>, target: String) -> Self {
        Self {
            state: Mutex::new(State::default()),
            debloated: std::sync::atomic::AtomicU32::new(0),
            drained: Condvar::new(),
            transport,
            target,
        }
    }

    /// Creates the producer end of a channel to `channel` of `gate` in this TaskManager,
    /// whose queue is `sender`.
    pub fn local(sender: GateSender, gate: GateAddress, channel: u32) -> Self {
        let local = LocalChannel {
            sender,
            gate: gate.gate,
            channel,
        };
        Self::new(Box::new(local), format!("{gate:?} channel {channel}"))
    }

    /// Names the consumer's gate and channel (and peer) for errors.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The consumer asks for buffers of `bytes` bytes (buffer debloating).
    pub fn set_buffer_size(&self, bytes: u32) {
        let least = super::debloat::MIN_BUFFER_SIZE as u32;
        self.debloated.store(bytes.max(least), Ordering::Relaxed);
    }

    /// Returns the buffer size the consumer asked for, if it did.
    pub fn buffer_size(&self) -> Option<usize> {
        match self.debloated.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n as usize),
        }
    }

    /// Queues a filled buffer and delivers what credit allows.
    pub fn add(&self, buffer: Buffer) -> Result<(), ExchangeError> {
        let mut s = self.state.lock().expect("subpartition poisoned");
        if let Some(reason) = &s.failed {
            return Err(self.failure(reason));
        }
        s.queue.push_back(buffer);
        self.deliver(&mut s);
        match &s.failed {
            Some(reason) => Err(self.failure(reason)),
            None => Ok(()),
        }
    }

    /// The consumer granted `n` more buffers.
    pub fn add_credit(&self, n: u32) {
        let mut s = self.state.lock().expect("subpartition poisoned");
        s.credit = s.credit.saturating_add(n);
        self.deliver(&mut s);
    }

    /// Sends the barrier of unaligned checkpoint `checkpoint` ahead of the queued buffers,
    /// without credit, and returns copies of the buffers it overtook (none if the channel
    /// already ended).
    pub fn priority_barrier(
        &self,
        checkpoint: crate::types::CheckpointId,
        options: crate::element::BarrierOptions,
    ) -> Result<Vec<ChannelBuffer>, ExchangeError> {
        let mut s = self.state.lock().expect("subpartition poisoned");
        if let Some(reason) = &s.failed {
            return Err(self.failure(reason));
        }
        if s.finished {
            return Ok(Vec::new());
        }
        let overtaken = s.queue.iter().map(ChannelBuffer::copy_of).collect();
        self.send_priority(&mut s, checkpoint, options)?;
        Ok(overtaken)
    }

    /// The aligned barrier of `checkpoint` was just queued as the end of the last queued
    /// buffer: it may overtake the buffers ahead of it later
    /// ([`Self::overtake_barrier`]). Nothing is noted if it was delivered already.
    pub fn note_barrier(&self, checkpoint: crate::types::CheckpointId) {
        let mut s = self.state.lock().expect("subpartition poisoned");
        s.barrier = match s.queue.len() as u64 {
            0 => None,
            n => Some((checkpoint, s.delivered + n - 1)),
        };
    }

    /// Returns whether the aligned barrier of `checkpoint` still waits in the queue.
    pub fn barrier_queued(&self, checkpoint: crate::types::CheckpointId) -> bool {
        let s = self.state.lock().expect("subpartition poisoned");
        s.barrier
            .is_some_and(|(c, at)| c == checkpoint && at >= s.delivered)
    }

    /// The aligned barrier of `checkpoint` that still waits in the queue overtakes the
    /// buffers ahead of it: it is taken off the end of its buffer (a buffer left empty is
    /// dropped) and sent as a barrier of an unaligned checkpoint with `options`. Returns
    /// copies of the buffers it overtook, or `None` if it was delivered already.
    pub fn overtake_barrier(
        &self,
        checkpoint: crate::types::CheckpointId,
        options: crate::element::BarrierOptions,
    ) -> Result<Option<Vec<ChannelBuffer>>, ExchangeError> {
        let mut s = self.state.lock().expect("subpartition poisoned");
        if let Some(reason) = &s.failed {
            return Err(self.failure(reason));
        }
        let at = match s.barrier.take() {
            Some((c, at)) if c == checkpoint && at >= s.delivered => (at - s.delivered) as usize,
            _ => return Ok(None),
        };
        let holder = &mut s.queue[at];
        let len = holder.vec_mut().len();
        holder
            .vec_mut()
            .truncate(len - crate::element::BARRIER_FRAME_LEN);
        holder.flags &= !super::buffer::FLAG_BARRIER;
        holder.complete = holder.payload_len() as u32;
        let mut ahead = at + 1;
        if holder.payload_len() == 0 {
            s.queue.remove(at);
            ahead = at;
        }
        let overtaken = s
            .queue
            .iter()
            .take(ahead)
            .map(ChannelBuffer::copy_of)
            .collect();
        self.send_priority(&mut s, checkpoint, options)?;
        Ok(Some(overtaken))
    }

    /// Hands the consumer the barrier of `checkpoint`, numbered with the buffers delivered
    /// so far, ahead of the queued ones; a failure breaks the channel.
    fn send_priority(
        &self,
        s: &mut State,
        checkpoint: crate::types::CheckpointId,
        options: crate::element::BarrierOptions,
    ) -> Result<(), ExchangeError> {
        let barrier = PriorityBarrier {
            checkpoint,
            options,
            sequence: s.delivered,
        };
        if let Err(e) = self.transport.push_priority(barrier) {
            s.failed = Some(e.to_string());
            s.queue.clear();
            return Err(self.failure(&e.to_string()));
        }
        Ok(())
    }

    /// Fails the channel: queued buffers are dropped and later calls report `reason`.
    pub fn fail(&self, reason: String) {
        let mut s = self.state.lock().expect("subpartition poisoned");
        if s.failed.is_none() && !s.finished {
            s.failed = Some(reason);
        }
        s.queue.clear();
        let wake = s.waiters > 0;
        drop(s);
        if wake {
            self.drained.notify_all();
        }
    }

    /// Returns `(credit, queued buffers, delivered buffers)`.
    pub fn counts(&self) -> (u32, usize, u64) {
        let s = self.state.lock().expect("subpartition poisoned");
        (s.credit, s.queue.len(), s.delivered)
    }

    /// Waits until every queued buffer was delivered; a set `cancel` flag ends the wait
    /// within 50 ms.
    pub fn wait_drained(&self, cancel: &AtomicBool) -> Result<(), ExchangeError> {
        let mut s = self.state.lock().expect("subpartition poisoned");
        loop {
            if let Some(reason) = &s.failed {
                return Err(self.failure(reason));
            }
            if s.queue.is_empty() {
                return Ok(());
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(ExchangeError::Cancelled);
            }
            s.waiters += 1;
            s = self
                .drained
                .wait_timeout(s, DRAIN_WAIT_SLICE)
                .expect("subpartition poisoned")
                .0;
            s.waiters -= 1;
        }
    }

    /// The producer gives the channel up before its end (its task failed or was cancelled,
    /// which cancels the job): queued buffers go back to the pool and the consumer side
    /// forgets the channel. The consumer is not failed for it, so the job's failure names
    /// the root cause; the job's cancellation stops the consumer.
    pub fn close(&self) {
        let mut s = self.state.lock().expect("subpartition poisoned");
        s.queue.clear();
        if s.finished {
            return;
        }
        let already_failed = s.failed.is_some();
        if !already_failed {
            s.failed = Some("closed by its producer".into());
        }
        self.transport.give_up(already_failed);
    }

    fn failure(&self, reason: &str) -> ExchangeError {
        ExchangeError::ChannelFailed {
            target: self.target.clone(),
            reason: reason.to_string(),
        }
    }

    fn deliver(&self, s: &mut State) {
        while s.credit > 0 && s.failed.is_none() {
            let Some(mut buffer) = s.queue.pop_front() else {
                break;
            };
            s.credit -= 1;
            buffer.backlog = s.queue.len() as u32;
            let end = buffer.is_end();
            match self.transport.push(buffer) {
                Ok(()) => {
                    s.delivered += 1;
                    if end {
                        s.finished = true;
                        self.transport.ended();
                    }
                }
                Err(e) => {
                    s.failed = Some(e.to_string());
                    s.queue.clear();
                }
            }
        }
        if s.waiters > 0 && (s.queue.is_empty() || s.failed.is_some()) {
            self.drained.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::buffer::{BufferPool, NetworkBufferPool, FLAG_END};

    fn local() -> (Subpartition, crate::exchange::InputGate, BufferPool) {
        let gate = crate::exchange::InputGate::new();
        let local = LocalChannel {
            sender: gate.sender(),
            gate: 0,
            channel: 3,
        };
        let sub = Subpartition::new(Box::new(local), "test channel".into());
        let pool = BufferPool::new(&NetworkBufferPool::new(8), 8, 64, "test").unwrap();
        (sub, gate, pool)
    }

    #[test]
    fn buffers_wait_for_credit_and_go_out_in_order_with_their_backlog() {
        let (sub, rx, pool) = local();
        for i in 0..3u8 {
            let mut b = pool.try_request().unwrap();
            b.vec_mut().push(i);
            sub.add(b).unwrap();
        }
        assert!(rx.try_recv().is_none(), "nothing goes out without credit");
        assert_eq!(sub.counts(), (0, 3, 0));
        sub.add_credit(2);
        let got: Vec<(u8, u32)> = std::iter::from_fn(|| rx.try_recv())
            .map(|m| match m {
                InputMessage::Buffer { buffer, .. } => (buffer.payload()[0], buffer.backlog),
                _ => panic!("not a buffer"),
            })
            .collect();
        assert_eq!(got, vec![(0, 2), (1, 1)]);
        assert_eq!(sub.counts(), (0, 1, 2));
    }

    #[test]
    fn a_failed_channel_returns_its_buffers_and_reports_the_failure() {
        let (sub, rx, pool) = local();
        sub.add(pool.try_request().unwrap()).unwrap();
        drop(rx);
        sub.add_credit(1);
        assert_eq!(
            pool.usage().0,
            0,
            "the undeliverable buffer went back to the pool"
        );
        let err = sub.add(pool.try_request().unwrap()).unwrap_err();
        assert!(err.to_string().contains("test channel"), "{err}");
        assert!(sub.wait_drained(&AtomicBool::new(false)).is_err());
    }

    #[test]
    fn waiting_for_the_drain_ends_when_credit_arrives() {
        let (sub, rx, pool) = local();
        let sub = Arc::new(sub);
        let mut b = pool.try_request().unwrap();
        b.flags = FLAG_END;
        sub.add(b).unwrap();
        let s2 = sub.clone();
        let t = std::thread::spawn(move || s2.add_credit(1));
        sub.wait_drained(&AtomicBool::new(false)).unwrap();
        t.join().unwrap();
        assert!(matches!(rx.try_recv(), Some(InputMessage::Buffer { .. })));
    }

    #[test]
    fn a_priority_barrier_overtakes_the_queue_without_credit_and_returns_what_it_overtook() {
        let (sub, gate, pool) = local();
        for i in 0..3u8 {
            let mut b = pool.try_request().unwrap();
            b.vec_mut().push(i);
            sub.add(b).unwrap();
        }
        sub.add_credit(1);
        let options = crate::element::BarrierOptions {
            savepoint: false,
            aligned: true,
            stop: false,
            drain: false,
            unaligned: true,
            timeout: false,
        };
        let overtaken = sub.priority_barrier(9, options).unwrap();
        let bytes: Vec<Vec<u8>> = overtaken.iter().map(|b| b.bytes.clone()).collect();
        assert_eq!(
            bytes,
            vec![vec![1], vec![2]],
            "the two buffers still queued"
        );
        // The barrier comes first, saying one buffer was sent before it.
        match gate.try_recv() {
            Some(InputMessage::Priority { barrier, .. }) => {
                assert_eq!((barrier.checkpoint, barrier.sequence), (9, 1));
            }
            other => panic!("expected the barrier first, got {other:?}"),
        }
        assert!(matches!(gate.try_recv(), Some(InputMessage::Buffer { .. })));
        assert!(gate.try_recv().is_none());
        // The overtaken buffers are still delivered, against credit.
        sub.add_credit(2);
        assert_eq!(std::iter::from_fn(|| gate.try_recv()).count(), 2);
    }

    #[test]
    fn a_queued_aligned_barrier_overtakes_what_precedes_it_and_a_delivered_one_does_not() {
        use crate::element::{write_event, BarrierOptions, Element, BARRIER_FRAME_LEN};
        let (sub, gate, pool) = local();
        let options = BarrierOptions::from_byte(0b10_0010);
        let queue = |payload: &[u8], barrier: Option<u64>| {
            let mut b = pool.try_request().unwrap();
            b.vec_mut().extend_from_slice(payload);
            if let Some(c) = barrier {
                write_event(b.vec_mut(), &Element::Barrier(c, options));
            }
            sub.add(b).unwrap();
            if let Some(c) = barrier {
                sub.note_barrier(c);
            }
        };
        queue(b"a", None);
        queue(b"b", Some(3));
        queue(b"c", None);
        sub.add_credit(1);
        assert!(sub.barrier_queued(3));
        assert!(!sub.barrier_queued(2), "another checkpoint's barrier");
        let overtaken = sub
            .overtake_barrier(3, options.overtaking())
            .unwrap()
            .unwrap();
        let bytes: Vec<Vec<u8>> = overtaken.iter().map(|b| b.bytes.clone()).collect();
        assert_eq!(
            bytes,
            vec![b"b".to_vec()],
            "the buffer before it, less its frame"
        );
        assert!(!sub.barrier_queued(3));
        // The consumer takes the barrier first; it says one buffer was sent before it.
        match gate.try_recv() {
            Some(InputMessage::Priority { barrier, .. }) => {
                assert_eq!((barrier.checkpoint, barrier.sequence), (3, 1));
                assert!(barrier.options.unaligned);
            }
            other => panic!("expected the barrier, got {other:?}"),
        }
        assert!(matches!(gate.try_recv(), Some(InputMessage::Buffer { .. })));
        sub.add_credit(2);
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| gate.try_recv())
            .map(|m| match m {
                InputMessage::Buffer { buffer, .. } => buffer.payload().to_vec(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(rest, vec![b"b".to_vec(), b"c".to_vec()]);

        // A barrier alone in its buffer leaves nothing behind; one delivered stays put.
        queue(b"", Some(4));
        assert_eq!(sub.overtake_barrier(4, options).unwrap(), Some(Vec::new()));
        assert!(matches!(
            gate.try_recv(),
            Some(InputMessage::Priority { .. })
        ));
        assert_eq!(sub.counts().1, 0, "the emptied buffer was dropped");
        sub.add_credit(1);
        queue(b"d", Some(5));
        assert!(!sub.barrier_queued(5));
        assert_eq!(sub.overtake_barrier(5, options).unwrap(), None);
        let delivered = gate.try_recv();
        assert!(
            matches!(&delivered, Some(InputMessage::Buffer { buffer, .. }) if buffer.payload_len() == 1 + BARRIER_FRAME_LEN)
        );
    }
}
