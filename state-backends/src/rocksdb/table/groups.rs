//! Assembly of snapshot key groups from a table's entries, met in key order.
//!
//! Invariants:
//! - Entries must arrive grouped by key group (a column family scan in key order
//!   guarantees it, the key group being the key's first two bytes); each key group
//!   becomes exactly one [`KeyGroupBytes`], its entry count and body length first (see
//!   [`group_start`]), then its entries as added.
//! - No key group without entries is ever emitted.

use crate::codec::encode_into;
use crate::key_group::KeyGroup;
use crate::snapshot::{group_start, KeyGroupBytes};

/// Assembles snapshot key groups from entries met in key order.
#[derive(Default)]
pub(super) struct Groups {
    out: Vec<KeyGroupBytes>,
    group: Option<KeyGroup>,
    count: u64,
    body: Vec<u8>,
}

impl Groups {
    /// The buffer of the next entry of `key_group`.
    pub(super) fn entry(&mut self, key_group: KeyGroup) -> &mut Vec<u8> {
        if self.group != Some(key_group) {
            self.flush();
            self.group = Some(key_group);
        }
        self.count += 1;
        &mut self.body
    }

    /// Adds an entry of `key_group`: `head`, then `count`, then `tail` (a list's or a
    /// map's length precedes its elements).
    pub(super) fn counted(&mut self, key_group: KeyGroup, head: &[u8], count: u64, tail: &[u8]) {
        let entry = self.entry(key_group);
        entry.extend_from_slice(head);
        encode_into(&count, entry).expect("a u64 always encodes");
        entry.extend_from_slice(tail);
    }

    fn flush(&mut self) {
        if let Some(key_group) = self.group.take() {
            let mut bytes = group_start(self.count, self.body.len());
            bytes.extend_from_slice(&self.body);
            self.out.push(KeyGroupBytes { key_group, bytes });
            self.count = 0;
            self.body.clear();
        }
    }

    pub(super) fn finish(mut self) -> Vec<KeyGroupBytes> {
        self.flush();
        self.out
    }
}
