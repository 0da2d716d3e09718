//! A job's settings as configuration gives them: what the job program's environment starts
//! from before its code overrides any of them.
//!
//! Invariant: every job key of [`super::keys`] is read here and nowhere else.

use super::error::ConfigError;
use super::job_keys::*;
use super::{BufferDebloatConfig, CheckpointConfig, Configuration, JobConfig, RestartStrategy};
use weir_state_backends::StateBackendConfig;

/// A job's settings from configuration.
#[derive(Clone, Debug)]
pub struct JobSettings {
    /// `parallelism.default` (`None`: the environment's own default).
    pub parallelism: Option<u16>,
    /// `pipeline.max-parallelism`.
    pub max_parallelism: u16,
    /// The runtime settings, with checkpointing on if `execution.checkpointing.interval`
    /// is set.
    pub job: JobConfig,
    /// The checkpoint settings code starts from when it turns checkpointing on (every
    /// `execution.checkpointing.*` and `state.*` key but the interval and, unless
    /// configured, the directory).
    pub checkpoint_defaults: CheckpointConfig,
}

impl JobSettings {
    /// Reads every job key of `c`; an error names the key and where its value came from.
    pub fn from_configuration(c: &Configuration) -> Result<Self, ConfigError> {
        let checkpoint_defaults = CheckpointConfig {
            interval: std::time::Duration::ZERO,
            timeout: c.get(&CHECKPOINTING_TIMEOUT)?,
            min_pause: c.get(&CHECKPOINTING_MIN_PAUSE)?,
            max_concurrent: c.get(&MAX_CONCURRENT_CHECKPOINTS)?,
            tolerable_failures: c.get(&TOLERABLE_FAILED_CHECKPOINTS)?,
            retained: c.get(&CHECKPOINTS_NUM_RETAINED)?,
            dir: c.get(&CHECKPOINTS_DIR)?.unwrap_or_default(),
            mode: c.get(&CHECKPOINTING_MODE)?,
            unaligned: c.get(&CHECKPOINTING_UNALIGNED)?,
            aligned_timeout: c.get(&CHECKPOINTING_ALIGNED_TIMEOUT)?,
            savepoint_dir: c.get(&SAVEPOINTS_DIR)?,
        };
        if checkpoint_defaults.unaligned
            && checkpoint_defaults.mode != crate::CheckpointingMode::ExactlyOnce
        {
            return Err(ConfigError::Invalid {
                key: CHECKPOINTING_UNALIGNED.name.into(),
                value: "true".into(),
                source_name: c.source(CHECKPOINTING_UNALIGNED.name).unwrap_or("").into(),
                expected: "possible with execution.checkpointing.mode = AT_LEAST_ONCE (unaligned checkpoints are exactly-once)",
            });
        }
        let checkpointing = match c.get(&CHECKPOINTING_INTERVAL)? {
            None => None,
            Some(_) if checkpoint_defaults.dir.is_empty() => {
                return Err(ConfigError::Requires {
                    key: CHECKPOINTING_INTERVAL.name,
                    source_name: c.source(CHECKPOINTING_INTERVAL.name).unwrap_or("").into(),
                    required: CHECKPOINTS_DIR.name,
                    hint: "set it to a URL such as file:///var/weir/checkpoints",
                });
            }
            Some(interval) => Some(CheckpointConfig {
                interval,
                ..checkpoint_defaults.clone()
            }),
        };
        let mut state_backend = StateBackendConfig::from(c.get(&STATE_BACKEND_TYPE)?);
        state_backend.incremental = c.get(&STATE_BACKEND_INCREMENTAL)?;
        state_backend.rocksdb.local_dir = c.get(&ROCKSDB_LOCAL_DIR)?;
        state_backend.rocksdb.managed_memory_bytes = c.get(&ROCKSDB_MANAGED_SIZE)?;
        state_backend.rocksdb.value_cache_entries =
            usize::try_from(c.get(&ROCKSDB_VALUE_CACHE)?).unwrap_or(usize::MAX);
        let job = JobConfig {
            buffer_size: usize::try_from(c.get(&NETWORK_BUFFER_SIZE)?).unwrap_or(usize::MAX),
            buffer_timeout: c.get(&BUFFER_TIMEOUT)?,
            buffers_per_channel: c.get(&BUFFERS_PER_CHANNEL)?,
            floating_buffers_per_gate: c.get(&FLOATING_BUFFERS_PER_GATE)? as usize,
            auto_watermark_interval: c.get(&AUTO_WATERMARK_INTERVAL)?,
            checkpointing,
            restart_strategy: restart_strategy(c)?,
            state_backend,
            window_pre_aggregation_entries: usize::try_from(c.get(&WINDOW_PRE_AGGREGATION)?)
                .unwrap_or(usize::MAX),
            buffer_debloat: buffer_debloat(c)?,
            ..JobConfig::default()
        };
        Ok(Self {
            parallelism: c.get(&PARALLELISM_DEFAULT)?,
            max_parallelism: c.get(&MAX_PARALLELISM)?,
            job,
            checkpoint_defaults,
        })
    }
}

/// `taskmanager.network.memory.buffer-debloat.*`: `None` unless enabled.
fn buffer_debloat(c: &Configuration) -> Result<Option<BufferDebloatConfig>, ConfigError> {
    if !c.get(&BUFFER_DEBLOAT)? {
        return Ok(None);
    }
    Ok(Some(BufferDebloatConfig {
        target: c.get(&BUFFER_DEBLOAT_TARGET)?,
        period: c.get(&BUFFER_DEBLOAT_PERIOD)?,
        samples: c.get(&BUFFER_DEBLOAT_SAMPLES)?,
        threshold_percent: c.get(&BUFFER_DEBLOAT_THRESHOLD)?,
    }))
}

/// `restart-strategy.type` and the keys of the strategy it names.
fn restart_strategy(c: &Configuration) -> Result<Option<RestartStrategy>, ConfigError> {
    Ok(match c.get(&RESTART_STRATEGY)? {
        None => None,
        Some(RestartKind::None) => Some(RestartStrategy::None),
        Some(RestartKind::FixedDelay) => Some(RestartStrategy::FixedDelay {
            attempts: c.get(&FIXED_DELAY_ATTEMPTS)?,
            delay: c.get(&FIXED_DELAY_DELAY)?,
        }),
        Some(RestartKind::ExponentialDelay) => Some(RestartStrategy::ExponentialDelay {
            initial: c.get(&EXPONENTIAL_INITIAL)?,
            max: c.get(&EXPONENTIAL_MAX)?,
            multiplier: c.get(&EXPONENTIAL_MULTIPLIER)?,
            reset_after: c.get(&EXPONENTIAL_RESET)?,
        }),
        Some(RestartKind::FailureRate) => Some(RestartStrategy::FailureRate {
            max_failures: c.get(&FAILURE_RATE_MAX)?,
            interval: c.get(&FAILURE_RATE_INTERVAL)?,
            delay: c.get(&FAILURE_RATE_DELAY)?,
        }),
    })
}
