//! Job and cluster configuration: the settings the runtime reads, every configuration key
//! ([`keys`]), and how they are layered from `weir.toml`, `WEIR_*` variables and `-D`
//! flags ([`Configuration`]).
//!
//! Every field has the Flink-like default documented on it; the API and the CLI fill these
//! from configuration, builder calls and flags (code overrides configuration).

pub use crate::types::Secret;
use serde::{Deserialize, Serialize};
use std::time::Duration;

mod configuration;
mod error;
mod job_keys;
mod job_settings;
pub mod key;
pub mod keys;

pub use configuration::{encode_properties, env_name, Configuration, ENV_JOB_PROPERTIES};
pub use error::ConfigError;
pub use job_settings::JobSettings;

/// Settings that apply to one job's execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobConfig {
    /// Size of one network buffer (`taskmanager.network.buffer-size`, default 32 KiB).
    pub buffer_size: usize,
    /// How long a partly filled buffer may wait before it is flushed
    /// (`execution.buffer-timeout`, default 100 ms; zero flushes after every record).
    pub buffer_timeout: Duration,
    /// How often watermark generators emit (`pipeline.auto-watermark-interval`, default
    /// 200 ms; zero emits after every record).
    pub auto_watermark_interval: Duration,
    /// Buffers each input channel may hold
    /// (`taskmanager.network.memory.buffers-per-channel`, default 2).
    pub buffers_per_channel: usize,
    /// Extra buffers an input gate shares among its channels
    /// (`taskmanager.network.memory.floating-buffers-per-gate`, default 8).
    pub floating_buffers_per_gate: usize,
    /// Records a source produces per step before the task checks its mailbox (default 1024).
    pub source_batch_size: usize,
    /// Periodic checkpoints (off by default).
    pub checkpointing: Option<CheckpointConfig>,
    /// What happens after a task fails (`restart-strategy.type`); `None` means Flink's
    /// default: fixed-delay (unbounded attempts, 1 s apart) with checkpointing, no restart
    /// without.
    pub restart_strategy: Option<RestartStrategy>,
    /// The savepoint the job starts from (`execution.savepoint.path`), if any.
    pub savepoint_restore: Option<SavepointRestoreSettings>,
    /// The keyed state backend (`state.backend`, default memory) and its settings.
    pub state_backend: weir_state_backends::StateBackendConfig,
    /// Accumulators an aggregating event-time window operator pre-aggregates in memory,
    /// per subtask, before it spills them into the state backend
    /// (`execution.window.pre-aggregation.max-entries`, default 1,000,000; 0: every record
    /// reads and writes the backend).
    #[serde(default = "default_window_pre_aggregation")]
    pub window_pre_aggregation_entries: usize,
    /// Buffer debloating (`taskmanager.network.memory.buffer-debloat.enabled`, default
    /// off): input gates size their producers' buffers to the throughput.
    #[serde(default)]
    pub buffer_debloat: Option<BufferDebloatConfig>,
}

/// Buffer debloating settings (`taskmanager.network.memory.buffer-debloat.*`, see
/// [`crate::exchange::debloat`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferDebloatConfig {
    /// Time in which the data an input gate may hold should drain (`.target`, default 1 s).
    pub target: Duration,
    /// How often the throughput is sampled and the size set (`.period`, default 200 ms).
    pub period: Duration,
    /// Samples the throughput is averaged over (`.samples`, default 20).
    pub samples: u32,
    /// Least change of the size, in percent, told to the producers
    /// (`.threshold-percentages`, default 25).
    pub threshold_percent: u32,
}

fn default_window_pre_aggregation() -> usize {
    1_000_000
}

/// Where a job's initial state comes from, as Flink's `SavepointRestoreSettings`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointRestoreSettings {
    /// The savepoint (or retained checkpoint) directory: a URL (`file:///...`) or a path.
    pub path: String,
    /// Whether state of operators the job no longer has is skipped instead of failing the
    /// submission (`execution.savepoint.ignore-unclaimed-state`, default false).
    pub allow_non_restored_state: bool,
}

impl SavepointRestoreSettings {
    /// Restores from the savepoint at `path`; state without a matching operator is an error.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            allow_non_restored_state: false,
        }
    }
}

/// How a failed job restarts (`restart-strategy.*`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum RestartStrategy {
    /// The job fails at the first task failure (`none`).
    None,
    /// Restart up to `attempts` times, `delay` apart (`fixed-delay`).
    FixedDelay {
        /// Restarts allowed (`restart-strategy.fixed-delay.attempts`).
        attempts: u32,
        /// Time between the failure and the restart (`restart-strategy.fixed-delay.delay`).
        delay: Duration,
    },
    /// Restart after a delay that grows by `multiplier` with every failure, up to `max`,
    /// and starts again at `initial` once the job ran `reset_after` without failing
    /// (`exponential-delay`).
    ExponentialDelay {
        /// First delay (`restart-strategy.exponential-delay.initial-backoff`).
        initial: Duration,
        /// Largest delay (`restart-strategy.exponential-delay.max-backoff`).
        max: Duration,
        /// Growth per failure (`restart-strategy.exponential-delay.backoff-multiplier`).
        multiplier: f64,
        /// Quiet time that resets the delay
        /// (`restart-strategy.exponential-delay.reset-backoff-threshold`).
        reset_after: Duration,
    },
    /// Restart after `delay` unless more than `max_failures` failures happened within
    /// `interval` (`failure-rate`).
    FailureRate {
        /// Failures tolerated per interval
        /// (`restart-strategy.failure-rate.max-failures-per-interval`).
        max_failures: u32,
        /// The measuring window (`restart-strategy.failure-rate.failure-rate-interval`).
        interval: Duration,
        /// Time between the failure and the restart (`restart-strategy.failure-rate.delay`).
        delay: Duration,
    },
}

impl JobConfig {
    /// Returns the restart strategy in effect (the default depends on checkpointing).
    pub fn effective_restart_strategy(&self) -> RestartStrategy {
        match (self.restart_strategy, &self.checkpointing) {
            (Some(s), _) => s,
            (None, Some(_)) => RestartStrategy::FixedDelay {
                attempts: u32::MAX,
                delay: Duration::from_secs(1),
            },
            (None, None) => RestartStrategy::None,
        }
    }
}

impl JobConfig {
    /// Checks the network settings; the message names the offending setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let max = crate::exchange::protocol::MAX_FRAME_BYTES - crate::exchange::SPAN_SLACK;
        if self.buffer_size == 0 || self.buffer_size > max {
            return Err(ConfigError::OutOfRange {
                key: "taskmanager.network.buffer-size",
                value: self.buffer_size,
                min: 1,
                max,
            });
        }
        at_least(
            "taskmanager.network.memory.buffers-per-channel",
            self.buffers_per_channel,
            1,
        )?;
        if let Some(c) = &self.checkpointing {
            c.validate()?;
        }
        if let Some(d) = &self.buffer_debloat {
            positive("taskmanager.network.memory.buffer-debloat.target", d.target)?;
            positive("taskmanager.network.memory.buffer-debloat.period", d.period)?;
        }
        Ok(self.state_backend.validate()?)
    }
}

impl Default for JobConfig {
    fn default() -> Self {
        Self {
            buffer_size: 32 * 1024,
            buffer_timeout: Duration::from_millis(100),
            auto_watermark_interval: Duration::from_millis(200),
            buffers_per_channel: 2,
            floating_buffers_per_gate: 8,
            source_batch_size: 1024,
            checkpointing: None,
            restart_strategy: None,
            savepoint_restore: None,
            state_backend: Default::default(),
            window_pre_aggregation_entries: default_window_pre_aggregation(),
            buffer_debloat: None,
        }
    }
}

/// Settings of one TaskManager.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskManagerConfig {
    /// Network buffers the TaskManager's tasks may reserve in total
    /// (`taskmanager.network.pool-size`, default 4096; a buffer takes the job's buffer size,
    /// allocated on first use). A task that cannot reserve its pools fails with an error
    /// that names this key.
    pub network_buffers: usize,
    /// The cluster secret (`cluster.secret`): data connections present it, and the data
    /// server refuses connections without it. `None`: no secret.
    #[serde(default)]
    pub cluster_secret: Option<Secret>,
    /// Mutual TLS on data connections (`security.ssl.internal.*`): connections this
    /// TaskManager opens and accepts run inside TLS sessions. `None`: plain TCP.
    #[serde(skip)]
    pub internal_tls: Option<crate::rpc::tls::InternalTls>,
}

impl Default for TaskManagerConfig {
    fn default() -> Self {
        Self {
            network_buffers: 4096,
            cluster_secret: None,
            internal_tls: None,
        }
    }
}

/// Whether inputs align on checkpoint barriers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckpointingMode {
    /// Inputs align: results are exactly-once (`EXACTLY_ONCE`, the default).
    ExactlyOnce,
    /// Inputs do not wait for each other: after a failure records may be replayed twice.
    AtLeastOnce,
}

/// Periodic checkpoint settings (`execution.checkpointing.*`); checkpointing is off unless
/// a job sets them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// Time between the triggers of two checkpoints (`execution.checkpointing.interval`).
    pub interval: Duration,
    /// A checkpoint not complete after this long is aborted
    /// (`execution.checkpointing.timeout`, default 10 min).
    pub timeout: Duration,
    /// Least time from the end of one checkpoint to the trigger of the next
    /// (`execution.checkpointing.min-pause`, default 0).
    pub min_pause: Duration,
    /// Checkpoints in progress at once (`execution.checkpointing.max-concurrent-checkpoints`,
    /// default 1).
    pub max_concurrent: usize,
    /// Checkpoint failures in a row the job tolerates before it fails
    /// (`execution.checkpointing.tolerable-failed-checkpoints`, default 0).
    pub tolerable_failures: u32,
    /// Completed checkpoints kept on storage (`state.checkpoints.num-retained`, default 1).
    pub retained: usize,
    /// Where checkpoints are stored (`state.checkpoints.dir`): an `object_store` URL such
    /// as `file:///var/weir/checkpoints`.
    pub dir: String,
    /// Exactly-once (aligned) or at-least-once (`execution.checkpointing.mode`).
    pub mode: CheckpointingMode,
    /// Whether checkpoint barriers overtake the data in flight
    /// (`execution.checkpointing.unaligned.enabled`, default false; exactly-once only).
    pub unaligned: bool,
    /// With `unaligned`: how long a barrier waits aligned before it overtakes the data in
    /// flight (`execution.checkpointing.aligned-checkpoint-timeout`, default 0: barriers
    /// start unaligned).
    #[serde(default)]
    pub aligned_timeout: Duration,
    /// Where savepoints go when a request names no directory (`state.savepoints.dir`): a
    /// URL or a path.
    pub savepoint_dir: Option<String>,
}

impl CheckpointConfig {
    /// Checkpoints every `interval` into `dir`, with the other settings at their defaults.
    pub fn new(interval: Duration, dir: impl Into<String>) -> Self {
        Self {
            interval,
            timeout: Duration::from_secs(600),
            min_pause: Duration::ZERO,
            max_concurrent: 1,
            tolerable_failures: 0,
            retained: 1,
            dir: dir.into(),
            mode: CheckpointingMode::ExactlyOnce,
            unaligned: false,
            aligned_timeout: Duration::ZERO,
            savepoint_dir: None,
        }
    }

    /// Checks the settings; the message names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("execution.checkpointing.interval", self.interval)?;
        positive("execution.checkpointing.timeout", self.timeout)?;
        at_least(
            "execution.checkpointing.max-concurrent-checkpoints",
            self.max_concurrent,
            1,
        )?;
        at_least("state.checkpoints.num-retained", self.retained, 1)
    }
}

/// Checks that the duration `key` is positive.
fn positive(key: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::NotPositive { key, value });
    }
    Ok(())
}

/// Checks that the count `key` is at least `min`.
fn at_least(key: &'static str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min {
        return Err(ConfigError::TooSmall { key, value, min });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_settings_name_their_key_and_value() {
        let max = crate::exchange::protocol::MAX_FRAME_BYTES - crate::exchange::SPAN_SLACK;
        let mut job = JobConfig {
            buffer_size: 0,
            ..JobConfig::default()
        };
        assert_eq!(
            job.validate().unwrap_err().to_string(),
            format!("taskmanager.network.buffer-size must be within 1..={max} bytes, not 0")
        );
        job.buffer_size = 1024;
        job.buffers_per_channel = 0;
        assert_eq!(
            job.validate().unwrap_err(),
            ConfigError::TooSmall {
                key: "taskmanager.network.memory.buffers-per-channel",
                value: 0,
                min: 1
            }
        );
        job.buffers_per_channel = 2;
        let mut c = CheckpointConfig::new(Duration::ZERO, "file:///tmp");
        job.checkpointing = Some(c.clone());
        assert_eq!(
            job.validate().unwrap_err().to_string(),
            "execution.checkpointing.interval must be positive"
        );
        c.interval = Duration::from_secs(1);
        c.max_concurrent = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "execution.checkpointing.max-concurrent-checkpoints must be at least 1"
        );
        c.max_concurrent = 1;
        c.retained = 0;
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "state.checkpoints.num-retained must be at least 1"
        );
        c.retained = 1;
        assert_eq!(c.validate(), Ok(()));
    }
}
