//! How every Weir process logs: `tracing` events on standard error, as text (the default)
//! or as one JSON object per line (`weir --log-format json`). The format travels to child
//! processes (a TaskManager's job workers) in [`ENV_LOG_FORMAT`], so a whole cluster logs
//! alike; `RUST_LOG` filters as usual.
//!
//! Invariant: [`init`] installs at most one subscriber per process (later calls do
//! nothing), and a malformed `WEIR_LOG_FORMAT` falls back to text with a warning that names
//! the value, rather than losing the process's logs.

use std::fmt;
use std::str::FromStr;

/// The environment variable holding the log format of this process and its children.
pub const ENV_LOG_FORMAT: &str = "WEIR_LOG_FORMAT";

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (colored on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`).
    Json,
}

/// A log format that is neither `text` nor `json`.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a log format (text or json)")]
pub struct BadLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = BadLogFormat;

    fn from_str(s: &str) -> Result<Self, BadLogFormat> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(BadLogFormat(other.to_string())),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

impl LogFormat {
    /// The format [`ENV_LOG_FORMAT`] names (text when unset).
    pub fn from_env() -> Result<Self, BadLogFormat> {
        match std::env::var(ENV_LOG_FORMAT) {
            Ok(v) => v.parse(),
            Err(_) => Ok(Self::Text),
        }
    }
}

/// Sends this process's logs to standard error in the format of [`ENV_LOG_FORMAT`],
/// filtered by `RUST_LOG` (else `default_filter`, such as `info`).
pub fn init(default_filter: &str) {
    let (format, bad) = match LogFormat::from_env() {
        Ok(f) => (f, None),
        Err(e) => (LogFormat::Text, Some(e)),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
    if let (Ok(()), Some(e)) = (installed, bad) {
        tracing::warn!(variable = ENV_LOG_FORMAT, error = %e, "logging as text");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_format_is_text_or_json_and_anything_else_is_named_in_the_error() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("text".parse(), Ok(LogFormat::Text));
        let e = "yaml".parse::<LogFormat>().unwrap_err();
        assert_eq!(e.to_string(), "'yaml' is not a log format (text or json)");
        assert_eq!(LogFormat::Json.to_string(), "json");
    }
}
