//! One configuration key (name, default, meaning and parser) and the value parsers every
//! key shares.
//!
//! Invariants: a value is only ever read through its key's parser, so a key cannot be read
//! as another type in one place than in another; durations and sizes are written as in
//! Flink: `10 s`, `1 min`, `500 ms` (a bare number is milliseconds) and `64 mb` (`kb`, `mb`,
//! `gb` are powers of 1024, as Flink's `MemorySize`; a bare number is bytes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One configuration key whose value is a `T`.
pub struct Key<T> {
    /// The dotted name (`heartbeat.timeout`).
    pub name: &'static str,
    /// The default value as written in `weir.toml` (empty: none).
    pub default: &'static str,
    /// What it means, as the README says.
    pub doc: &'static str,
    /// Parses a value; the error says what was expected.
    pub parse: fn(&str) -> Result<T, &'static str>,
}

/// A key of any type, for listings and the README check.
#[derive(Clone, Copy, Debug)]
pub struct KeyInfo {
    /// The dotted name.
    pub name: &'static str,
    /// The default value (empty: none).
    pub default: &'static str,
    /// What it means.
    pub doc: &'static str,
}

impl<T> Key<T> {
    /// The key without its type.
    pub const fn info(&self) -> KeyInfo {
        KeyInfo {
            name: self.name,
            default: self.default,
            doc: self.doc,
        }
    }
}

/// What [`duration`] accepts, for error messages.
const DURATION: &str = "a duration of at most 3650 days such as `10 s`, `1 min` or `500 ms` (a bare number is milliseconds)";

/// The longest duration a key takes: ten years (longer ones overflow deadlines).
const MAX_DURATION: Duration = Duration::from_secs(3650 * 24 * 3600);

/// A duration with a unit (`10 s`, `1 min`, `500 ms`, `1h 30m`); a bare number is
/// milliseconds, as in Flink.
pub fn duration(v: &str) -> Result<Duration, &'static str> {
    let v = v.trim();
    let d = match v.parse::<u64>() {
        Ok(ms) => Duration::from_millis(ms),
        Err(_) => humantime::parse_duration(v).map_err(|_| DURATION)?,
    };
    if d > MAX_DURATION {
        return Err(DURATION);
    }
    Ok(d)
}

/// An optional duration: empty is none.
pub fn optional_duration(v: &str) -> Result<Option<Duration>, &'static str> {
    match v.trim() {
        "" => Ok(None),
        v => duration(v).map(Some),
    }
}

/// A size in bytes with a unit (`64 mb`, `1.5 gb`, `512 kib`); `k`/`kb`, `m`/`mb`,
/// `g`/`gb` and `t`/`tb` are powers of 1024 as in Flink; a bare number is bytes.
pub fn size(v: &str) -> Result<u64, &'static str> {
    const SIZE: &str = "a size such as `64 mb`, `512 kb` or `1 gb` (a bare number is bytes)";
    let v = v.trim();
    let unit_at = v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len());
    let (number, unit) = v.split_at(unit_at);
    let binary = match unit.to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => "B",
        "k" | "kb" | "kib" => "KiB",
        "m" | "mb" | "mib" => "MiB",
        "g" | "gb" | "gib" => "GiB",
        "t" | "tb" | "tib" => "TiB",
        _ => return Err(SIZE),
    };
    let number = number.trim();
    if number.is_empty() {
        return Err(SIZE);
    }
    format!("{number} {binary}")
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| SIZE)
}

/// A non-negative integer.
pub fn number(v: &str) -> Result<u64, &'static str> {
    v.trim().parse().map_err(|_| "a non-negative integer")
}

/// A count that fits a `u32`.
pub fn count(v: &str) -> Result<u32, &'static str> {
    v.trim()
        .parse()
        .map_err(|_| "a non-negative integer below 2^32")
}

/// A count of at least 1 that fits a `usize`.
pub fn positive(v: &str) -> Result<usize, &'static str> {
    match v.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("a positive integer"),
    }
}

/// A positive number of a most 32768 (parallelism).
pub fn parallelism(v: &str) -> Result<u16, &'static str> {
    match v.trim().parse::<u16>() {
        Ok(n) if (1..=32768).contains(&n) => Ok(n),
        _ => Err("an integer from 1 to 32768"),
    }
}

/// An optional parallelism: empty is none.
pub fn optional_parallelism(v: &str) -> Result<Option<u16>, &'static str> {
    match v.trim() {
        "" => Ok(None),
        v => parallelism(v).map(Some),
    }
}

/// A number with a fraction, at least 1 (a backoff multiplier).
pub fn multiplier(v: &str) -> Result<f64, &'static str> {
    match v.trim().parse::<f64>() {
        Ok(m) if m.is_finite() && m >= 1.0 => Ok(m),
        _ => Err("a number of at least 1.0"),
    }
}

/// `true` or `false`.
pub fn boolean(v: &str) -> Result<bool, &'static str> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("`true` or `false`"),
    }
}

/// `true`, `false`, or empty for none.
pub fn optional_boolean(v: &str) -> Result<Option<bool>, &'static str> {
    match v.trim() {
        "" => Ok(None),
        v => boolean(v)
            .map(Some)
            .map_err(|_| "`true`, `false` or nothing"),
    }
}

/// An address `HOST:PORT` with a numeric host.
pub fn address(v: &str) -> Result<SocketAddr, &'static str> {
    v.trim()
        .parse()
        .map_err(|_| "an address HOST:PORT with a numeric host")
}

/// A numeric IP address.
pub fn ip(v: &str) -> Result<std::net::IpAddr, &'static str> {
    v.trim()
        .parse()
        .map_err(|_| "a numeric IP address such as 127.0.0.1")
}

/// An optional port or port range (`metrics.prometheus.port`): empty is none.
pub fn optional_port_range(
    v: &str,
) -> Result<Option<crate::metrics::prometheus::PortRange>, &'static str> {
    match v.trim() {
        "" => Ok(None),
        v => crate::metrics::prometheus::port_range(v).map(Some),
    }
}

/// An address `HOST:PORT`.
pub fn host_port(v: &str) -> Result<String, &'static str> {
    match v.trim().rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(v.trim().into())
        }
        _ => Err("an address HOST:PORT"),
    }
}

/// Any text; empty is none.
pub fn optional(v: &str) -> Result<Option<String>, &'static str> {
    Ok((!v.trim().is_empty()).then(|| v.trim().to_string()))
}

/// A directory, with `<temp dir>` replaced by the system's temporary directory.
pub fn dir(v: &str) -> Result<PathBuf, &'static str> {
    let tmp = std::env::temp_dir();
    Ok(PathBuf::from(
        v.trim().replace("<temp dir>", &tmp.display().to_string()),
    ))
}

/// An optional directory: empty is none.
pub fn optional_dir(v: &str) -> Result<Option<PathBuf>, &'static str> {
    match v.trim() {
        "" => Ok(None),
        v => dir(v).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_numbers_are_milliseconds() {
        assert_eq!(duration("10 s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("1 min"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("500 ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(duration("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("soon"), Err(DURATION));
        assert_eq!(duration("10 parsecs"), Err(DURATION));
        assert_eq!(optional_duration(""), Ok(None));
        assert_eq!(
            duration("300000000000 y"),
            Err(DURATION),
            "no overflow later"
        );
    }

    #[test]
    fn sizes_take_units_in_powers_of_1024() {
        assert_eq!(size("64 mb"), Ok(64 << 20));
        assert_eq!(size("64MB"), Ok(64 << 20));
        assert_eq!(size("512 kb"), Ok(512 << 10));
        assert_eq!(size("1 gib"), Ok(1 << 30));
        assert_eq!(size("1.5 kb"), Ok(1536));
        assert_eq!(size("4096"), Ok(4096));
        assert!(size("mb").is_err());
        assert!(size("12 parsecs").is_err());
        assert!(size("-1 mb").is_err());
    }

    #[test]
    fn counts_and_switches_refuse_what_they_cannot_hold() {
        assert_eq!(parallelism("4"), Ok(4));
        assert!(parallelism("0").is_err());
        assert!(positive("0").is_err());
        assert_eq!(boolean("TRUE"), Ok(true));
        assert!(boolean("yes").is_err());
        assert!(multiplier("0.5").is_err());
        assert_eq!(multiplier("1.5"), Ok(1.5));
        assert!(host_port("localhost:6123").is_ok());
        assert!(host_port("localhost").is_err());
    }
}
