//! [`StateTtlConfig`]: how long keyed state lives after its last write (or read), what a
//! read of expired state returns, and how expired entries are cleaned up. The names and
//! defaults are Flink's.
//!
//! Invariants:
//! - Time is processing time in milliseconds from a [`TtlTimeProvider`] (the system
//!   clock unless one is set), as in Flink.
//! - A config only describes; registering a state with it checks the time to live
//!   (at least 1 ms) and fails naming the state.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// When an entry's last-access timestamp is refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateType {
    /// The time to live is off: entries never expire.
    Disabled,
    /// Refreshed when the entry is created and on every write (the default).
    OnCreateAndWrite,
    /// Refreshed on every write and also on every read.
    OnReadAndWrite,
}

/// Whether a read returns an expired entry that is still stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateVisibility {
    /// Expired entries are never returned (the default).
    NeverReturnExpired,
    /// An expired entry is returned by the read that finds it (which also removes it).
    ReturnExpiredIfNotCleanedUp,
}

/// The clock of state time-to-live: the current processing time in milliseconds.
pub trait TtlTimeProvider: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch (or any origin used consistently).
    fn current_timestamp(&self) -> i64;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemTimeProvider;

impl TtlTimeProvider for SystemTimeProvider {
    fn current_timestamp(&self) -> i64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    }
}

/// The time to live of a keyed state (Flink's `StateTtlConfig`); build one with
/// [`StateTtlConfig::new_builder`].
#[derive(Clone)]
pub struct StateTtlConfig {
    pub(crate) ttl: Duration,
    pub(crate) update_type: UpdateType,
    pub(crate) visibility: StateVisibility,
    pub(crate) cleanup_full_snapshot: bool,
    pub(crate) cleanup_in_background: bool,
    pub(crate) time: Arc<dyn TtlTimeProvider>,
}

impl fmt::Debug for StateTtlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTtlConfig")
            .field("ttl", &self.ttl)
            .field("update_type", &self.update_type)
            .field("visibility", &self.visibility)
            .field("cleanup_full_snapshot", &self.cleanup_full_snapshot)
            .field("cleanup_in_background", &self.cleanup_in_background)
            .finish_non_exhaustive()
    }
}

impl StateTtlConfig {
    /// A builder for state that lives `ttl` after its last refresh.
    pub fn new_builder(ttl: Duration) -> StateTtlConfigBuilder {
        StateTtlConfigBuilder(StateTtlConfig {
            ttl,
            update_type: UpdateType::OnCreateAndWrite,
            visibility: StateVisibility::NeverReturnExpired,
            cleanup_full_snapshot: false,
            cleanup_in_background: true,
            time: Arc::new(SystemTimeProvider),
        })
    }

    /// The time to live.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// When timestamps are refreshed.
    pub fn update_type(&self) -> UpdateType {
        self.update_type
    }

    /// Whether reads return expired entries.
    pub fn state_visibility(&self) -> StateVisibility {
        self.visibility
    }

    /// Whether full snapshots remove expired entries first.
    pub fn is_cleanup_in_full_snapshot(&self) -> bool {
        self.cleanup_full_snapshot
    }

    /// Whether RocksDB compactions drop expired entries.
    pub fn is_cleanup_in_background(&self) -> bool {
        self.cleanup_in_background
    }
}

/// Builds a [`StateTtlConfig`]. Defaults (Flink's): refreshed on create and write, expired
/// entries never returned, removed when read and in RocksDB compactions.
#[derive(Clone, Debug)]
pub struct StateTtlConfigBuilder(StateTtlConfig);

impl StateTtlConfigBuilder {
    /// When timestamps are refreshed.
    pub fn set_update_type(mut self, update_type: UpdateType) -> Self {
        self.0.update_type = update_type;
        self
    }

    /// Refreshes timestamps on create and write.
    pub fn update_ttl_on_create_and_write(self) -> Self {
        self.set_update_type(UpdateType::OnCreateAndWrite)
    }

    /// Refreshes timestamps on reads too.
    pub fn update_ttl_on_read_and_write(self) -> Self {
        self.set_update_type(UpdateType::OnReadAndWrite)
    }

    /// Whether reads return expired entries still stored.
    pub fn set_state_visibility(mut self, visibility: StateVisibility) -> Self {
        self.0.visibility = visibility;
        self
    }

    /// Reads never return expired entries.
    pub fn never_return_expired(self) -> Self {
        self.set_state_visibility(StateVisibility::NeverReturnExpired)
    }

    /// A read returns an expired entry it finds (and removes it).
    pub fn return_expired_if_not_cleaned_up(self) -> Self {
        self.set_state_visibility(StateVisibility::ReturnExpiredIfNotCleanedUp)
    }

    /// Removes expired entries before every full snapshot (every checkpoint of the memory
    /// backend; savepoints and non-incremental checkpoints of RocksDB), so snapshots and
    /// the state restored from them hold none.
    pub fn cleanup_full_snapshot(mut self) -> Self {
        self.0.cleanup_full_snapshot = true;
        self
    }

    /// Drops expired entries in RocksDB compactions (on by default). A list goes once all
    /// its elements expired, in the second compaction after its last append (the first
    /// merges the appends).
    pub fn cleanup_in_rocksdb_compact_filter(mut self) -> Self {
        self.0.cleanup_in_background = true;
        self
    }

    /// Turns the compaction cleanup off; expired entries then go when read or in full
    /// snapshots only.
    pub fn disable_cleanup_in_background(mut self) -> Self {
        self.0.cleanup_in_background = false;
        self
    }

    /// The clock of the time to live (the system clock by default).
    pub fn set_ttl_time_provider(mut self, time: Arc<dyn TtlTimeProvider>) -> Self {
        self.0.time = time;
        self
    }

    /// The config.
    pub fn build(self) -> StateTtlConfig {
        self.0
    }
}
