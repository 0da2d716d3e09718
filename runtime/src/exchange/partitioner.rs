//! Which channel of an output edge each record goes to: the edge's [`Partitioning`]
//! applied to one record.
//!
//! Invariants: a forward edge keeps a record on the producer's own subtask index (or the
//! last channel when the consumer has fewer); rebalancing cycles through every channel in
//! order; hashing sends every record of a key to the subtask that owns the key's key group
//! (the same assignment state restores use); a broadcast reaches every channel.

use crate::graph::Partitioning;
use weir_state_backends::{assign_to_key_group, operator_index_for_key_group};

/// Where one record goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// One channel.
    Channel(usize),
    /// Every channel.
    Broadcast,
}

/// Picks the channel of every record of one output edge.
#[derive(Clone, Debug)]
pub struct Partitioner {
    partitioning: Partitioning,
    channels: usize,
    max_parallelism: u16,
    subtask: usize,
    next: usize,
    /// Hash edges: the channel owning each key group (one lookup instead of a division
    /// per record).
    owners: Vec<u16>,
}

impl Partitioner {
    /// The partitioner of an edge with `channels` consumer channels, written by producer
    /// subtask `subtask`, whose keys fall into `max_parallelism` key groups.
    pub fn new(
        partitioning: Partitioning,
        channels: usize,
        max_parallelism: u16,
        subtask: usize,
    ) -> Self {
        let channels = channels.max(1);
        let owners = match partitioning {
            Partitioning::Hash => (0..max_parallelism)
                .map(|kg| operator_index_for_key_group(max_parallelism, channels as u16, kg))
                .collect(),
            _ => Vec::new(),
        };
        Self {
            partitioning,
            channels,
            max_parallelism,
            subtask,
            next: 0,
            owners,
        }
    }

    /// Returns where the next record goes; `key_hash` is asked only on a hash edge.
    #[inline]
    pub fn route(&mut self, key_hash: impl FnOnce() -> u64) -> Route {
        match self.partitioning {
            Partitioning::Forward => Route::Channel(self.subtask.min(self.channels - 1)),
            Partitioning::Rebalance => {
                let c = self.next;
                self.next = if c + 1 == self.channels { 0 } else { c + 1 };
                Route::Channel(c)
            }
            Partitioning::Hash => {
                let kg = assign_to_key_group(key_hash(), self.max_parallelism);
                Route::Channel(self.owners[kg as usize] as usize)
            }
            Partitioning::Broadcast => Route::Broadcast,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebalance_cycles_through_every_channel_and_forward_stays_on_its_subtask() {
        let mut p = Partitioner::new(Partitioning::Rebalance, 3, 128, 0);
        let picks: Vec<_> = (0..7).map(|_| p.route(|| 0)).collect();
        let want: Vec<_> = [0, 1, 2, 0, 1, 2, 0].map(Route::Channel).to_vec();
        assert_eq!(picks, want);
        let mut f = Partitioner::new(Partitioning::Forward, 2, 128, 5);
        assert_eq!(f.route(|| 0), Route::Channel(1));
        let mut b = Partitioner::new(Partitioning::Broadcast, 2, 128, 0);
        assert_eq!(b.route(|| 0), Route::Broadcast);
    }

    #[test]
    fn a_key_always_goes_to_the_subtask_owning_its_key_group() {
        let mut p = Partitioner::new(Partitioning::Hash, 4, 128, 0);
        for hash in [0u64, 1, 99, u64::MAX] {
            let kg = assign_to_key_group(hash, 128);
            let owner = operator_index_for_key_group(128, 4, kg) as usize;
            assert_eq!(p.route(|| hash), Route::Channel(owner));
            assert_eq!(p.route(|| hash), Route::Channel(owner));
        }
        for (max, channels) in [(100u16, 3usize), (7, 7), (1, 1), (u16::MAX, 5)] {
            let mut p = Partitioner::new(Partitioning::Hash, channels, max, 0);
            for hash in (0..2_000u64).chain([u64::MAX]) {
                let kg = (hash % u64::from(max)) as u16;
                let owner = operator_index_for_key_group(max, channels as u16, kg) as usize;
                assert_eq!(p.route(|| hash), Route::Channel(owner), "{max} {channels}");
            }
        }
    }
}
