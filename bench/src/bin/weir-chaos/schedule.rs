//! The fault schedule: drawn from a seed, so that any run can be replayed.
//!
//! Invariants: the same seed, fault count and kinds always give the same schedule (a
//! SplitMix64 stream, no other source of randomness); every fault has a kind among those
//! asked for, a pause before it and, for freezes and restarts, how long it lasts.

use std::fmt;

/// One kind of fault the harness injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum FaultKind {
    /// `kill -9` of a TaskManager (a new one is started in its place).
    KillTaskmanager,
    /// `kill -9` of a TaskManager's job worker process.
    KillWorker,
    /// `kill -9` of the leading JobManager (the standby takes over; a new standby starts).
    KillJobmanager,
    /// SIGSTOP of a TaskManager, SIGCONT after a while: it looks dead and comes back.
    FreezeTaskmanager,
    /// SIGSTOP of a job worker, SIGCONT after a while.
    FreezeWorker,
    /// SIGSTOP of the serving JobManager, SIGCONT after a while (its ZooKeeper session may
    /// expire meanwhile: the standby takes over and the frozen one must step down).
    FreezeJobmanager,
    /// ZooKeeper killed and started again on the same data and port after a while.
    RestartZookeeper,
    /// One file of the latest complete checkpoint truncated, corrupted or deleted, then a
    /// job worker killed: the restore must skip that checkpoint for an older one.
    CorruptCheckpoint,
    /// The checkpoint storage (a small `tmpfs`, or the ext4 of slow storage) filled up for
    /// a while: checkpoints fail until space is freed.
    FillCheckpointStorage,
    /// A TaskManager's network link taken down for a while (it keeps running, cut off from
    /// the JobManagers and its peers) and brought up again; the cluster then runs in
    /// network namespaces.
    PartitionTaskmanager,
    /// A TaskManager cut off from the control plane (ZooKeeper and the JobManagers) only,
    /// for a while; its links to its peers stay.
    PartitionTaskmanagerFromJobmanager,
    /// A TaskManager cut off from the other TaskManagers only, for a while; its link to
    /// the control plane stays.
    PartitionTaskmanagerFromPeers,
    /// A TaskManager's link made slow and lossy for a while: both directions shaped to a
    /// low rate with a short queue (`tc` token bucket), so packets wait in the queue
    /// (delay) and those that would wait longer are dropped (loss).
    SlowTaskmanagerLink,
    /// The checkpoint storage (an ext4 file system on a loop device) throttled to a
    /// trickle of writes for a while (the block I/O controller): checkpoints, whose files
    /// are fsynced, take seconds instead of milliseconds.
    SlowCheckpointStorage,
    /// PostgreSQL (the sequence lines' exactly-once sink) shut down at once, as in a crash,
    /// and started again on the same data and port after a while.
    RestartPostgres,
    /// The Kafka broker (the window lines' exactly-once sink) stopped and started again on
    /// the same data and port after a while.
    RestartKafka,
}

impl FaultKind {
    /// The kinds a run draws from unless told otherwise: all but the restarts of the
    /// sinks' servers, whose runs cannot damage checkpoints
    /// ([`FaultKind::conflicts_with`]).
    pub const DEFAULT: [FaultKind; 14] = [
        FaultKind::KillTaskmanager,
        FaultKind::KillWorker,
        FaultKind::KillJobmanager,
        FaultKind::FreezeTaskmanager,
        FaultKind::FreezeWorker,
        FaultKind::FreezeJobmanager,
        FaultKind::RestartZookeeper,
        FaultKind::CorruptCheckpoint,
        FaultKind::FillCheckpointStorage,
        FaultKind::PartitionTaskmanager,
        FaultKind::PartitionTaskmanagerFromJobmanager,
        FaultKind::PartitionTaskmanagerFromPeers,
        FaultKind::SlowTaskmanagerLink,
        FaultKind::SlowCheckpointStorage,
    ];

    /// Whether the kind restarts a server the job's sinks write to (the job then writes
    /// to PostgreSQL and Kafka instead of files).
    pub fn restarts_a_sink(self) -> bool {
        matches!(self, FaultKind::RestartPostgres | FaultKind::RestartKafka)
    }

    /// Whether one run cannot inject both kinds: a damaged checkpoint makes the job
    /// restore an older one and replay records that the PostgreSQL and Kafka sinks have
    /// already committed (a file sink deletes them; a two-phase-commit sink into a server
    /// is exactly-once from the latest complete checkpoint only, as in Flink).
    pub fn conflicts_with(self, other: FaultKind) -> bool {
        let damages = |k: FaultKind| k == FaultKind::CorruptCheckpoint;
        (damages(self) && other.restarts_a_sink()) || (damages(other) && self.restarts_a_sink())
    }

    /// Whether the kind needs the cluster in network namespaces of its own (partitions and
    /// slow links).
    pub fn partitions(self) -> bool {
        matches!(
            self,
            FaultKind::PartitionTaskmanager
                | FaultKind::PartitionTaskmanagerFromJobmanager
                | FaultKind::PartitionTaskmanagerFromPeers
                | FaultKind::SlowTaskmanagerLink
        )
    }

    /// The kind's name in the report (`kill-taskmanager`, ...).
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::KillTaskmanager => "kill-taskmanager",
            FaultKind::KillWorker => "kill-worker",
            FaultKind::KillJobmanager => "kill-jobmanager",
            FaultKind::FreezeTaskmanager => "freeze-taskmanager",
            FaultKind::FreezeWorker => "freeze-worker",
            FaultKind::FreezeJobmanager => "freeze-jobmanager",
            FaultKind::RestartZookeeper => "restart-zookeeper",
            FaultKind::CorruptCheckpoint => "corrupt-checkpoint",
            FaultKind::FillCheckpointStorage => "fill-checkpoint-storage",
            FaultKind::PartitionTaskmanager => "partition-taskmanager",
            FaultKind::PartitionTaskmanagerFromJobmanager => {
                "partition-taskmanager-from-jobmanager"
            }
            FaultKind::PartitionTaskmanagerFromPeers => "partition-taskmanager-from-peers",
            FaultKind::SlowTaskmanagerLink => "slow-taskmanager-link",
            FaultKind::SlowCheckpointStorage => "slow-checkpoint-storage",
            FaultKind::RestartPostgres => "restart-postgres",
            FaultKind::RestartKafka => "restart-kafka",
        }
    }
}

/// One scheduled fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// What is done.
    pub kind: FaultKind,
    /// How long to wait, once the job recovered from the previous fault, before this one.
    pub pause_ms: u64,
    /// How long a freeze, an outage, a partition or a slowed link or storage lasts (0 for
    /// kills and damaged checkpoints).
    pub hold_ms: u64,
    /// Which process of its kind is hit, as an index taken modulo their number.
    pub target: u64,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (target {}) after {} ms",
            self.kind.name(),
            self.target,
            self.pause_ms
        )?;
        if self.hold_ms > 0 {
            write!(f, ", held {} ms", self.hold_ms)?;
        }
        Ok(())
    }
}

/// A SplitMix64 generator: small, fast and the same everywhere.
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// `count` faults of `kinds` ([`FaultKind::DEFAULT`] when empty) drawn from `seed`: pauses of
/// 0.5–2 s, freezes, partitions and slow links of 0.5–4 s (on both sides of the heartbeat
/// timeout the harness sets), outages of ZooKeeper, PostgreSQL and Kafka, full and slow
/// storage of 0.5–3 s.
pub fn draw(seed: u64, count: usize, kinds: &[FaultKind]) -> Vec<Fault> {
    let kinds = if kinds.is_empty() {
        &FaultKind::DEFAULT[..]
    } else {
        kinds
    };
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            let kind = kinds[(rng.next_u64() % kinds.len() as u64) as usize];
            let hold_ms = match kind {
                FaultKind::FreezeTaskmanager
                | FaultKind::FreezeWorker
                | FaultKind::FreezeJobmanager
                | FaultKind::PartitionTaskmanager
                | FaultKind::PartitionTaskmanagerFromJobmanager
                | FaultKind::PartitionTaskmanagerFromPeers
                | FaultKind::SlowTaskmanagerLink => rng.between(500, 4_000),
                FaultKind::RestartZookeeper
                | FaultKind::RestartPostgres
                | FaultKind::RestartKafka
                | FaultKind::FillCheckpointStorage
                | FaultKind::SlowCheckpointStorage => rng.between(500, 3_000),
                _ => 0,
            };
            Fault {
                kind,
                pause_ms: rng.between(500, 2_000),
                hold_ms,
                target: rng.next_u64() % 1_000,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind.
    fn all() -> &'static [FaultKind] {
        <FaultKind as clap::ValueEnum>::value_variants()
    }

    #[test]
    fn a_seed_always_draws_the_same_schedule() {
        assert_eq!(draw(7, 50, &[]), draw(7, 50, &[]));
        assert_ne!(draw(7, 50, &[]), draw(8, 50, &[]));
    }

    #[test]
    fn a_schedule_draws_only_the_kinds_asked_for_and_all_of_them_in_a_long_run() {
        let only = [FaultKind::KillWorker, FaultKind::RestartZookeeper];
        let faults = draw(3, 200, &only);
        assert!(faults.iter().all(|f| only.contains(&f.kind)));
        for kind in FaultKind::DEFAULT {
            assert!(draw(3, 200, &[]).iter().any(|f| f.kind == kind), "{kind:?}");
        }
        for &kind in all() {
            let drawn = draw(3, 200, all());
            assert!(drawn.iter().any(|f| f.kind == kind), "{kind:?}");
        }
    }

    #[test]
    fn damaged_checkpoints_conflict_only_with_restarts_of_the_sinks_servers() {
        let sinks = [FaultKind::RestartPostgres, FaultKind::RestartKafka];
        for &a in all() {
            for &b in all() {
                let expected = (a == FaultKind::CorruptCheckpoint && sinks.contains(&b))
                    || (b == FaultKind::CorruptCheckpoint && sinks.contains(&a));
                assert_eq!(a.conflicts_with(b), expected, "{a:?} {b:?}");
            }
        }
        assert!(FaultKind::DEFAULT.iter().all(|k| !k.restarts_a_sink()));
        assert_eq!(all().len(), FaultKind::DEFAULT.len() + sinks.len());
    }

    #[test]
    fn only_freezes_and_outages_are_held() {
        for f in draw(11, 200, all()) {
            let held = !matches!(
                f.kind,
                FaultKind::KillTaskmanager
                    | FaultKind::KillWorker
                    | FaultKind::KillJobmanager
                    | FaultKind::CorruptCheckpoint
            );
            assert_eq!(f.hold_ms > 0, held, "{f}");
            assert!((500..=2_000).contains(&f.pause_ms), "{f}");
        }
    }
}
