//! One timer domain (event or processing time) of a keyed subtask, in RocksDB.
//!
//! Each domain is a column family of the subtask's database. A timer's key is `key group
//! (u16 BE) | timestamp (i64 with its sign bit flipped, BE) | key | namespace` and its
//! value is empty, so the timers of one key group are one contiguous range ordered by
//! timestamp, and registering a timer twice writes the same key (de-duplication). In
//! memory there is only the earliest timestamp of each key group (`heads`), so memory
//! does not grow with the number of timers.
//!
//! Invariants:
//! - `heads` holds exactly `(earliest timestamp, key group)` for every key group of the
//!   range with a timer; `len` is the number of stored timers.
//! - Timers fire in timestamp order; equal timestamps fire by key group, then by the
//!   encoded key and namespace.
//! - The column families come with the database, so native snapshots carry the timers
//!   and a native restore only needs [`RocksTimerQueue::rebuild`].

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::rc::Rc;

use rocksdb::{ReadOptions, WriteBatch};

use super::instance::RocksDbInstance;
use super::keys::{group_key, key_group_of, PAST_ALL_KEYS};
use super::rows::{self, TIMER_HEAD as HEAD};
use crate::bounds::{Namespace, StateKey};
use crate::codec::{decode_from, encode_into};
use crate::error::StateError;
use crate::full_snapshot::RowLayout;
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::snapshot::KeyGroupBytes;
use crate::timers::Timer;

type StateResult<T> = Result<T, StateError>;

fn ts_bytes(ts: i64) -> [u8; 8] {
    ((ts as u64) ^ (1 << 63)).to_be_bytes()
}

fn ts_of(key: &[u8]) -> Option<i64> {
    let raw = u64::from_be_bytes(key.get(2..HEAD)?.try_into().ok()?);
    Some((raw ^ (1 << 63)) as i64)
}

/// The timers of one time domain of one keyed subtask, in a column family.
pub(crate) struct RocksTimerQueue<K, N> {
    db: Rc<RocksDbInstance>,
    cf: &'static str,
    range: KeyGroupRange,
    heads: BTreeSet<(i64, KeyGroup)>,
    /// The head of each key group of the range, by offset.
    head_of: Vec<Option<i64>>,
    len: usize,
    buf: Vec<u8>,
    _types: PhantomData<(K, N)>,
}

impl<K: StateKey, N: Namespace> RocksTimerQueue<K, N> {
    /// The timers in column family `cf` (created if missing) of `db`.
    pub(crate) fn new(
        db: Rc<RocksDbInstance>,
        cf: &'static str,
        range: KeyGroupRange,
    ) -> StateResult<Self> {
        db.create_column_family(cf)?;
        Ok(Self {
            db,
            cf,
            range,
            heads: BTreeSet::new(),
            head_of: vec![None; range.len()],
            len: 0,
            buf: Vec::with_capacity(64),
            _types: PhantomData,
        })
    }

    fn failed(&self, doing: &str, e: rocksdb::Error) -> StateError {
        self.db.error(format!("{doing} {}", self.cf), e)
    }

    fn encode_key(&mut self, kg: KeyGroup, ts: i64, key: &K, ns: &N) -> StateResult<()> {
        self.buf.clear();
        self.buf.extend_from_slice(&kg.to_be_bytes());
        self.buf.extend_from_slice(&ts_bytes(ts));
        encode_into(key, &mut self.buf)
            .map_err(|e| StateError::codec(format!("key of a timer in {}", self.cf), e))?;
        encode_into(ns, &mut self.buf)
            .map_err(|e| StateError::codec(format!("namespace of a timer in {}", self.cf), e))
    }

    fn exists(&self) -> StateResult<bool> {
        self.db.with_cf(self.cf, |db, cf| {
            db.get_pinned_cf(cf, &self.buf)
                .map(|v| v.is_some())
                .map_err(|e| self.failed("reading", e))
        })
    }

    fn set_head(&mut self, kg: KeyGroup, head: Option<i64>) {
        let slot = &mut self.head_of[usize::from(kg - self.range.start)];
        if let Some(old) = slot.take() {
            self.heads.remove(&(old, kg));
        }
        if let Some(ts) = head {
            self.heads.insert((ts, kg));
        }
        *slot = head;
    }

    /// Reads the earliest timer of key group `kg` from the database, knowing that none is
    /// earlier than `from`: the seek starts there, past the deletions of timers that fired,
    /// which an iterator would otherwise step over one by one.
    fn reload_head(&mut self, kg: KeyGroup, from: i64) -> StateResult<()> {
        let head = self.db.with_cf(self.cf, |db, cf| {
            let mut options = ReadOptions::default();
            options.set_iterate_upper_bound(group_key(kg + 1).to_vec());
            let mut it = db.raw_iterator_cf_opt(cf, options);
            it.seek([&group_key(kg)[..], &ts_bytes(from)].concat());
            let head = it.key().and_then(ts_of);
            it.status().map_err(|e| self.failed("scanning", e))?;
            Ok(head)
        })?;
        self.set_head(kg, head);
        Ok(())
    }

    /// Timestamp of the latest timer: one backward seek per key group that has timers.
    pub(crate) fn last_timestamp(&self) -> StateResult<Option<i64>> {
        let groups: Vec<KeyGroup> = self.heads.iter().map(|&(_, kg)| kg).collect();
        self.db.with_cf(self.cf, |db, cf| {
            let mut last = None;
            for kg in groups {
                let mut it = db.raw_iterator_cf(cf);
                // Timer keys are longer than a key group, so none equals the next group's key.
                it.seek_for_prev(group_key(kg + 1));
                let ts = it
                    .key()
                    .filter(|k| key_group_of(k) == Some(kg))
                    .and_then(ts_of);
                it.status().map_err(|e| self.failed("scanning", e))?;
                last = last.max(ts);
            }
            Ok(last)
        })
    }

    /// Registers a timer of key group `kg`; returns `false` if it already existed.
    pub(crate) fn register(&mut self, key: &K, ns: &N, ts: i64, kg: KeyGroup) -> StateResult<bool> {
        self.encode_key(kg, ts, key, ns)?;
        if self.exists()? {
            return Ok(false);
        }
        self.db.with_cf(self.cf, |db, cf| {
            db.put_cf_opt(cf, &self.buf, [], &self.db.write)
                .map_err(|e| self.failed("writing", e))
        })?;
        self.len += 1;
        if self.head_of[usize::from(kg - self.range.start)].is_none_or(|h| ts < h) {
            self.set_head(kg, Some(ts));
        }
        Ok(true)
    }

    /// Deletes a timer of key group `kg`; returns whether it existed.
    pub(crate) fn delete(&mut self, key: &K, ns: &N, ts: i64, kg: KeyGroup) -> StateResult<bool> {
        self.encode_key(kg, ts, key, ns)?;
        if !self.exists()? {
            return Ok(false);
        }
        self.db.with_cf(self.cf, |db, cf| {
            db.delete_cf_opt(cf, &self.buf, &self.db.write)
                .map_err(|e| self.failed("deleting from", e))
        })?;
        self.len -= 1;
        if self.head_of[usize::from(kg - self.range.start)] == Some(ts) {
            self.reload_head(kg, ts)?;
        }
        Ok(true)
    }

    /// Pops every timer with `timestamp <= limit` into `out`, in firing order.
    pub(crate) fn pop_until(&mut self, limit: i64, out: &mut Vec<Timer<K, N>>) -> StateResult<()> {
        while let Some(&(ts, kg)) = self.heads.first() {
            if ts > limit {
                break;
            }
            // Every timer of this key group at exactly `ts`, then the next head.
            let from = [&group_key(kg)[..], &ts_bytes(ts)].concat();
            let to = match ts.checked_add(1) {
                Some(next) => [&group_key(kg)[..], &ts_bytes(next)].concat(),
                None => group_key(kg + 1).to_vec(),
            };
            let cf_name = self.cf;
            let popped = self.db.with_cf(self.cf, |db, cf| {
                let mut options = ReadOptions::default();
                options.set_iterate_upper_bound(to);
                let mut it = db.raw_iterator_cf_opt(cf, options);
                it.seek(&from);
                let mut batch = WriteBatch::default();
                let mut popped = 0;
                while let Some(stored) = it.key() {
                    let what = || format!("a timer in {cf_name}");
                    let (key, used): (K, usize) =
                        decode_from(&stored[HEAD..]).map_err(|e| StateError::codec(what(), e))?;
                    let (namespace, _): (N, usize) = decode_from(&stored[HEAD + used..])
                        .map_err(|e| StateError::codec(what(), e))?;
                    out.push(Timer {
                        key,
                        namespace,
                        timestamp: ts,
                    });
                    batch.delete_cf(cf, stored);
                    popped += 1;
                    it.next();
                }
                it.status().map_err(|e| self.failed("scanning", e))?;
                db.write_opt(batch, &self.db.write)
                    .map_err(|e| self.failed("deleting from", e))?;
                Ok(popped)
            })?;
            self.len -= popped;
            match ts.checked_add(1) {
                Some(next) => self.reload_head(kg, next)?,
                None => self.set_head(kg, None),
            }
        }
        Ok(())
    }

    /// Timestamp of the earliest timer.
    pub(crate) fn peek_timestamp(&self) -> Option<i64> {
        self.heads.first().map(|h| h.0)
    }

    /// Number of timers.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Every timer, per key group in firing order, as snapshot key groups of
    /// `(key, namespace, timestamp)` entries.
    pub(crate) fn snapshot(&self) -> StateResult<Vec<KeyGroupBytes>> {
        let backend = self.db.describe();
        self.db.with_cf(self.cf, |db, cf| {
            let name = (backend.as_str(), self.cf);
            let options = ReadOptions::default();
            rows::key_groups(db, cf, RowLayout::Timer, self.range, name, options).collect()
        })
    }

    /// The column family of the timers.
    pub(crate) fn column_family(&self) -> &'static str {
        self.cf
    }

    /// Deletes every timer.
    pub(crate) fn clear(&mut self) -> StateResult<()> {
        self.db.with_cf(self.cf, |db, cf| {
            db.delete_range_cf_opt(cf, &[][..], &PAST_ALL_KEYS[..], &self.db.write)
                .map_err(|e| self.failed("clearing", e))
        })?;
        self.heads.clear();
        self.head_of.iter_mut().for_each(|h| *h = None);
        self.len = 0;
        Ok(())
    }

    /// The key group and timestamp of a stored timer.
    fn parse(&self, stored: &[u8]) -> StateResult<(KeyGroup, i64)> {
        key_group_of(stored)
            .zip(ts_of(stored))
            .ok_or_else(|| StateError::Storage {
                backend: self.db.describe(),
                doing: format!("scanning {}", self.cf),
                message: "a stored timer is shorter than its key group and timestamp".to_owned(),
            })
    }

    /// Reads the heads and the count from the database (after a restore replaced it), in
    /// one pass: timers are sorted by key group, then timestamp, so the first timer of each
    /// key group is its head.
    pub(crate) fn rebuild(&mut self) -> StateResult<()> {
        self.db.create_column_family(self.cf)?;
        self.heads.clear();
        self.head_of.iter_mut().for_each(|h| *h = None);
        let mut len = 0;
        let mut heads = Vec::new();
        self.db.with_cf(self.cf, |db, cf| {
            let mut it = db.raw_iterator_cf(cf);
            it.seek_to_first();
            while let Some(stored) = it.key() {
                let (kg, ts) = self.parse(stored)?;
                if heads.last().is_none_or(|&(last, _)| last != kg) {
                    heads.push((kg, ts));
                }
                len += 1;
                it.next();
            }
            it.status().map_err(|e| self.failed("counting", e))
        })?;
        self.len = len;
        for (kg, ts) in heads {
            if self.range.contains(kg) {
                self.set_head(kg, Some(ts));
            }
        }
        Ok(())
    }
}
