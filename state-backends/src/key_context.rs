//! The current key shared by a keyed backend and all of its state handles.
//!
//! Invariants:
//! - The current key, when set, lies in the backend's key-group range, and its
//!   cached `offset` is `key_group - range.start`, so storage can index its
//!   per-key-group tables without recomputing the hash.
//! - The context is only touched from the subtask's thread (`Rc`/`RefCell`).

use std::cell::RefCell;

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
        *self.current.borrow_mut() = Some(CurrentKey {
            key,
            key_group,
            offset,
        });
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
