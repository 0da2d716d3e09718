//! Every cluster configuration key, declared once: its name, default, parser and meaning.
//!
//! Invariants: [`ALL`] lists every key exactly once; the README's "Cluster configuration"
//! table lists the same keys with the same defaults and meanings (checked by a test); a
//! value is only ever read through its key's parser, so a key cannot be read as another
//! type in one place than in another.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One configuration key whose value is a `T`.
pub struct Key<T> {
    /// The dotted name (`heartbeat.timeout`).
    pub name: &'static str,
    /// The default value as written in `weir.toml`.
    pub default: &'static str,
    /// What it means, as the README says.
    pub doc: &'static str,
    /// Parses a value; the error says what was expected.
    pub parse: fn(&str) -> Result<T, &'static str>,
}

/// A key of any type, for listings.
pub struct KeyInfo {
    /// The dotted name.
    pub name: &'static str,
    /// The default value.
    pub default: &'static str,
    /// What it means (the README check reads it).
    #[cfg_attr(not(test), allow(dead_code))]
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

fn address(v: &str) -> Result<SocketAddr, &'static str> {
    v.parse()
        .map_err(|_| "an address HOST:PORT with a numeric host")
}

fn host_port(v: &str) -> Result<String, &'static str> {
    match v.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(v.into()),
        _ => Err("an address HOST:PORT"),
    }
}

fn number(v: &str) -> Result<u64, &'static str> {
    v.parse().map_err(|_| "a non-negative integer")
}

fn millis(v: &str) -> Result<Duration, &'static str> {
    number(v).map(Duration::from_millis)
}

fn optional(v: &str) -> Result<Option<String>, &'static str> {
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// A directory, with `<temp dir>` replaced by the system's temporary directory.
fn dir(v: &str) -> Result<PathBuf, &'static str> {
    let tmp = std::env::temp_dir();
    Ok(PathBuf::from(
        v.replace("<temp dir>", &tmp.display().to_string()),
    ))
}

/// `jobmanager.rpc.address` (`HOST:PORT`; a JobManager binds it, so there its host must
/// be numeric).
pub const RPC_ADDRESS: Key<String> = Key {
    name: "jobmanager.rpc.address",
    default: "127.0.0.1:6123",
    doc: "the JobManager's control RPC address: where it binds, and where the CLI and TaskManagers connect",
    parse: host_port,
};

/// `rest.address`.
pub const REST_ADDRESS: Key<SocketAddr> = Key {
    name: "rest.address",
    default: "127.0.0.1:8081",
    doc: "the JobManager's REST API (read-only and without authentication, so only a loopback address is accepted)",
    parse: address,
};

/// `cluster.secret`.
pub const CLUSTER_SECRET: Key<Option<String>> = Key {
    name: "cluster.secret",
    default: "",
    doc: "a secret every control connection (CLI, TaskManager, worker) and every data connection between workers must present; a connection without it is refused and logged. Required when any address binds outside 127.0.0.0/8",
    parse: optional,
};

/// `heartbeat.interval`.
pub const HEARTBEAT_INTERVAL: Key<Duration> = Key {
    name: "heartbeat.interval",
    default: "1000",
    doc: "milliseconds between TaskManager and job worker heartbeats",
    parse: millis,
};

/// `heartbeat.timeout`.
pub const HEARTBEAT_TIMEOUT: Key<Duration> = Key {
    name: "heartbeat.timeout",
    default: "5000",
    doc: "milliseconds without a heartbeat after which a TaskManager or a job worker is lost; a TaskManager whose JobManager answers no heartbeat for as long stops its workers and exits",
    parse: millis,
};

/// `slot.request.timeout`.
pub const SLOT_REQUEST_TIMEOUT: Key<Duration> = Key {
    name: "slot.request.timeout",
    default: "300000",
    doc: "milliseconds a job waits for enough free slots before it fails",
    parse: millis,
};

/// `jobmanager.worker.start-timeout`.
pub const WORKER_START_TIMEOUT: Key<Duration> = Key {
    name: "jobmanager.worker.start-timeout",
    default: "60000",
    doc: "milliseconds a job's workers may take to start and register",
    parse: millis,
};

/// `jobmanager.artifacts.dir`.
pub const ARTIFACTS_DIR: Key<PathBuf> = Key {
    name: "jobmanager.artifacts.dir",
    default: "<temp dir>/weir/artifacts",
    doc: "where the JobManager stores job programs",
    parse: dir,
};

/// `jobmanager.artifacts.max-size`.
pub const ARTIFACTS_MAX_SIZE: Key<u64> = Key {
    name: "jobmanager.artifacts.max-size",
    default: "536870912",
    doc: "largest job program accepted, in bytes",
    parse: number,
};

/// `taskmanager.numberOfTaskSlots`.
pub const TASK_SLOTS: Key<u64> = Key {
    name: "taskmanager.numberOfTaskSlots",
    default: "1",
    doc: "slots a TaskManager offers (`--slots`)",
    parse: number,
};

/// `taskmanager.data.bind-host`.
pub const DATA_BIND_HOST: Key<Option<String>> = Key {
    name: "taskmanager.data.bind-host",
    default: "127.0.0.1",
    doc: "host the job workers' data servers bind",
    parse: optional,
};

/// `taskmanager.artifacts.cache-dir`.
pub const ARTIFACT_CACHE_DIR: Key<PathBuf> = Key {
    name: "taskmanager.artifacts.cache-dir",
    default: "<temp dir>/weir/artifact-cache",
    doc: "where TaskManagers cache fetched programs (created private to the user; TaskManagers of one host may share it, as each entry is checked against its digest before every start)",
    parse: dir,
};

/// Every key, in the README's order.
pub const ALL: &[KeyInfo] = &[
    RPC_ADDRESS.info(),
    REST_ADDRESS.info(),
    CLUSTER_SECRET.info(),
    HEARTBEAT_INTERVAL.info(),
    HEARTBEAT_TIMEOUT.info(),
    SLOT_REQUEST_TIMEOUT.info(),
    WORKER_START_TIMEOUT.info(),
    ARTIFACTS_DIR.info(),
    ARTIFACTS_MAX_SIZE.info(),
    TASK_SLOTS.info(),
    DATA_BIND_HOST.info(),
    ARTIFACT_CACHE_DIR.info(),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the README's "Cluster configuration" table: key, default, meaning.
    fn readme_rows() -> Vec<(String, String, String)> {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("### Cluster configuration")
            .nth(1)
            .expect("the README has a cluster configuration section");
        section
            .lines()
            .skip_while(|l| !l.starts_with("| key |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                let unquote = |s: &str| s.trim_matches('`').to_string();
                let default = match cells[1] {
                    "none" => String::new(),
                    d => unquote(d),
                };
                (unquote(cells[0]), default, cells[2].to_string())
            })
            .collect()
    }

    #[test]
    fn the_readme_lists_every_key_with_its_default_and_meaning() {
        let ours: Vec<(String, String, String)> = ALL
            .iter()
            .map(|k| (k.name.into(), k.default.into(), k.doc.into()))
            .collect();
        assert_eq!(readme_rows(), ours);
    }

    #[test]
    fn every_default_parses() {
        assert!((RPC_ADDRESS.parse)(RPC_ADDRESS.default).is_ok());
        assert!((REST_ADDRESS.parse)(REST_ADDRESS.default).is_ok());
        assert_eq!((CLUSTER_SECRET.parse)(CLUSTER_SECRET.default), Ok(None));
        for k in [
            HEARTBEAT_INTERVAL,
            HEARTBEAT_TIMEOUT,
            SLOT_REQUEST_TIMEOUT,
            WORKER_START_TIMEOUT,
        ] {
            assert!((k.parse)(k.default).is_ok(), "{}", k.name);
        }
        assert!((ARTIFACTS_MAX_SIZE.parse)(ARTIFACTS_MAX_SIZE.default).is_ok());
        assert_eq!((TASK_SLOTS.parse)(TASK_SLOTS.default), Ok(1));
        let names: std::collections::BTreeSet<_> = ALL.iter().map(|k| k.name).collect();
        assert_eq!(names.len(), ALL.len(), "each key once");
    }
}
