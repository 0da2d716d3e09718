//! The current key shared by a keyed backend and all of its state handles.
//!
//! Invariants:
//! - The current key, when set, lies in the backend's key-group range, and its
//!   cached `offset` is `key_group - range.start`, so storage can index its
//!   per-key-group tables without recomputing the hash.
//! - `encoded`, when not empty, is `key group (u16 BE) | key` in the codec's encoding for
//!   the current key: it is emptied whenever the key changes and filled by the first
//!   storage access that needs it (RocksDB), so a key is encoded once however many states
//!   it touches.
//! - The context is only touched from the subtask's thread (`Rc`/`RefCell`).

use std::cell::RefCell;

use serde::Serialize;

use crate::codec::{encode_into, CodecError};
use crate::error::StateError;
use crate::key_group::{assign_to_key_group, key_hash, KeyGroup, KeyGroupRange};

/// The current key with its precomputed key group.
pub(crate) struct CurrentKey<K> {
    /// The key itself.
    pub(crate) key: K,
    /// Key group of `key`.
    pub(crate) key_group: KeyGroup,
    /// `key_group - range.start`: index into per-key-group tables.
    pub(crate) offset: usize,
    /// `key group | key`, encoded on first use (empty: not yet).
    pub(crate) encoded: RefCell<Vec<u8>>,
}

impl<K> CurrentKey<K> {
    /// The current key with its key group and offset, not yet encoded.
    pub(crate) fn new(key: K, key_group: KeyGroup, offset: usize) -> Self {
        Self {
            key,
            key_group,
            offset,
            encoded: RefCell::new(Vec::new()),
        }
    }
}

impl<K: Serialize> CurrentKey<K> {
    /// Appends `key group | key` to `out`, encoding the key only on its first use.
    #[cfg_attr(not(feature = "rocksdb"), allow(dead_code))]
    pub(crate) fn append_encoded(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let mut encoded = self.encoded.borrow_mut();
        if encoded.is_empty() {
            encoded.extend_from_slice(&self.key_group.to_be_bytes());
            if let Err(e) = encode_into(&self.key, &mut encoded) {
                encoded.clear();
                return Err(e);
            }
        }
        out.extend_from_slice(&encoded);
        Ok(())
    }
}

/// Key-group layout of a backend plus its current key.
pub(crate) struct KeyContext<K> {
    current: RefCell<Option<CurrentKey<K>>>,
    range: KeyGroupRange,
    max_parallelism: u16,
}

impl<K: std::hash::Hash> KeyContext<K> {
    pub(crate) fn new(range: KeyGroupRange, max_parallelism: u16) -> Self {
        assert!(max_parallelism > 0, "max_parallelism must be positive");
        Self {
            current: RefCell::new(None),
            range,
            max_parallelism,
        }
    }

    pub(crate) fn range(&self) -> KeyGroupRange {
        self.range
    }

    pub(crate) fn max_parallelism(&self) -> u16 {
        self.max_parallelism
    }

    /// Sets the current key, rejecting keys outside the range (the previous
    /// key then stays current).
    pub(crate) fn set(&self, key: K) -> Result<(), StateError> {
        let key_group = assign_to_key_group(key_hash(&key), self.max_parallelism);
        let offset = self
            .range
            .offset_of(key_group)
            .ok_or(StateError::KeyGroupOutOfRange {
                key_group,
                range: self.range,
            })?;
        let mut current = self.current.borrow_mut();
        match current.as_mut() {
            // Keeps the encoding buffer's allocation from key to key.
            Some(cur) => {
                cur.key = key;
                cur.key_group = key_group;
                cur.offset = offset;
                cur.encoded.get_mut().clear();
            }
            None => *current = Some(CurrentKey::new(key, key_group, offset)),
        }
        Ok(())
    }

    /// Runs `f` with the current key, if any.
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&CurrentKey<K>>) -> R) -> R {
        f(self.current.borrow().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoded_key_is_made_once_per_key_and_dropped_when_the_key_changes() {
        let ctx = KeyContext::new(KeyGroupRange::new(0, 128), 128);
        ctx.set(7u32).unwrap();
        let mut first = Vec::new();
        ctx.with(|cur| cur.unwrap().append_encoded(&mut first))
            .unwrap();
        let kg = assign_to_key_group(key_hash(&7u32), 128);
        assert_eq!(&first[..2], &kg.to_be_bytes());
        let mut again = vec![1];
        ctx.with(|cur| cur.unwrap().append_encoded(&mut again))
            .unwrap();
        assert_eq!(&again[1..], &first[..], "appended after what was there");
        ctx.set(300u32).unwrap();
        let mut other = Vec::new();
        ctx.with(|cur| cur.unwrap().append_encoded(&mut other))
            .unwrap();
        let mut want = assign_to_key_group(key_hash(&300u32), 128)
            .to_be_bytes()
            .to_vec();
        encode_into(&300u32, &mut want).unwrap();
        assert_eq!(other, want);
    }

    #[test]
    fn current_key_caches_its_key_group_and_offset_in_the_range() {
        let range = KeyGroupRange::new(0, 16);
        let ctx = KeyContext::new(range, 16);
        ctx.with(|cur| assert!(cur.is_none()));
        ctx.set(42u64).unwrap();
        let kg = assign_to_key_group(key_hash(&42u64), 16);
        ctx.with(|cur| {
            let cur = cur.unwrap();
            assert_eq!(
                (cur.key, cur.key_group, cur.offset),
                (42, kg, usize::from(kg))
            );
        });
    }
}
