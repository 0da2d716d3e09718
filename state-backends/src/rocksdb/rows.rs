//! Snapshot key groups made from the rows of one column family, read in key order: the
//! one encoder behind every RocksDB full snapshot, whether it is built in memory from the
//! open database or streamed from a checkpoint of it (see [`crate::full_snapshot`]).
//!
//! Invariants:
//! - Rows arrive in key order, so each key group (the key's first two bytes) is one run
//!   of rows and becomes exactly one [`KeyGroupBytes`]: its entry count, then its entries
//!   in row order. No key group without rows is emitted, and [`count_groups`] counts
//!   exactly the key groups [`KeyGroupRows`] emits.
//! - Only one key group's bytes are held at a time.
//! - An entry is made from the stored bytes as they are (a tuple's encoding is the
//!   concatenation of its parts'); only a list's elements are decoded, to count them, and
//!   a map key's key and namespace, to find where the user key starts.

use rocksdb::{ColumnFamily, DBRawIteratorWithThreadMode, ReadOptions, DB};

use super::keys::{group_key, key_group_of};
use crate::codec::{encode_into, CodecError};
use crate::error::StateError;
use crate::full_snapshot::RowLayout;
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::snapshot::{group_start, KeyGroupBytes};

type StateResult<T> = Result<T, StateError>;

/// Bytes of a timer's stored key before its key: key group and timestamp.
pub(crate) const TIMER_HEAD: usize = 10;

/// The key groups of `range` in column family `cf` of `db`, read with `options`;
/// `backend` and `what` name the database and the state in errors.
pub(crate) fn key_groups<'a>(
    db: &'a DB,
    cf: &ColumnFamily,
    layout: RowLayout,
    range: KeyGroupRange,
    (backend, what): (&'a str, &'a str),
    options: ReadOptions,
) -> KeyGroupRows<'a> {
    let mut it = db.raw_iterator_cf_opt(cf, options);
    it.seek(group_key(range.start));
    KeyGroupRows {
        it,
        rows: RowEncoder {
            layout,
            backend,
            what,
            map: None,
        },
        end: range.end,
        done: false,
    }
}

/// The key groups of `range` in column family `cf` of a checkpoint opened for a full
/// snapshot, with their number: read sequentially, around the block cache.
pub(crate) fn stream_groups<'a>(
    db: &'a DB,
    cf: &str,
    layout: RowLayout,
    range: KeyGroupRange,
    name: (&'a str, &'a str),
) -> StateResult<(usize, KeyGroupRows<'a>)> {
    let family = db.cf_handle(cf).ok_or_else(|| StateError::Storage {
        backend: name.0.to_owned(),
        doing: format!("reading {}", name.1),
        message: "its column family is missing from the snapshot".to_owned(),
    })?;
    let count = count_groups(db, family, range, name)?;
    let mut options = ReadOptions::default();
    options.fill_cache(false);
    options.set_readahead_size(STREAM_READAHEAD);
    Ok((count, key_groups(db, family, layout, range, name, options)))
}

/// Bytes a streamed snapshot's scan reads ahead.
const STREAM_READAHEAD: usize = 2 << 20;

/// The number of key groups of `range` with at least one row in `cf`: one seek per such
/// key group.
pub(crate) fn count_groups(
    db: &DB,
    cf: &ColumnFamily,
    range: KeyGroupRange,
    (backend, what): (&str, &str),
) -> StateResult<usize> {
    let mut it = db.raw_iterator_cf(cf);
    let mut count = 0;
    it.seek(group_key(range.start));
    while let Some(key) = it.key() {
        let key_group = key_group_of(key).ok_or_else(|| short_key(backend, what))?;
        if key_group >= range.end {
            break;
        }
        count += 1;
        match key_group.checked_add(1) {
            Some(next) => it.seek(group_key(next)),
            None => break,
        }
    }
    it.status()
        .map_err(|e| scan_failed(backend, what, e))
        .map(|()| count)
}

fn scan_failed(backend: &str, what: &str, e: rocksdb::Error) -> StateError {
    StateError::Storage {
        backend: backend.to_owned(),
        doing: format!("scanning {what}"),
        message: e.into_string(),
    }
}

fn short_key(backend: &str, what: &str) -> StateError {
    StateError::Storage {
        backend: backend.to_owned(),
        doing: format!("scanning {what}"),
        message: "a stored key is shorter than its key group (and timestamp)".to_owned(),
    }
}

/// The snapshot key groups of a column family, one at a time.
pub(crate) struct KeyGroupRows<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
    rows: RowEncoder<'a>,
    end: KeyGroup,
    done: bool,
}

/// Turns rows into snapshot entries.
struct RowEncoder<'a> {
    layout: RowLayout,
    backend: &'a str,
    what: &'a str,
    /// The map entry being read: its `key | namespace`, pair count and pairs.
    map: Option<(Vec<u8>, u64, Vec<u8>)>,
}

impl RowEncoder<'_> {
    fn codec(&self, e: CodecError) -> StateError {
        StateError::codec(format!("a stored entry of {}", self.what), e)
    }

    /// Appends the entry (or, for a map, the pair) of one row to `body`; returns how many
    /// entries it completed.
    fn add_row(&mut self, key: &[u8], value: &[u8], body: &mut Vec<u8>) -> StateResult<u64> {
        let head = &key[2..];
        match self.layout {
            RowLayout::Single => {
                body.extend_from_slice(head);
                body.extend_from_slice(value);
                Ok(1)
            }
            RowLayout::Listed(len) => {
                let len = len(value).map_err(|e| self.codec(e))?;
                body.extend_from_slice(head);
                encode_into(&len, body).map_err(|e| self.codec(e))?;
                body.extend_from_slice(value);
                Ok(1)
            }
            RowLayout::Timer => {
                let ts = key
                    .get(2..TIMER_HEAD)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
                    .ok_or_else(|| short_key(self.backend, self.what))?;
                body.extend_from_slice(&key[TIMER_HEAD..]);
                encode_into(&ts, body).map_err(|e| self.codec(e))?;
                Ok(1)
            }
            RowLayout::Mapped(prefix_len) => {
                let split = prefix_len(head).map_err(|e| self.codec(e))?;
                let (prefix, user_key) = head.split_at(split);
                let mut done = 0;
                if self.map.as_ref().is_none_or(|(p, _, _)| p != prefix) {
                    done = self.finish_map(body);
                    self.map = Some((prefix.to_vec(), 0, Vec::new()));
                }
                let (_, count, pairs) = self.map.as_mut().expect("set above");
                pairs.extend_from_slice(user_key);
                pairs.extend_from_slice(value);
                *count += 1;
                Ok(done)
            }
        }
    }

    /// Appends the map entry being read, if any, to `body`; returns how many (0 or 1).
    fn finish_map(&mut self, body: &mut Vec<u8>) -> u64 {
        let Some((prefix, count, pairs)) = self.map.take() else {
            return 0;
        };
        body.extend_from_slice(&prefix);
        encode_into(&count, body).expect("a u64 always encodes");
        body.extend_from_slice(&pairs);
        1
    }
}

impl KeyGroupRows<'_> {
    /// Reads the rows of the next key group into `body`; returns the key group and its
    /// entry count, or `None` after the last.
    fn read_group(&mut self, body: &mut Vec<u8>) -> StateResult<Option<(KeyGroup, u64)>> {
        let mut group = None;
        let mut count = 0;
        loop {
            let Some(key) = self.it.key() else {
                self.it
                    .status()
                    .map_err(|e| scan_failed(self.rows.backend, self.rows.what, e))?;
                self.done = true;
                break;
            };
            let key_group =
                key_group_of(key).ok_or_else(|| short_key(self.rows.backend, self.rows.what))?;
            if key_group >= self.end {
                self.done = true;
                break;
            }
            if *group.get_or_insert(key_group) != key_group {
                break;
            }
            let value = self.it.value().unwrap_or_default();
            count += self.rows.add_row(key, value, body)?;
            self.it.next();
        }
        count += self.rows.finish_map(body);
        Ok(group.map(|g| (g, count)))
    }
}

impl Iterator for KeyGroupRows<'_> {
    type Item = StateResult<KeyGroupBytes>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut body = Vec::new();
        match self.read_group(&mut body) {
            Ok(Some((key_group, count))) => {
                let mut bytes = group_start(count, body.len());
                bytes.extend_from_slice(&body);
                Some(Ok(KeyGroupBytes { key_group, bytes }))
            }
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
