//! Why a setting or a configuration source cannot be used.
//!
//! Invariant: every message names the key (or the file or flag) and where its value came
//! from; a secret's value never appears.

use std::path::PathBuf;
use std::time::Duration;
use thiserror::Error;
use weir_state_backends::BackendConfigError;

/// An invalid setting; names its configuration key and the value it has.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A key no part of Weir reads.
    #[error("unknown configuration key '{key}' in {source_name}; known keys: {known}")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was written (a file, `-D ...`).
        source_name: String,
        /// Every known key, comma-separated.
        known: String,
    },
    /// A value its key's parser refuses.
    #[error("{key} = '{value}' (from {source_name}) is not {expected}")]
    Invalid {
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Where it came from (`weir.toml`, `WEIR_...`, `-D ...`, a flag).
        source_name: String,
        /// What the key takes.
        expected: &'static str,
    },
    /// A configuration file that cannot be read or parsed.
    #[error("configuration file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A `-D` flag that is not `key=value`.
    #[error("-D {flag}: expected key=value")]
    NotKeyValue {
        /// The flag's argument.
        flag: String,
    },
    /// A key that another key's value requires is not set.
    #[error("{key} is set (from {source_name}) but {required} is not: {hint}")]
    Requires {
        /// The key that is set.
        key: &'static str,
        /// Where its value came from.
        source_name: String,
        /// The key it needs.
        required: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The job properties a launcher passed are malformed.
    #[error("{variable} is not a JSON object of configuration keys: {reason}")]
    Properties {
        /// The environment variable.
        variable: &'static str,
        /// Why it does not decode.
        reason: String,
    },
    /// A size is outside the range its key allows.
    #[error("{key} must be within {min}..={max} bytes, not {value}")]
    OutOfRange {
        /// The configuration key.
        key: &'static str,
        /// The configured value.
        value: usize,
        /// The least value allowed.
        min: usize,
        /// The largest value allowed.
        max: usize,
    },
    /// A count is below the least its key allows.
    #[error("{key} must be at least {min}")]
    TooSmall {
        /// The configuration key.
        key: &'static str,
        /// The configured value.
        value: usize,
        /// The least value allowed.
        min: usize,
    },
    /// A duration that must be positive is zero.
    #[error("{key} must be positive")]
    NotPositive {
        /// The configuration key.
        key: &'static str,
        /// The configured value.
        value: Duration,
    },
    /// The state backend settings (`state.backend.*`) are invalid.
    #[error(transparent)]
    StateBackend(#[from] BackendConfigError),
}
