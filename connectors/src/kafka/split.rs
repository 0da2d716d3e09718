//! Which partitions a reader owns, and where it starts reading each.
//!
//! Invariants:
//! - Ownership is a pure function of topic, partition and parallelism
//!   ([`owner`]; the same rule as Flink's Kafka source enumerator), so every reader
//!   decides alone, and a partition discovered later has exactly one owner.
//! - A [`KafkaSplit`] holds concrete offsets only: the next offset to read and, in bounded
//!   mode, the offset to stop before. Starting offsets are resolved against the broker
//!   once, when a partition is first seen; after that the split's position is what the
//!   checkpoint holds.

use serde::{Deserialize, Serialize};
use std::time::Duration;
use weir_runtime::Timestamp;

/// Where a partition that no checkpoint covers starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartingOffsets {
    /// The earliest offset the broker still has (the default).
    #[default]
    Earliest,
    /// The end of the partition when the reader first sees it.
    Latest,
    /// The first record whose timestamp is at or after this one (milliseconds); the end
    /// if there is none.
    Timestamp(Timestamp),
    /// The consumer group's committed offset, or `reset` where it has none.
    Committed {
        /// Where to start without a committed offset.
        reset: OffsetReset,
    },
}

/// Where to start where the group has no committed offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OffsetReset {
    /// At the earliest offset.
    #[default]
    Earliest,
    /// At the end.
    Latest,
}

/// One partition's read position, as checkpointed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaSplit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset of the next record to read.
    pub next_offset: i64,
    /// Bounded mode: the end offset (exclusive) taken when the job first saw the partition.
    pub stop: Option<i64>,
}

impl KafkaSplit {
    /// Whether a bounded split has been read to its end.
    pub fn is_finished(&self) -> bool {
        self.stop.is_some_and(|s| self.next_offset >= s)
    }
}

/// Java's `String.hashCode`, so that assignment matches Flink's.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Returns the reader (of `parallelism`) that owns `partition` of `topic`: the topic's
/// partitions are dealt round-robin from a start index that depends on the topic.
pub fn owner(topic: &str, partition: i32, parallelism: u16) -> u16 {
    let p = i64::from(parallelism.max(1));
    let start = i64::from(java_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) % p;
    ((start + i64::from(partition)) % p) as u16
}

/// How often an unbounded source looks for new partitions by default (Flink's default).
pub const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_partitions_of_a_topic_are_dealt_round_robin_over_all_readers() {
        for p in 1..=7u16 {
            let mut count = vec![0; usize::from(p)];
            for partition in 0..(3 * i32::from(p)) {
                count[usize::from(owner("readings", partition, p))] += 1;
            }
            assert!(count.iter().all(|&c| c == 3), "parallelism {p}: {count:?}");
        }
    }

    #[test]
    fn ownership_matches_flinks_enumerator() {
        // Java: "test-topic".hashCode() == 639758388; (639758388 * 31) & 0x7FFFFFFF is
        // 505157196, which is 0 modulo 4 and 1 modulo 5.
        assert_eq!(java_hash("test-topic"), 639_758_388);
        assert_eq!(owner("test-topic", 0, 4), 0);
        assert_eq!(owner("test-topic", 1, 4), 1);
        assert_eq!(owner("test-topic", 0, 5), 1);
        assert_eq!(owner("test-topic", 4, 5), 0);
    }

    #[test]
    fn a_bounded_split_is_finished_at_its_stop_offset() {
        let mut s = KafkaSplit {
            topic: "t".into(),
            partition: 0,
            next_offset: 3,
            stop: Some(5),
        };
        assert!(!s.is_finished());
        s.next_offset = 5;
        assert!(s.is_finished());
        s.stop = None;
        assert!(!s.is_finished());
    }
}
