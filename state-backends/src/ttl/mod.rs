//! State time-to-live: keyed state that expires a configured time after its last write
//! (or read), as Flink's `StateTtlConfig`.
//!
//! Each TTL handle stores its values wrapped in a [`TtlValue`], the value beside the
//! processing time it was last refreshed; lists and maps wrap each element and each user
//! value, so those expire one by one. The handles check expiry on every access.
//!
//! Invariants:
//! - An entry is expired once `last_access + ttl <= now`; with [`UpdateType::Disabled`]
//!   nothing expires.
//! - A read that finds an expired entry removes it (cleanup on access), whatever the
//!   visibility; the visibility only decides whether that read still returns it.
//! - The stored encoding of a `TtlValue` starts with its timestamp, so the RocksDB
//!   compaction filter reads a row's expiry without knowing the value's type (lists are
//!   decoded element by element).
//! - TTL state is stored in another format than the same state without TTL: turning
//!   TTL on or off for existing state needs a new state name, as in Flink.

mod config;
mod list;
mod map;
mod registration;
mod value;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use config::{
    StateTtlConfig, StateTtlConfigBuilder, StateVisibility, SystemTimeProvider, TtlTimeProvider,
    UpdateType,
};
pub use list::TtlListState;
pub use map::TtlMapState;
pub use value::{TtlAggregatingState, TtlReducingState, TtlValueState};

use crate::codec::decode_from;
use crate::error::StateError;

/// Whether the stored bytes of one row (or list merge operand) are expired.
pub(crate) type ExpiredFn = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// A stored value with the processing time it was last refreshed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct TtlValue<V> {
    /// Milliseconds, from the state's [`TtlTimeProvider`]. Encoded first.
    pub(crate) last_access: i64,
    /// The user's value.
    pub(crate) value: V,
}

/// Whether an entry last refreshed at `last_access` is expired at `now` with a time to
/// live of `ttl_ms` (`NEVER`: never).
#[inline]
fn expired(last_access: i64, ttl_ms: i64, now: i64) -> bool {
    ttl_ms != NEVER && last_access.saturating_add(ttl_ms) <= now
}

/// The time to live of state whose update type is [`UpdateType::Disabled`].
const NEVER: i64 = i64::MAX;

/// The expiry rules of one state, shared by its handle and its cleanups.
pub(crate) struct Ttl {
    /// The time to live in milliseconds ([`NEVER`]: never expires).
    ttl_ms: i64,
    update_on_read: bool,
    return_expired: bool,
    time: Arc<dyn TtlTimeProvider>,
}

impl Ttl {
    /// The rules of `config` for state `state`; the time to live must be at least 1 ms.
    pub(crate) fn new(state: &str, config: &StateTtlConfig) -> Result<Self, StateError> {
        let ttl_ms = i64::try_from(config.ttl.as_millis())
            .ok()
            .filter(|ms| *ms >= 1)
            .ok_or_else(|| StateError::InvalidTtl {
                state: state.to_owned(),
                ttl: config.ttl,
            })?;
        let disabled = config.update_type == UpdateType::Disabled;
        Ok(Self {
            ttl_ms: if disabled { NEVER } else { ttl_ms },
            update_on_read: config.update_type == UpdateType::OnReadAndWrite,
            return_expired: config.visibility == StateVisibility::ReturnExpiredIfNotCleanedUp,
            time: Arc::clone(&config.time),
        })
    }

    /// The current processing time.
    #[inline]
    pub(crate) fn now(&self) -> i64 {
        self.time.current_timestamp()
    }

    /// Whether an entry last refreshed at `last_access` is expired at `now`.
    #[inline]
    pub(crate) fn is_expired(&self, last_access: i64, now: i64) -> bool {
        expired(last_access, self.ttl_ms, now)
    }

    /// Whether reads refresh timestamps.
    #[inline]
    pub(crate) fn update_on_read(&self) -> bool {
        self.update_on_read
    }

    /// Whether a read returns the expired entry it finds.
    #[inline]
    pub(crate) fn return_expired(&self) -> bool {
        self.return_expired
    }

    /// `value` stamped with `now`.
    #[inline]
    pub(crate) fn wrap<V>(&self, value: V, now: i64) -> TtlValue<V> {
        TtlValue {
            last_access: now,
            value,
        }
    }

    /// The compaction predicate of a row holding one `TtlValue` (value, reducing,
    /// aggregating and map state): its leading timestamp is expired. Undecodable bytes
    /// are kept.
    pub(crate) fn expired_row(&self) -> ExpiredFn {
        let (ttl_ms, time) = (self.ttl_ms, Arc::clone(&self.time));
        Arc::new(move |bytes: &[u8]| {
            decode_from::<i64>(bytes).is_ok_and(|(last_access, _)| {
                expired(last_access, ttl_ms, time.current_timestamp())
            })
        })
    }

    /// The compaction predicate of a list row (concatenated `TtlValue<V>`s): every
    /// element is expired. Undecodable bytes are kept.
    pub(crate) fn expired_list<V: DeserializeOwned>(&self) -> ExpiredFn {
        let (ttl_ms, time) = (self.ttl_ms, Arc::clone(&self.time));
        Arc::new(move |mut bytes: &[u8]| {
            let now = time.current_timestamp();
            while !bytes.is_empty() {
                match decode_from::<TtlValue<V>>(bytes) {
                    Ok((v, used)) if expired(v.last_access, ttl_ms, now) => {
                        bytes = &bytes[used..];
                    }
                    _ => return false,
                }
            }
            true
        })
    }
}
