//! Network buffers and the pools that bound them.
//!
//! A TaskManager owns one [`NetworkBufferPool`]: a count of buffers that its tasks reserve
//! from when they start (output pools per partition, input pools per gate) and give back
//! when every buffer of the reservation has come home. A [`BufferPool`] hands out
//! [`Buffer`]s of one fixed capacity; a buffer returns to its pool when it is dropped,
//! wherever that happens (after a socket write, after the consumer read it).
//!
//! Invariants: a pool never has more buffers out than its size, so the memory of the data
//! plane is bounded by the TaskManager's pool whatever the input rate; segments are
//! allocated lazily, on first use, and reused after that; every buffer starts with
//! [`HEADER_LEN`] bytes reserved for the transport header, so a buffer goes onto the
//! socket in one write without being copied.

use super::protocol::HEADER_LEN;
use crate::error::ExchangeError;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How often a task waiting for a buffer looks at its cancellation flag.
const REQUEST_WAIT_SLICE: Duration = Duration::from_millis(50);

/// Room past the flush threshold, so that the record that crosses it usually stays whole.
pub const SPAN_SLACK: usize = 1024;

/// Returns the capacity of one segment for buffers of `buffer_size` bytes: the transport
/// header, the buffer and [`SPAN_SLACK`].
pub fn segment_capacity(buffer_size: usize) -> usize {
    HEADER_LEN + buffer_size + SPAN_SLACK
}

/// Flag: the buffer's last frame continues in the channel's next buffer.
pub const FLAG_CONTINUES: u8 = 1;
/// Flag: the buffer is the last of its channel (it ends with end-of-partition).
pub const FLAG_END: u8 = 2;
/// Flag: the buffer ends with an aligned barrier that may overtake the data in flight
/// (`execution.checkpointing.aligned-checkpoint-timeout`); its frame starts at `complete`.
pub const FLAG_BARRIER: u8 = 4;

/// The TaskManager-wide budget of network buffers.
#[derive(Debug)]
pub struct NetworkBufferPool {
    total: usize,
    reserved: Mutex<usize>,
}

impl NetworkBufferPool {
    /// Creates a budget of `total` buffers (`taskmanager.network.pool-size`).
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(Self {
            total,
            reserved: Mutex::new(0),
        })
    }

    /// Returns the number of buffers in the budget.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Returns the number of buffers reserved by pools now.
    pub fn reserved(&self) -> usize {
        *self.reserved.lock().expect("network pool poisoned")
    }

    fn reserve(self: &Arc<Self>, n: usize, owner: &str) -> Result<Reservation, ExchangeError> {
        let mut reserved = self.reserved.lock().expect("network pool poisoned");
        if *reserved + n > self.total {
            return Err(ExchangeError::InsufficientBuffers {
                owner: owner.to_string(),
                required: n,
                available: self.total - *reserved,
                total: self.total,
            });
        }
        *reserved += n;
        Ok(Reservation {
            network: self.clone(),
            n,
        })
    }
}

/// Buffers taken from the TaskManager's budget; given back when dropped.
#[derive(Debug)]
struct Reservation {
    network: Arc<NetworkBufferPool>,
    n: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        *self.network.reserved.lock().expect("network pool poisoned") -= self.n;
    }
}

/// Usage counters of one pool, readable without keeping the pool (or its reservation) alive.
#[derive(Debug, Default)]
pub struct PoolStats {
    size: AtomicUsize,
    out: AtomicUsize,
    max_out: AtomicUsize,
}

impl PoolStats {
    /// Returns `(buffers out now, most buffers ever out, pool size)`.
    pub fn get(&self) -> (usize, usize, usize) {
        (
            self.out.load(Ordering::Relaxed),
            self.max_out.load(Ordering::Relaxed),
            self.size.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug)]
struct PoolState {
    free: Vec<Vec<u8>>,
    /// Segments allocated so far (free or out).
    allocated: usize,
    /// Buffers handed out and not yet returned.
    out: usize,
    /// The most buffers ever out at once.
    max_out: usize,
    /// Threads waiting in [`BufferPool::request`].
    waiters: usize,
}

#[derive(Debug)]
struct PoolShared {
    state: Mutex<PoolState>,
    returned: Condvar,
    size: usize,
    capacity: usize,
    stats: Arc<PoolStats>,
    _reservation: Reservation,
}

impl PoolShared {
    fn recycle(&self, mut segment: Vec<u8>) {
        if segment.capacity() > self.capacity {
            segment.truncate(self.capacity);
            segment.shrink_to(self.capacity);
        }
        let mut s = self.state.lock().expect("buffer pool poisoned");
        s.out -= 1;
        self.stats.out.store(s.out, Ordering::Relaxed);
        s.free.push(segment);
        let wake = s.waiters > 0;
        drop(s);
        if wake {
            self.returned.notify_all();
        }
    }
}

/// A bounded pool of equally sized buffers (one partition's output or one gate's input).
#[derive(Clone, Debug)]
pub struct BufferPool(Arc<PoolShared>);

impl BufferPool {
    /// Reserves `size` buffers of `buffer_size` bytes from `network` for `owner` (named in
    /// the error when the budget is exhausted).
    pub fn new(
        network: &Arc<NetworkBufferPool>,
        size: usize,
        buffer_size: usize,
        owner: &str,
    ) -> Result<Self, ExchangeError> {
        let reservation = network.reserve(size, owner)?;
        Ok(Self(Arc::new(PoolShared {
            state: Mutex::new(PoolState {
                free: Vec::new(),
                allocated: 0,
                out: 0,
                max_out: 0,
                waiters: 0,
            }),
            returned: Condvar::new(),
            size,
            capacity: segment_capacity(buffer_size),
            stats: Arc::new(PoolStats {
                size: AtomicUsize::new(size),
                ..PoolStats::default()
            }),
            _reservation: reservation,
        })))
    }

    /// Returns the number of buffers in the pool.
    pub fn size(&self) -> usize {
        self.0.size
    }

    /// Returns the capacity of one buffer, header included.
    pub fn segment_capacity(&self) -> usize {
        self.0.capacity
    }

    /// Returns the pool's usage counters (they outlive the pool).
    pub fn stats(&self) -> Arc<PoolStats> {
        self.0.stats.clone()
    }

    /// Returns `(buffers out now, most buffers ever out)`.
    pub fn usage(&self) -> (usize, usize) {
        let s = self.0.state.lock().expect("buffer pool poisoned");
        (s.out, s.max_out)
    }

    /// Takes a buffer if one is free.
    pub fn try_request(&self) -> Option<Buffer> {
        let mut s = self.0.state.lock().expect("buffer pool poisoned");
        self.take(&mut s)
    }

    fn take(&self, s: &mut PoolState) -> Option<Buffer> {
        let mut data = match s.free.pop() {
            Some(v) => v,
            None if s.allocated < self.0.size => {
                s.allocated += 1;
                Vec::with_capacity(self.0.capacity)
            }
            None => return None,
        };
        s.out += 1;
        s.max_out = s.max_out.max(s.out);
        self.0.stats.out.store(s.out, Ordering::Relaxed);
        self.0.stats.max_out.store(s.max_out, Ordering::Relaxed);
        data.clear();
        data.resize(HEADER_LEN, 0);
        Some(Buffer {
            data,
            pool: Some(self.0.clone()),
            backlog: 0,
            flags: 0,
            complete: 0,
        })
    }

    /// Takes a buffer, waiting while all are out; a set `cancel` flag ends the wait within
    /// 50 ms with [`ExchangeError::Cancelled`].
    pub fn request(&self, cancel: &AtomicBool) -> Result<Buffer, ExchangeError> {
        let mut s = self.0.state.lock().expect("buffer pool poisoned");
        loop {
            if let Some(b) = self.take(&mut s) {
                return Ok(b);
            }
            if cancel.load(Ordering::Relaxed) {
                return Err(ExchangeError::Cancelled);
            }
            s.waiters += 1;
            s = self
                .0
                .returned
                .wait_timeout(s, REQUEST_WAIT_SLICE)
                .expect("buffer pool poisoned")
                .0;
            s.waiters -= 1;
        }
    }
}

/// One network buffer: a transport header slot, then encoded elements.
///
/// Dropping a pooled buffer returns its segment to the pool.
#[derive(Debug)]
pub struct Buffer {
    data: Vec<u8>,
    pool: Option<Arc<PoolShared>>,
    /// Buffers the producer had queued for the channel behind this one.
    pub backlog: u32,
    /// [`FLAG_CONTINUES`], [`FLAG_END`] and [`FLAG_BARRIER`].
    pub flags: u8,
    /// With [`FLAG_CONTINUES`]: payload offset where the unfinished last frame starts; with
    /// [`FLAG_BARRIER`]: where the barrier that ends the buffer starts.
    pub complete: u32,
}

impl Buffer {
    /// Creates a buffer outside any pool holding `payload` (tests, tools).
    pub fn unpooled(payload: &[u8]) -> Self {
        let mut data = Vec::with_capacity(HEADER_LEN + payload.len());
        data.resize(HEADER_LEN, 0);
        data.extend_from_slice(payload);
        Self {
            data,
            pool: None,
            backlog: 0,
            flags: 0,
            complete: payload.len() as u32,
        }
    }

    /// Returns the encoded elements.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.data[HEADER_LEN..]
    }

    /// Returns the number of payload bytes.
    #[inline]
    pub fn payload_len(&self) -> usize {
        self.data.len() - HEADER_LEN
    }

    /// Appends encoded elements to the payload.
    pub fn append(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Returns the whole segment (header slot and payload) for writing elements at its end.
    #[inline]
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Returns the header slot and the payload, for one socket write.
    pub(crate) fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Replaces the payload with exactly `len` bytes read from `r`.
    pub(crate) fn read_payload(
        &mut self,
        r: &mut impl std::io::Read,
        len: usize,
    ) -> std::io::Result<()> {
        use std::io::Read;
        self.data.truncate(HEADER_LEN);
        let n = Read::take(&mut *r, len as u64).read_to_end(&mut self.data)?;
        if n < len {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// Returns whether the buffer ends with the channel's end-of-partition.
    pub fn is_end(&self) -> bool {
        self.flags & FLAG_END != 0
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.recycle(std::mem::take(&mut self.data));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_never_hands_out_more_than_its_size_and_reuses_returned_buffers() {
        let net = NetworkBufferPool::new(4);
        let pool = BufferPool::new(&net, 2, 64, "test").unwrap();
        let a = pool.try_request().unwrap();
        let b = pool.try_request().unwrap();
        assert!(pool.try_request().is_none());
        assert_eq!(pool.usage(), (2, 2));
        drop(a);
        let c = pool.try_request().unwrap();
        assert_eq!(c.payload_len(), 0);
        drop((b, c));
        assert_eq!(pool.usage(), (0, 2));
    }

    #[test]
    fn reservations_beyond_the_budget_fail_naming_the_owner_and_come_back_when_dropped() {
        let net = NetworkBufferPool::new(10);
        let pool = BufferPool::new(&net, 8, 64, "first").unwrap();
        let err = BufferPool::new(&net, 3, 64, "map (1/2) output").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("map (1/2) output") && msg.contains("3"),
            "{msg}"
        );
        let held = pool.try_request().unwrap();
        drop(pool);
        // A buffer still out keeps the reservation alive.
        assert_eq!(net.reserved(), 8);
        drop(held);
        assert_eq!(net.reserved(), 0);
    }

    #[test]
    fn a_waiting_request_gets_a_buffer_returned_by_another_thread_or_stops_on_cancel() {
        let net = NetworkBufferPool::new(1);
        let pool = BufferPool::new(&net, 1, 64, "test").unwrap();
        let held = pool.try_request().unwrap();
        let t = std::thread::spawn(move || drop(held));
        let cancel = AtomicBool::new(false);
        let b = pool.request(&cancel).unwrap();
        t.join().unwrap();
        cancel.store(true, Ordering::Relaxed);
        assert!(matches!(
            pool.request(&cancel),
            Err(ExchangeError::Cancelled)
        ));
        drop(b);
    }

    #[test]
    fn an_oversized_segment_shrinks_back_when_it_returns() {
        let net = NetworkBufferPool::new(1);
        let pool = BufferPool::new(&net, 1, 64, "test").unwrap();
        let mut b = pool.try_request().unwrap();
        b.vec_mut().extend_from_slice(&[7u8; 10_000]);
        drop(b);
        let b = pool.try_request().unwrap();
        assert!(b.data.capacity() <= pool.segment_capacity() + 64);
    }
}
