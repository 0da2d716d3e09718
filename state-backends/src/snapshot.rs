//! Owned, immutable snapshots of keyed state, grouped per key group.
//!
//! The bytes of one key group are a `u64` entry count followed by that many
//! encoded entries (for keyed state `(key, namespace, value)` tuples, for
//! timers `(key, namespace, timestamp)`), so a restoring subtask takes exactly
//! the key groups it owns without decoding the others.
//!
//! Invariants:
//! - Every [`KeyGroupBytes`] of a snapshot lies in the snapshot's
//!   `key_group_range`; restore checks this, the max parallelism, and that
//!   snapshots restored together do not overlap.
//! - Snapshot bytes are backend independent: any backend can restore any
//!   backend's snapshot.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{self, decode_from, encode_into};
use crate::error::StateError;
use crate::key_group::{KeyGroup, KeyGroupRange};
use crate::state_kind::StateKind;

/// The serialized entries of one key group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGroupBytes {
    /// The key group.
    pub key_group: KeyGroup,
    /// Entry count followed by the encoded entries: written as a byte string, copied at
    /// once, which encodes as the sequence of `u8` it is read back as (a sequence, whose
    /// reading allocates no more than the bytes there, whatever length they claim).
    #[serde(serialize_with = "serde_bytes::serialize")]
    pub bytes: Vec<u8>,
}

/// The snapshot of one named state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Name the state was registered under.
    pub name: String,
    /// Kind of the state.
    pub kind: StateKind,
    /// Non-empty key groups, in ascending order.
    pub key_groups: Vec<KeyGroupBytes>,
}

/// The snapshot of all keyed state of one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedStateSnapshot {
    /// Total number of key groups the snapshot was taken with.
    pub max_parallelism: u16,
    /// Key groups owned by the snapshotted backend.
    pub key_group_range: KeyGroupRange,
    /// Every state, sorted by name.
    pub states: Vec<StateSnapshot>,
}

impl KeyedStateSnapshot {
    const WHAT: &'static str = "keyed state snapshot";

    /// Encodes the snapshot as a versioned, checksummed blob.
    pub fn to_bytes(&self) -> Result<Vec<u8>, StateError> {
        codec::encode_versioned(self).map_err(|e| StateError::codec(Self::WHAT, e))
    }

    /// About the size of the snapshot's encoding: the bytes of its key groups.
    pub fn encoded_len_hint(&self) -> usize {
        let groups = self.states.iter().flat_map(|s| &s.key_groups);
        groups.map(|g| g.bytes.len() + 16).sum::<usize>() + 64 * self.states.len() + 64
    }

    /// Decodes a blob written by [`KeyedStateSnapshot::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StateError> {
        codec::decode_versioned(bytes, Self::WHAT).map_err(|e| StateError::codec(Self::WHAT, e))
    }
}

/// The start of one key group's bytes: its entry count, with room for `capacity` more
/// bytes of entries.
pub(crate) fn group_start(count: u64, capacity: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(10 + capacity);
    encode_into(&count, &mut bytes).expect("a u64 always encodes");
    bytes
}

/// The most [`encode_group`] reserves for a group's entries ahead of encoding them.
const RESERVE_AT_MOST: usize = 16 << 20;

/// Encodes one key group: the entry count, then every entry.
pub(crate) fn encode_group<T: Serialize>(
    count: usize,
    entries: impl IntoIterator<Item = T>,
    what: impl Fn() -> String,
) -> Result<Vec<u8>, StateError> {
    let mut bytes = group_start(count as u64, 0);
    let mut written = 0usize;
    for entry in entries {
        let before = bytes.len();
        encode_into(&entry, &mut bytes).map_err(|e| StateError::codec(what(), e))?;
        written += 1;
        if written == 1 {
            // Room for the rest if they encode about as long as the first (at most
            // `RESERVE_AT_MOST`: the first may be much longer than the others), so a
            // large group is not copied again and again as it grows.
            let first = bytes.len() - before;
            let rest = first.saturating_mul(count.saturating_sub(1));
            bytes.reserve(rest.min(RESERVE_AT_MOST));
        }
    }
    debug_assert_eq!(written, count, "entry count of {}", what());
    Ok(bytes)
}

/// Decodes one key group written by [`encode_group`], passing each entry to
/// `sink`; rejects truncated groups and trailing bytes.
pub(crate) fn decode_group<T: DeserializeOwned>(
    bytes: &[u8],
    what: impl Fn() -> String,
    mut sink: impl FnMut(T) -> Result<(), StateError>,
) -> Result<(), StateError> {
    let (count, mut pos): (u64, usize) =
        decode_from(bytes).map_err(|e| StateError::codec(what(), e))?;
    for _ in 0..count {
        let (entry, used): (T, usize) =
            decode_from(&bytes[pos..]).map_err(|e| StateError::codec(what(), e))?;
        pos += used;
        sink(entry)?;
    }
    if pos != bytes.len() {
        return Err(StateError::codec(
            what(),
            codec::CodecError::TrailingBytes {
                what: "key group".to_owned(),
                extra: bytes.len() - pos,
            },
        ));
    }
    Ok(())
}

/// Checks that snapshots restored together agree with the restoring layout:
/// same max parallelism, pairwise disjoint ranges, and every key group inside
/// its snapshot's range. `parts` yields `(max_parallelism, range, key groups)`.
pub(crate) fn check_restore_layout<'a>(
    what: &str,
    expected_max_parallelism: u16,
    parts: impl Iterator<Item = (u16, KeyGroupRange, Vec<(&'a str, KeyGroup)>)>,
) -> Result<(), StateError> {
    let mut seen: Vec<KeyGroupRange> = Vec::new();
    for (max_parallelism, range, groups) in parts {
        if max_parallelism != expected_max_parallelism {
            return Err(StateError::MaxParallelismMismatch {
                what: what.to_owned(),
                found: max_parallelism,
                expected: expected_max_parallelism,
            });
        }
        if let Some(other) = seen.iter().find(|other| other.intersects(&range)) {
            return Err(StateError::OverlappingSnapshots {
                what: what.to_owned(),
                first: *other,
                second: range,
            });
        }
        seen.push(range);
        if let Some((state, key_group)) = groups.into_iter().find(|(_, kg)| !range.contains(*kg)) {
            return Err(StateError::KeyGroupOutsideSnapshot {
                state: state.to_owned(),
                key_group,
                range,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what() -> String {
        "test group".to_owned()
    }

    /// [`KeyGroupBytes`] as it was declared before its bytes were written as a byte string.
    #[derive(Serialize)]
    struct SequenceKeyGroupBytes {
        key_group: KeyGroup,
        bytes: Vec<u8>,
    }

    #[test]
    fn key_group_bytes_encode_as_before_and_read_back() {
        let bytes: Vec<u8> = (0..300u16).map(|i| (i * 7) as u8).collect();
        let group = KeyGroupBytes {
            key_group: 5,
            bytes: bytes.clone(),
        };
        let (mut new, mut old) = (Vec::new(), Vec::new());
        encode_into(&group, &mut new).unwrap();
        let before = SequenceKeyGroupBytes {
            key_group: 5,
            bytes,
        };
        encode_into(&before, &mut old).unwrap();
        assert_eq!(new, old, "the same encoding, so older checkpoints read");
        let (read, used): (KeyGroupBytes, usize) = decode_from(&new).unwrap();
        assert_eq!((read, used), (group, new.len()));
    }

    #[test]
    fn group_encoding_round_trips_entries_in_order() {
        let entries = vec![(1u32, "a".to_owned()), (2, "b".to_owned())];
        let bytes = encode_group(entries.len(), entries.iter(), what).unwrap();
        let mut back = Vec::new();
        decode_group::<(u32, String)>(&bytes, what, |e| {
            back.push(e);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, entries);
    }

    #[test]
    fn truncated_group_fails_with_context() {
        let bytes = encode_group(2, [(1u64, 2u64), (3, 4)], what).unwrap();
        let err =
            decode_group::<(u64, u64)>(&bytes[..bytes.len() - 1], what, |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("test group"), "{err}");
    }

    #[test]
    fn group_with_trailing_bytes_is_rejected() {
        let mut bytes = encode_group(1, [7u8], what).unwrap();
        bytes.push(0);
        assert!(decode_group::<u8>(&bytes, what, |_| Ok(())).is_err());
    }

    #[test]
    fn layout_check_rejects_foreign_max_parallelism_overlap_and_stray_groups() {
        let r1 = KeyGroupRange::new(0, 64);
        let r2 = KeyGroupRange::new(64, 128);
        let ok = [(128, r1, vec![("s", 3)]), (128, r2, vec![("s", 70)])];
        check_restore_layout("x", 128, ok.into_iter()).unwrap();
        let bad_max = [(64, r1, vec![])];
        assert!(matches!(
            check_restore_layout("x", 128, bad_max.into_iter()),
            Err(StateError::MaxParallelismMismatch {
                found: 64,
                expected: 128,
                ..
            })
        ));
        let overlap = [(128, r1, vec![]), (128, KeyGroupRange::new(10, 20), vec![])];
        assert!(matches!(
            check_restore_layout("x", 128, overlap.into_iter()),
            Err(StateError::OverlappingSnapshots { .. })
        ));
        let stray = [(128, r1, vec![("s", 100)])];
        assert!(matches!(
            check_restore_layout("x", 128, stray.into_iter()),
            Err(StateError::KeyGroupOutsideSnapshot { key_group: 100, .. })
        ));
    }
}
