//! Keys of the RocksDB backend: `key group (u16, big-endian) | key | namespace
//! [| user key]`, each part in the codec's encoding.
//!
//! Invariants:
//! - The codec's encodings are self-delimiting, so no encoded key or namespace is a
//!   proper prefix of another of the same type: `key group | key | namespace` is the
//!   exact prefix of the entries of one (key, namespace).
//! - The big-endian key group first keeps each key group one contiguous, ordered range.

use serde::Serialize;

use crate::codec::encode_into;
use crate::error::StateError;
use crate::key_group::KeyGroup;

/// Writes `key group | key | namespace` into `buf` (cleared first).
pub(crate) fn entry_prefix<K: Serialize, N: Serialize>(
    buf: &mut Vec<u8>,
    key_group: KeyGroup,
    key: &K,
    ns: &N,
    state: &str,
) -> Result<(), StateError> {
    buf.clear();
    buf.extend_from_slice(&key_group.to_be_bytes());
    encode_into(key, buf).map_err(|e| StateError::codec(format!("key of state '{state}'"), e))?;
    encode_into(ns, buf).map_err(|e| StateError::codec(format!("namespace of state '{state}'"), e))
}

/// The first key of key group `key_group` (and the end of the one before it).
pub(crate) fn group_key(key_group: KeyGroup) -> [u8; 2] {
    key_group.to_be_bytes()
}

/// Past every stored key: key groups stay below 0x8000, so no key starts with 0xff.
pub(crate) const PAST_ALL_KEYS: [u8; 1] = [0xff];

/// The key group of a stored key.
pub(crate) fn key_group_of(key: &[u8]) -> Option<KeyGroup> {
    Some(KeyGroup::from_be_bytes(key.get(..2)?.try_into().ok()?))
}

/// The smallest key greater than every key starting with `prefix` (`None`: no such
/// key, every key from `prefix` on matches).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prefix_end_bounds_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255, 255]), None);
    }

    #[test]
    fn a_prefix_starts_with_the_big_endian_key_group() {
        let mut buf = vec![9, 9];
        entry_prefix(&mut buf, 258, &"k".to_string(), &7u8, "s").unwrap();
        assert_eq!(&buf[..2], &[1, 2]);
        assert_eq!(key_group_of(&buf), Some(258));
        let mut other = Vec::new();
        entry_prefix(&mut other, 258, &"kk".to_string(), &7u8, "s").unwrap();
        assert!(!other.starts_with(&buf), "keys are self-delimiting");
    }
}
