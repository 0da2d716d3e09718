//! The job configuration keys, under Flink's names (`execution.checkpointing.*`,
//! `state.*`, `restart-strategy.*`, ...): read into [`super::JobSettings`] by the job
//! program's environment.
//!
//! Invariant: [`JOB`] lists every key here once, in the README's order.

use super::key::*;
use super::CheckpointingMode;
use std::path::PathBuf;
use std::time::Duration;
use weir_state_backends::StateBackendKind;

/// Which restart strategy `restart-strategy.type` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartKind {
    /// `none` (also `off`, `disable`).
    None,
    /// `fixed-delay`.
    FixedDelay,
    /// `exponential-delay`.
    ExponentialDelay,
    /// `failure-rate`.
    FailureRate,
}

/// A key for [`CheckpointingMode`].
fn checkpointing_mode(v: &str) -> Result<CheckpointingMode, &'static str> {
    match v.trim().to_ascii_uppercase().replace('-', "_").as_str() {
        "EXACTLY_ONCE" => Ok(CheckpointingMode::ExactlyOnce),
        "AT_LEAST_ONCE" => Ok(CheckpointingMode::AtLeastOnce),
        _ => Err("`EXACTLY_ONCE` or `AT_LEAST_ONCE`"),
    }
}

/// A key for [`StateBackendKind`].
fn backend_kind(v: &str) -> Result<StateBackendKind, &'static str> {
    v.trim()
        .parse()
        .map_err(|_| "`hashmap` (or `memory`) or `rocksdb`")
}

fn restart_kind(v: &str) -> Result<Option<RestartKind>, &'static str> {
    match v.trim().to_ascii_lowercase().replace('-', "").as_str() {
        "" => Ok(None),
        "none" | "off" | "disable" => Ok(Some(RestartKind::None)),
        "fixeddelay" => Ok(Some(RestartKind::FixedDelay)),
        "exponentialdelay" => Ok(Some(RestartKind::ExponentialDelay)),
        "failurerate" => Ok(Some(RestartKind::FailureRate)),
        _ => Err("`none`, `fixed-delay`, `exponential-delay` or `failure-rate`"),
    }
}

/// `parallelism.default`.
pub const PARALLELISM_DEFAULT: Key<Option<u16>> = Key {
    name: "parallelism.default",
    default: "",
    doc: "default parallelism of new operators (`weir run --parallelism`); none: the number of CPU cores",
    parse: optional_parallelism,
};

/// `pipeline.max-parallelism`.
pub const MAX_PARALLELISM: Key<u16> = Key {
    name: "pipeline.max-parallelism",
    default: "128",
    doc: "key groups: the upper bound for rescaling keyed state",
    parse: parallelism,
};

/// `execution.buffer-timeout`.
pub const BUFFER_TIMEOUT: Key<Duration> = Key {
    name: "execution.buffer-timeout",
    default: "100 ms",
    doc:
        "longest a partly filled network buffer waits before it is sent; 0 sends after every record",
    parse: duration,
};

/// `pipeline.auto-watermark-interval`.
pub const AUTO_WATERMARK_INTERVAL: Key<Duration> = Key {
    name: "pipeline.auto-watermark-interval",
    default: "200 ms",
    doc: "how often watermark generators emit; 0 emits after every record",
    parse: duration,
};

/// `taskmanager.network.buffer-size`.
pub const NETWORK_BUFFER_SIZE: Key<u64> = Key {
    name: "taskmanager.network.buffer-size",
    default: "32 kb",
    doc: "size of one network buffer; a larger record spans several",
    parse: size,
};

/// `execution.window.pre-aggregation.max-entries`.
pub const WINDOW_PRE_AGGREGATION: Key<u64> = Key {
    name: "execution.window.pre-aggregation.max-entries",
    default: "1000000",
    doc: "accumulators an aggregating event-time window keeps in memory per subtask before it spills them into the state backend; 0 reads and writes the backend per record",
    parse: number,
};

/// `taskmanager.network.memory.buffers-per-channel`.
pub const BUFFERS_PER_CHANNEL: Key<usize> = Key {
    name: "taskmanager.network.memory.buffers-per-channel",
    default: "2",
    doc: "buffers each input channel holds for itself (its exclusive credit), and each output channel adds to its pool",
    parse: positive,
};

/// `taskmanager.network.memory.floating-buffers-per-gate`.
pub const FLOATING_BUFFERS_PER_GATE: Key<u32> = Key {
    name: "taskmanager.network.memory.floating-buffers-per-gate",
    default: "8",
    doc: "buffers an input gate lends to its busiest channels, and each output adds to its pool",
    parse: count,
};

/// `taskmanager.network.memory.buffer-debloat.enabled`.
pub const BUFFER_DEBLOAT: Key<bool> = Key {
    name: "taskmanager.network.memory.buffer-debloat.enabled",
    default: "false",
    doc: "input gates size the buffers their producers fill to the throughput, so what a gate holds drains in about the target time (and barriers wait that long at most)",
    parse: boolean,
};

/// `taskmanager.network.memory.buffer-debloat.target`.
pub const BUFFER_DEBLOAT_TARGET: Key<Duration> = Key {
    name: "taskmanager.network.memory.buffer-debloat.target",
    default: "1 s",
    doc: "with debloating: the time in which the data an input gate holds should drain",
    parse: duration,
};

/// `taskmanager.network.memory.buffer-debloat.period`.
pub const BUFFER_DEBLOAT_PERIOD: Key<Duration> = Key {
    name: "taskmanager.network.memory.buffer-debloat.period",
    default: "200 ms",
    doc: "with debloating: how often the throughput is sampled and the buffer size set",
    parse: duration,
};

/// `taskmanager.network.memory.buffer-debloat.samples`.
pub const BUFFER_DEBLOAT_SAMPLES: Key<u32> = Key {
    name: "taskmanager.network.memory.buffer-debloat.samples",
    default: "20",
    doc: "with debloating: the samples the throughput is averaged over",
    parse: count,
};

/// `taskmanager.network.memory.buffer-debloat.threshold-percentages`.
pub const BUFFER_DEBLOAT_THRESHOLD: Key<u32> = Key {
    name: "taskmanager.network.memory.buffer-debloat.threshold-percentages",
    default: "25",
    doc:
        "with debloating: the least change of the buffer size, in percent, that producers are told",
    parse: count,
};

/// `execution.checkpointing.interval`.
pub const CHECKPOINTING_INTERVAL: Key<Option<Duration>> = Key {
    name: "execution.checkpointing.interval",
    default: "",
    doc: "time between checkpoint triggers; none: checkpointing is off",
    parse: optional_duration,
};

/// `execution.checkpointing.mode`.
pub const CHECKPOINTING_MODE: Key<CheckpointingMode> = Key {
    name: "execution.checkpointing.mode",
    default: "EXACTLY_ONCE",
    doc: "`EXACTLY_ONCE` aligns barriers; `AT_LEAST_ONCE` does not",
    parse: checkpointing_mode,
};

/// `execution.checkpointing.unaligned.enabled`.
pub const CHECKPOINTING_UNALIGNED: Key<bool> = Key {
    name: "execution.checkpointing.unaligned.enabled",
    default: "false",
    doc: "checkpoint barriers overtake the data in flight, which becomes part of the checkpoint, so checkpoints complete under back-pressure; needs `EXACTLY_ONCE`; savepoints stay aligned",
    parse: boolean,
};

/// `execution.checkpointing.aligned-checkpoint-timeout`.
pub const CHECKPOINTING_ALIGNED_TIMEOUT: Key<Duration> = Key {
    name: "execution.checkpointing.aligned-checkpoint-timeout",
    default: "0 ms",
    doc: "with unaligned checkpoints: barriers start aligned and overtake the data in flight once one waited this long at an output or an input; 0 starts them unaligned",
    parse: duration,
};

/// `execution.checkpointing.timeout`.
pub const CHECKPOINTING_TIMEOUT: Key<Duration> = Key {
    name: "execution.checkpointing.timeout",
    default: "10 min",
    doc: "a checkpoint not complete after this long is aborted",
    parse: duration,
};

/// `execution.checkpointing.min-pause`.
pub const CHECKPOINTING_MIN_PAUSE: Key<Duration> = Key {
    name: "execution.checkpointing.min-pause",
    default: "0 ms",
    doc: "least time from the end of one checkpoint to the trigger of the next",
    parse: duration,
};

/// `execution.checkpointing.max-concurrent-checkpoints`.
pub const MAX_CONCURRENT_CHECKPOINTS: Key<usize> = Key {
    name: "execution.checkpointing.max-concurrent-checkpoints",
    default: "1",
    doc: "checkpoints in progress at once",
    parse: positive,
};

/// `execution.checkpointing.tolerable-failed-checkpoints`.
pub const TOLERABLE_FAILED_CHECKPOINTS: Key<u32> = Key {
    name: "execution.checkpointing.tolerable-failed-checkpoints",
    default: "0",
    doc: "checkpoint failures in a row the job tolerates before it fails",
    parse: count,
};

/// `state.backend.type`.
pub const STATE_BACKEND_TYPE: Key<StateBackendKind> = Key {
    name: "state.backend.type",
    default: "hashmap",
    doc: "keyed state backend: `hashmap` (also `memory`: values on the heap) or `rocksdb` (needs the cargo feature `rocksdb`)",
    parse: backend_kind,
};

/// `state.backend.incremental`.
pub const STATE_BACKEND_INCREMENTAL: Key<bool> = Key {
    name: "state.backend.incremental",
    default: "true",
    doc: "RocksDB checkpoints upload only SST files a previous checkpoint did not; `false` writes full snapshots (savepoints are always full)",
    parse: boolean,
};

/// `state.backend.rocksdb.localdir`.
pub const ROCKSDB_LOCAL_DIR: Key<Option<PathBuf>> = Key {
    name: "state.backend.rocksdb.localdir",
    default: "",
    doc: "where each keyed subtask's RocksDB works (deleted when the subtask ends); none: the temporary directory",
    parse: optional_dir,
};

/// `state.backend.rocksdb.memory.managed-size`.
pub const ROCKSDB_MANAGED_SIZE: Key<u64> = Key {
    name: "state.backend.rocksdb.memory.managed-size",
    default: "128 mb",
    doc:
        "block cache and write buffers shared by the RocksDB instances of one slot (at least 8 mb)",
    parse: size,
};

/// `state.backend.rocksdb.value-cache.max-entries`.
pub const ROCKSDB_VALUE_CACHE: Key<u64> = Key {
    name: "state.backend.rocksdb.value-cache.max-entries",
    default: "65536",
    doc: "decoded values each value, reducing or aggregating state (and each map state, of its user entries) of a subtask keeps in a write-back cache in front of RocksDB; 0 reads and writes RocksDB on every access",
    parse: number,
};

/// `state.checkpoints.dir`.
pub const CHECKPOINTS_DIR: Key<Option<String>> = Key {
    name: "state.checkpoints.dir",
    default: "",
    doc: "where checkpoints are stored: `file:///absolute/dir` or `s3://bucket/path` (with the `s3.*` keys or the AWS variables); required with checkpointing",
    parse: optional,
};

/// `state.checkpoints.num-retained`.
pub const CHECKPOINTS_NUM_RETAINED: Key<usize> = Key {
    name: "state.checkpoints.num-retained",
    default: "1",
    doc: "completed checkpoints kept on storage",
    parse: positive,
};

/// `state.savepoints.dir`.
pub const SAVEPOINTS_DIR: Key<Option<String>> = Key {
    name: "state.savepoints.dir",
    default: "",
    doc: "where savepoints go when a request names no directory",
    parse: optional,
};

/// `restart-strategy.type`.
pub const RESTART_STRATEGY: Key<Option<RestartKind>> = Key {
    name: "restart-strategy.type",
    default: "",
    doc: "`none`, `fixed-delay`, `exponential-delay` or `failure-rate`; none: `fixed-delay` with checkpointing, else `none`",
    parse: restart_kind,
};

/// `restart-strategy.fixed-delay.attempts`.
pub const FIXED_DELAY_ATTEMPTS: Key<u32> = Key {
    name: "restart-strategy.fixed-delay.attempts",
    default: "2147483647",
    doc: "restarts `fixed-delay` allows",
    parse: count,
};

/// `restart-strategy.fixed-delay.delay`.
pub const FIXED_DELAY_DELAY: Key<Duration> = Key {
    name: "restart-strategy.fixed-delay.delay",
    default: "1 s",
    doc: "time from a failure to the restart with `fixed-delay`",
    parse: duration,
};

/// `restart-strategy.exponential-delay.initial-backoff`.
pub const EXPONENTIAL_INITIAL: Key<Duration> = Key {
    name: "restart-strategy.exponential-delay.initial-backoff",
    default: "1 s",
    doc: "first delay of `exponential-delay`",
    parse: duration,
};

/// `restart-strategy.exponential-delay.max-backoff`.
pub const EXPONENTIAL_MAX: Key<Duration> = Key {
    name: "restart-strategy.exponential-delay.max-backoff",
    default: "1 min",
    doc: "largest delay of `exponential-delay`",
    parse: duration,
};

/// `restart-strategy.exponential-delay.backoff-multiplier`.
pub const EXPONENTIAL_MULTIPLIER: Key<f64> = Key {
    name: "restart-strategy.exponential-delay.backoff-multiplier",
    default: "1.5",
    doc: "growth of the delay per failure (at least 1.0)",
    parse: multiplier,
};

/// `restart-strategy.exponential-delay.reset-backoff-threshold`.
pub const EXPONENTIAL_RESET: Key<Duration> = Key {
    name: "restart-strategy.exponential-delay.reset-backoff-threshold",
    default: "1 h",
    doc: "time without failure after which the delay starts again at the initial backoff",
    parse: duration,
};

/// `restart-strategy.failure-rate.max-failures-per-interval`.
pub const FAILURE_RATE_MAX: Key<u32> = Key {
    name: "restart-strategy.failure-rate.max-failures-per-interval",
    default: "1",
    doc: "failures `failure-rate` tolerates within one interval",
    parse: count,
};

/// `restart-strategy.failure-rate.failure-rate-interval`.
pub const FAILURE_RATE_INTERVAL: Key<Duration> = Key {
    name: "restart-strategy.failure-rate.failure-rate-interval",
    default: "1 min",
    doc: "the interval `failure-rate` counts failures in",
    parse: duration,
};

/// `restart-strategy.failure-rate.delay`.
pub const FAILURE_RATE_DELAY: Key<Duration> = Key {
    name: "restart-strategy.failure-rate.delay",
    default: "1 s",
    doc: "time from a failure to the restart with `failure-rate`",
    parse: duration,
};

/// Every job key, in the README's order.
pub const JOB: &[KeyInfo] = &[
    PARALLELISM_DEFAULT.info(),
    MAX_PARALLELISM.info(),
    BUFFER_TIMEOUT.info(),
    AUTO_WATERMARK_INTERVAL.info(),
    NETWORK_BUFFER_SIZE.info(),
    BUFFERS_PER_CHANNEL.info(),
    FLOATING_BUFFERS_PER_GATE.info(),
    BUFFER_DEBLOAT.info(),
    BUFFER_DEBLOAT_TARGET.info(),
    BUFFER_DEBLOAT_PERIOD.info(),
    BUFFER_DEBLOAT_SAMPLES.info(),
    BUFFER_DEBLOAT_THRESHOLD.info(),
    WINDOW_PRE_AGGREGATION.info(),
    CHECKPOINTING_INTERVAL.info(),
    CHECKPOINTING_MODE.info(),
    CHECKPOINTING_UNALIGNED.info(),
    CHECKPOINTING_ALIGNED_TIMEOUT.info(),
    CHECKPOINTING_TIMEOUT.info(),
    CHECKPOINTING_MIN_PAUSE.info(),
    MAX_CONCURRENT_CHECKPOINTS.info(),
    TOLERABLE_FAILED_CHECKPOINTS.info(),
    STATE_BACKEND_TYPE.info(),
    STATE_BACKEND_INCREMENTAL.info(),
    ROCKSDB_LOCAL_DIR.info(),
    ROCKSDB_MANAGED_SIZE.info(),
    ROCKSDB_VALUE_CACHE.info(),
    CHECKPOINTS_DIR.info(),
    CHECKPOINTS_NUM_RETAINED.info(),
    SAVEPOINTS_DIR.info(),
    RESTART_STRATEGY.info(),
    FIXED_DELAY_ATTEMPTS.info(),
    FIXED_DELAY_DELAY.info(),
    EXPONENTIAL_INITIAL.info(),
    EXPONENTIAL_MAX.info(),
    EXPONENTIAL_MULTIPLIER.info(),
    EXPONENTIAL_RESET.info(),
    FAILURE_RATE_MAX.info(),
    FAILURE_RATE_INTERVAL.info(),
    FAILURE_RATE_DELAY.info(),
];
