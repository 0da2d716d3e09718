//! Flink's key-group model: the unit of keyed-state redistribution.
//!
//! Every key hashes to one of `max_parallelism` key groups, and every operator
//! subtask owns a contiguous [`KeyGroupRange`]. Rescaling moves whole key
//! groups between subtasks, never individual keys.
//!
//! Invariants:
//! - [`key_hash`] is deterministic across processes and runs (no random seed),
//!   so a key lands in the same key group after a restore.
//! - For every `parallelism <= max_parallelism`, the ranges returned by
//!   [`KeyGroupRange::for_operator`] partition `0..max_parallelism`, and key
//!   group `kg` lies in the range of operator
//!   [`operator_index_for_key_group`]`(max, parallelism, kg)`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Range;

use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};

/// Default number of key groups (the upper bound of an operator's parallelism).
pub const DEFAULT_MAX_PARALLELISM: u16 = 128;

/// Index of a key group, in `0..max_parallelism`.
pub type KeyGroup = u16;

/// Hashes a key deterministically (FxHash followed by the murmur3 `fmix64`
/// finalizer so that low bits are well spread for the modulo).
///
/// The value depends only on the key's `Hash` implementation, not on the
/// process or run; it is stable on a given platform and crate version.
pub fn key_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = FxHasher::default();
    key.hash(&mut hasher);
    fmix64(hasher.finish())
}

/// The murmur3 64-bit finalizer: an avalanche over all bits.
const fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// Maps a key hash to its key group (`hash % max_parallelism`).
///
/// # Panics
/// Panics if `max_parallelism` is zero.
#[inline]
pub fn assign_to_key_group(hash: u64, max_parallelism: u16) -> KeyGroup {
    assert!(max_parallelism > 0, "max_parallelism must be positive");
    if max_parallelism.is_power_of_two() {
        // The same remainder without a division (the default, 128, is a power of two).
        (hash & u64::from(max_parallelism - 1)) as KeyGroup
    } else {
        (hash % u64::from(max_parallelism)) as KeyGroup
    }
}

/// The operator subtask owning `key_group` (`kg * parallelism / max_parallelism`).
///
/// # Panics
/// Panics if `max_parallelism` is zero.
pub fn operator_index_for_key_group(
    max_parallelism: u16,
    parallelism: u16,
    key_group: KeyGroup,
) -> u16 {
    assert!(max_parallelism > 0, "max_parallelism must be positive");
    (u64::from(key_group) * u64::from(parallelism) / u64::from(max_parallelism)) as u16
}

/// A contiguous range of key groups, `start..end` (end exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyGroupRange {
    /// First key group in the range.
    pub start: KeyGroup,
    /// One past the last key group in the range.
    pub end: KeyGroup,
}

impl KeyGroupRange {
    /// The range `start..end`; an `end` below `start` gives an empty range.
    pub const fn new(start: KeyGroup, end: KeyGroup) -> Self {
        let end = if end < start { start } else { end };
        Self { start, end }
    }

    /// All key groups `0..max_parallelism` (a subtask of parallelism 1).
    pub const fn all(max_parallelism: u16) -> Self {
        Self::new(0, max_parallelism)
    }

    /// The key groups owned by subtask `operator_index` of `parallelism`.
    ///
    /// # Panics
    /// Panics if `parallelism` is zero or `operator_index >= parallelism`.
    pub fn for_operator(max_parallelism: u16, parallelism: u16, operator_index: u16) -> Self {
        assert!(
            parallelism > 0 && operator_index < parallelism,
            "operator index {operator_index} is invalid for parallelism {parallelism}"
        );
        let bound = |index: u16| -> KeyGroup {
            (u64::from(index) * u64::from(max_parallelism)).div_ceil(u64::from(parallelism))
                as KeyGroup
        };
        Self::new(bound(operator_index), bound(operator_index + 1))
    }

    /// Number of key groups in the range.
    pub const fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Whether the range holds no key group.
    pub const fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// Whether `key_group` lies in the range.
    pub const fn contains(&self, key_group: KeyGroup) -> bool {
        key_group >= self.start && key_group < self.end
    }

    /// Position of `key_group` within the range, if it lies in it.
    pub const fn offset_of(&self, key_group: KeyGroup) -> Option<usize> {
        if self.contains(key_group) {
            Some((key_group - self.start) as usize)
        } else {
            None
        }
    }

    /// Whether the two ranges share at least one key group.
    pub const fn intersects(&self, other: &KeyGroupRange) -> bool {
        !self.is_empty() && !other.is_empty() && self.start < other.end && other.start < self.end
    }

    /// The key groups of the range, in ascending order.
    pub fn iter(&self) -> Range<KeyGroup> {
        self.start..self.end
    }
}

impl fmt::Display for KeyGroupRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {})", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_hash_is_stable_across_runs() {
        // Pinned values: a change here breaks restoring existing snapshots.
        let pinned = [
            0x0,
            0x5b01_c098_6128_f248,
            0x626b_e663_ada2_3040,
            0xa5a6_f7f2_b257_691b,
        ];
        let hashes: Vec<u64> = (0u64..4).map(|k| key_hash(&k)).collect();
        assert_eq!(hashes, pinned);
        assert_eq!(key_hash("weir"), 0xc209_f1f9_542f_c2e6);
        assert_eq!(key_hash("weir"), key_hash(&"weir".to_owned()));
    }

    #[test]
    fn sequential_keys_spread_evenly_over_key_groups() {
        let mut counts = vec![0u32; usize::from(DEFAULT_MAX_PARALLELISM)];
        for key in 0u64..128_000 {
            counts[usize::from(assign_to_key_group(key_hash(&key), DEFAULT_MAX_PARALLELISM))] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 800 && *max < 1200, "min {min} max {max}");
    }

    #[test]
    fn range_basics_follow_half_open_semantics() {
        let r = KeyGroupRange::new(4, 8);
        assert_eq!(r.len(), 4);
        assert!(r.contains(4) && r.contains(7) && !r.contains(8) && !r.contains(3));
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![4, 5, 6, 7]);
        assert_eq!(r.offset_of(6), Some(2));
        assert_eq!(r.offset_of(8), None);
        assert!(KeyGroupRange::new(5, 2).is_empty());
        assert!(r.intersects(&KeyGroupRange::new(7, 9)));
        assert!(!r.intersects(&KeyGroupRange::new(8, 9)));
        assert_eq!(r.to_string(), "[4, 8)");
    }

    #[test]
    fn operator_ranges_match_flink_for_128_key_groups() {
        assert_eq!(
            KeyGroupRange::for_operator(128, 3, 0),
            KeyGroupRange::new(0, 43)
        );
        assert_eq!(
            KeyGroupRange::for_operator(128, 3, 1),
            KeyGroupRange::new(43, 86)
        );
        assert_eq!(
            KeyGroupRange::for_operator(128, 3, 2),
            KeyGroupRange::new(86, 128)
        );
        assert_eq!(
            KeyGroupRange::for_operator(128, 1, 0),
            KeyGroupRange::all(128)
        );
    }

    fn max_and_parallelism() -> impl Strategy<Value = (u16, u16)> {
        (1u16..=2048).prop_flat_map(|max| (Just(max), 1..=max))
    }

    proptest! {
        #[test]
        fn every_key_group_maps_back_to_the_operator_whose_range_contains_it(
            (max, parallelism) in max_and_parallelism()
        ) {
            let ranges: Vec<KeyGroupRange> = (0..parallelism)
                .map(|i| KeyGroupRange::for_operator(max, parallelism, i))
                .collect();
            prop_assert_eq!(ranges[0].start, 0);
            prop_assert_eq!(ranges[ranges.len() - 1].end, max);
            for pair in ranges.windows(2) {
                prop_assert_eq!(pair[0].end, pair[1].start);
            }
            for kg in 0..max {
                let op = operator_index_for_key_group(max, parallelism, kg);
                prop_assert!(ranges[usize::from(op)].contains(kg), "kg {} op {}", kg, op);
            }
        }

        #[test]
        fn a_key_group_is_the_hash_modulo_max_parallelism(hash in any::<u64>(), shift in 0u32..16, max in 1u16..) {
            let power = 1u16 << shift;
            prop_assert_eq!(u64::from(assign_to_key_group(hash, power)), hash % u64::from(power));
            prop_assert_eq!(u64::from(assign_to_key_group(hash, max)), hash % u64::from(max));
        }

        #[test]
        fn assigned_key_groups_are_below_max_parallelism(hash in any::<u64>(), max in 1u16..) {
            prop_assert!(assign_to_key_group(hash, max) < max);
        }
    }
}
