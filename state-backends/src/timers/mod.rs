//! Event-time and processing-time timers of a keyed operator subtask.
//!
//! Timers live on the heap ([`TimerService::new`]) or, for the RocksDB backend, in the
//! subtask's database ([`crate::KeyedStateBackend::timer_service`]), where they need no
//! memory per timer and travel with native snapshots.
//!
//! Invariants:
//! - A timer is identified by (key, namespace, timestamp) and exists at most
//!   once per time domain; registering it again is a no-op (as in Flink).
//! - Advancing time fires every timer with `timestamp <= time`, in timestamp
//!   order; ties fire by key group, then registration order (heap) or encoded key
//!   and namespace (RocksDB).
//! - Snapshots group timers per key group (the group of the timer's key), so
//!   a restore with another parallelism takes exactly the groups it owns.

mod queue;

use serde::{Deserialize, Serialize};

use self::queue::TimerQueue;
use crate::bounds::{Namespace, StateKey};
use crate::codec;
use crate::error::StateError;
use crate::key_group::{assign_to_key_group, key_hash, KeyGroup, KeyGroupRange};
use crate::snapshot::{check_restore_layout, decode_group, encode_group, KeyGroupBytes};

/// A fired (or registered) timer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Timer<K, N> {
    /// Key the timer was registered for.
    pub key: K,
    /// Namespace the timer was registered for (e.g. a window).
    pub namespace: N,
    /// Time at which the timer fires.
    pub timestamp: i64,
}

/// Where the timers of one time domain are kept.
enum Queue<K, N> {
    Heap(TimerQueue<K, N>),
    #[cfg(feature = "rocksdb")]
    Rocks(crate::rocksdb::RocksTimerQueue<K, N>),
}

type StateResult<T> = Result<T, StateError>;

impl<K: StateKey, N: Namespace> Queue<K, N> {
    fn register(
        &mut self,
        key: K,
        namespace: N,
        timestamp: i64,
        kg: KeyGroup,
    ) -> StateResult<bool> {
        match self {
            Queue::Heap(q) => Ok(q.register(key, namespace, timestamp, |_| kg)),
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.register(&key, &namespace, timestamp, kg),
        }
    }

    /// Deletes a timer; the key group (`key_group(key)`) is computed only where it is
    /// needed (RocksDB), not on the heap.
    fn delete(
        &mut self,
        key: &K,
        namespace: &N,
        timestamp: i64,
        key_group: impl FnOnce(&K) -> KeyGroup,
    ) -> StateResult<bool> {
        match self {
            Queue::Heap(q) => {
                let _ = key_group;
                Ok(q.delete(key, namespace, timestamp))
            }
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.delete(key, namespace, timestamp, key_group(key)),
        }
    }

    fn pop_until(&mut self, limit: i64, out: &mut Vec<Timer<K, N>>) -> StateResult<()> {
        match self {
            Queue::Heap(q) => {
                q.pop_until(limit, out);
                Ok(())
            }
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.pop_until(limit, out),
        }
    }

    fn peek_timestamp(&self) -> Option<i64> {
        match self {
            Queue::Heap(q) => q.peek_timestamp(),
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.peek_timestamp(),
        }
    }

    fn last_timestamp(&self) -> StateResult<Option<i64>> {
        match self {
            Queue::Heap(q) => Ok(q.last_timestamp()),
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.last_timestamp(),
        }
    }

    fn len(&self) -> usize {
        match self {
            Queue::Heap(q) => q.len(),
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.len(),
        }
    }

    fn snapshot(&self, what: &str) -> StateResult<Vec<KeyGroupBytes>> {
        match self {
            Queue::Heap(q) => snapshot_queue(q, what),
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.snapshot(),
        }
    }

    /// The column family holding the timers, if they are in RocksDB.
    fn column_family(&self) -> Option<&'static str> {
        match self {
            Queue::Heap(_) => None,
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => Some(q.column_family()),
        }
    }

    fn clear(&mut self) -> StateResult<()> {
        match self {
            Queue::Heap(q) => {
                q.clear();
                Ok(())
            }
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.clear(),
        }
    }

    /// After a restore: the RocksDB queue reads its heads from the (restored) database.
    fn restored(&mut self) -> StateResult<()> {
        match self {
            Queue::Heap(_) => Ok(()),
            #[cfg(feature = "rocksdb")]
            Queue::Rocks(q) => q.rebuild(),
        }
    }
}

/// The timers of one keyed operator subtask.
pub struct TimerService<K, N> {
    event_time: Queue<K, N>,
    processing_time: Queue<K, N>,
    key_group_range: KeyGroupRange,
    max_parallelism: u16,
}

/// An owned snapshot of a timer service, grouped per key group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerSnapshot {
    /// Total number of key groups the snapshot was taken with.
    pub max_parallelism: u16,
    /// Key groups owned by the snapshotted service.
    pub key_group_range: KeyGroupRange,
    /// Event-time timers per key group.
    pub event_time: Vec<KeyGroupBytes>,
    /// Processing-time timers per key group.
    pub processing_time: Vec<KeyGroupBytes>,
}

impl TimerSnapshot {
    const WHAT: &'static str = "timer snapshot";

    /// About the size of the snapshot's encoding: the bytes of its key groups.
    pub fn encoded_len_hint(&self) -> usize {
        let groups = self.event_time.iter().chain(&self.processing_time);
        groups.map(|g| g.bytes.len() + 16).sum::<usize>() + 64
    }

    /// Encodes the snapshot as a versioned, checksummed blob.
    pub fn to_bytes(&self) -> Result<Vec<u8>, StateError> {
        codec::encode_versioned(self).map_err(|e| StateError::codec(Self::WHAT, e))
    }

    /// Decodes a blob written by [`TimerSnapshot::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        codec::decode_versioned(bytes, Self::WHAT).map_err(|e| StateError::codec(Self::WHAT, e))
    }
}

/// The key group of `key` out of `max_parallelism`.
fn key_group_of<K: StateKey>(key: &K, max_parallelism: u16) -> KeyGroup {
    assign_to_key_group(key_hash(key), max_parallelism)
}

const EVENT_TIME: &str = "event-time timers";
const PROCESSING_TIME: &str = "processing-time timers";

impl<K: StateKey, N: Namespace> TimerService<K, N> {
    /// An empty service for a subtask owning `key_group_range`.
    ///
    /// # Panics
    /// Panics if `max_parallelism` is zero.
    pub fn new(key_group_range: KeyGroupRange, max_parallelism: u16) -> Self {
        assert!(max_parallelism > 0, "max_parallelism must be positive");
        Self {
            event_time: Queue::Heap(TimerQueue::new()),
            processing_time: Queue::Heap(TimerQueue::new()),
            key_group_range,
            max_parallelism,
        }
    }

    /// A service keeping its timers in column families `event_cf` and
    /// `processing_cf` of `db`.
    #[cfg(feature = "rocksdb")]
    pub(crate) fn in_rocksdb(
        db: std::rc::Rc<crate::rocksdb::RocksDbInstance>,
        event_cf: &'static str,
        processing_cf: &'static str,
        key_group_range: KeyGroupRange,
        max_parallelism: u16,
    ) -> StateResult<Self> {
        use crate::rocksdb::RocksTimerQueue;
        Ok(Self {
            event_time: Queue::Rocks(RocksTimerQueue::new(
                std::rc::Rc::clone(&db),
                event_cf,
                key_group_range,
            )?),
            processing_time: Queue::Rocks(RocksTimerQueue::new(
                db,
                processing_cf,
                key_group_range,
            )?),
            key_group_range,
            max_parallelism,
        })
    }

    /// Whether the timers live in the keyed backend's database (and so in its native
    /// snapshots).
    pub fn in_backend(&self) -> bool {
        !matches!(self.event_time, Queue::Heap(_))
    }

    /// Key groups owned by this service.
    pub fn key_group_range(&self) -> KeyGroupRange {
        self.key_group_range
    }

    fn key_group(&self, key: &K) -> KeyGroup {
        key_group_of(key, self.max_parallelism)
    }

    /// Registers an event-time timer; returns `false` if it already existed.
    pub fn register_event_time_timer(
        &mut self,
        key: K,
        namespace: N,
        timestamp: i64,
    ) -> StateResult<bool> {
        let kg = self.key_group(&key);
        self.event_time.register(key, namespace, timestamp, kg)
    }

    /// Deletes an event-time timer; returns whether it existed.
    pub fn delete_event_time_timer(
        &mut self,
        key: &K,
        namespace: &N,
        timestamp: i64,
    ) -> StateResult<bool> {
        let max = self.max_parallelism;
        self.event_time
            .delete(key, namespace, timestamp, |k| key_group_of(k, max))
    }

    /// Registers a processing-time timer; returns `false` if it already
    /// existed.
    pub fn register_processing_time_timer(
        &mut self,
        key: K,
        namespace: N,
        timestamp: i64,
    ) -> StateResult<bool> {
        let kg = self.key_group(&key);
        self.processing_time.register(key, namespace, timestamp, kg)
    }

    /// Deletes a processing-time timer; returns whether it existed.
    pub fn delete_processing_time_timer(
        &mut self,
        key: &K,
        namespace: &N,
        timestamp: i64,
    ) -> StateResult<bool> {
        let max = self.max_parallelism;
        self.processing_time
            .delete(key, namespace, timestamp, |k| key_group_of(k, max))
    }

    /// Appends to `out` every event-time timer with `timestamp <= watermark`,
    /// in firing order, and removes them.
    pub fn advance_watermark(
        &mut self,
        watermark: i64,
        out: &mut Vec<Timer<K, N>>,
    ) -> StateResult<()> {
        self.event_time.pop_until(watermark, out)
    }

    /// Appends to `out` every processing-time timer with `timestamp <= now`,
    /// in firing order, and removes them.
    pub fn advance_processing_time(
        &mut self,
        now: i64,
        out: &mut Vec<Timer<K, N>>,
    ) -> StateResult<()> {
        self.processing_time.pop_until(now, out)
    }

    /// Pops the timers of one domain (event time when `event_time`, else processing time)
    /// that are due at `now` into `out`; returns `false` when none was due.
    ///
    /// Operators call it in a loop, handling `out` each time, so that timers registered
    /// while timers fire, and already due, fire before the operator moves on.
    pub fn pop_due(
        &mut self,
        event_time: bool,
        now: i64,
        out: &mut Vec<Timer<K, N>>,
    ) -> StateResult<bool> {
        let queue = if event_time {
            &mut self.event_time
        } else {
            &mut self.processing_time
        };
        if queue.peek_timestamp().is_none_or(|t| t > now) {
            return Ok(false);
        }
        queue.pop_until(now, out)?;
        Ok(true)
    }

    /// Timestamp of the earliest event-time timer.
    pub fn next_event_time(&self) -> Option<i64> {
        self.event_time.peek_timestamp()
    }

    /// Timestamp of the latest event-time timer, or a later one (a timer deleted in memory
    /// may still count): no event-time timer fires after it.
    pub fn last_event_time(&self) -> StateResult<Option<i64>> {
        self.event_time.last_timestamp()
    }

    /// Timestamp of the earliest processing-time timer.
    pub fn next_processing_time(&self) -> Option<i64> {
        self.processing_time.peek_timestamp()
    }

    /// Number of timers in both domains.
    pub fn len(&self) -> usize {
        self.event_time.len() + self.processing_time.len()
    }

    /// Whether no timer is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of event-time timers.
    pub fn event_time_len(&self) -> usize {
        self.event_time.len()
    }

    /// Number of processing-time timers.
    pub fn processing_time_len(&self) -> usize {
        self.processing_time.len()
    }

    /// An owned snapshot of all timers, grouped per key group.
    pub fn snapshot(&self) -> Result<TimerSnapshot, StateError> {
        Ok(TimerSnapshot {
            max_parallelism: self.max_parallelism,
            key_group_range: self.key_group_range,
            event_time: self.event_time.snapshot(EVENT_TIME)?,
            processing_time: self.processing_time.snapshot(PROCESSING_TIME)?,
        })
    }

    /// The timers to store beside the keyed state snapshot `keyed`: none when they live in
    /// the backend's database and `keyed` is a snapshot of it that carries them (a native
    /// snapshot always does, a streamed full snapshot is made to), else a full snapshot.
    pub fn snapshot_beside(
        &self,
        keyed: &mut crate::native::BackendSnapshot,
    ) -> Result<Option<TimerSnapshot>, StateError> {
        use crate::native::BackendSnapshot;
        let families = self
            .event_time
            .column_family()
            .zip(self.processing_time.column_family());
        match (keyed, families) {
            (BackendSnapshot::Native(_), Some(_)) => Ok(None),
            (BackendSnapshot::Streamed(full), Some((event_time, processing_time))) => {
                full.carry_timers(event_time, processing_time);
                Ok(None)
            }
            _ => self.snapshot().map(Some),
        }
    }

    /// Replaces all timers with those of `snapshots` whose key groups lie in
    /// this service's range. Timers kept in RocksDB are re-read from the database
    /// first (a native restore brought them along); snapshots then replace them.
    pub fn restore(&mut self, snapshots: &[TimerSnapshot]) -> Result<(), StateError> {
        self.event_time.restored()?;
        self.processing_time.restored()?;
        if snapshots.is_empty() && self.in_backend() {
            return Ok(());
        }
        let layout = snapshots.iter().map(|s| {
            let event = s.event_time.iter().map(|g| (EVENT_TIME, g.key_group));
            let processing = s
                .processing_time
                .iter()
                .map(|g| (PROCESSING_TIME, g.key_group));
            let groups = event.chain(processing).collect();
            (s.max_parallelism, s.key_group_range, groups)
        });
        check_restore_layout(TimerSnapshot::WHAT, self.max_parallelism, layout)?;
        self.event_time.clear()?;
        self.processing_time.clear()?;
        let (range, max_parallelism) = (self.key_group_range, self.max_parallelism);
        for snapshot in snapshots {
            restore_queue(
                &mut self.event_time,
                &snapshot.event_time,
                EVENT_TIME,
                range,
                max_parallelism,
            )?;
            restore_queue(
                &mut self.processing_time,
                &snapshot.processing_time,
                PROCESSING_TIME,
                range,
                max_parallelism,
            )?;
        }
        Ok(())
    }
}

impl<K, N> std::fmt::Debug for TimerService<K, N>
where
    K: StateKey,
    N: Namespace,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerService")
            .field("key_group_range", &self.key_group_range)
            .field("event_time_timers", &self.event_time.len())
            .field("processing_time_timers", &self.processing_time.len())
            .finish()
    }
}

fn snapshot_queue<K: StateKey, N: Namespace>(
    queue: &TimerQueue<K, N>,
    what: &str,
) -> Result<Vec<KeyGroupBytes>, StateError> {
    let mut out = Vec::new();
    for (key_group, timers) in queue.by_key_group() {
        let bytes = encode_group(timers.len(), &timers, || {
            format!("{what} key group {key_group}")
        })?;
        out.push(KeyGroupBytes { key_group, bytes });
    }
    Ok(out)
}

fn restore_queue<K: StateKey, N: Namespace>(
    queue: &mut Queue<K, N>,
    groups: &[KeyGroupBytes],
    what: &str,
    range: KeyGroupRange,
    max_parallelism: u16,
) -> Result<(), StateError> {
    for group in groups.iter().filter(|g| range.contains(g.key_group)) {
        let key_group = group.key_group;
        let describe = || format!("{what} key group {key_group}");
        decode_group(
            &group.bytes,
            describe,
            |(key, namespace, ts): (K, N, i64)| {
                let actual = assign_to_key_group(key_hash(&key), max_parallelism);
                if actual != key_group {
                    return Err(StateError::KeyGroupMismatch {
                        state: what.to_owned(),
                        stored: key_group,
                        actual,
                    });
                }
                queue.register(key, namespace, ts, key_group)?;
                Ok(())
            },
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
