//! Cluster configuration: defaults, then `weir.toml`, then `WEIR_*` environment
//! variables, then `-D key=value` flags (each overriding the one before); explicit command
//! flags (`--rpc-address`, `--slots`, ...) override all of them.
//!
//! Invariants: every key has a default and a line in [`KEYS`] (the README lists the same);
//! an unknown key in the file or a flag, or a value that does not parse, is an error naming
//! the key and where it came from. The environment variable of `a.b-c` is `WEIR_A_B_C`.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every key with its default and meaning.
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        "jobmanager.rpc.address",
        "127.0.0.1:6123",
        "the JobManager's control RPC address (where it binds, and where clients and TaskManagers connect)",
    ),
    (
        "rest.address",
        "127.0.0.1:8081",
        "the JobManager's REST API address (loopback only: the API has no authentication)",
    ),
    (
        "cluster.secret",
        "",
        "secret every control and data connection presents; required when a port binds outside 127.0.0.0/8",
    ),
    (
        "heartbeat.interval",
        "1000",
        "milliseconds between TaskManager heartbeats",
    ),
    (
        "heartbeat.timeout",
        "5000",
        "milliseconds without a heartbeat after which a TaskManager is lost",
    ),
    (
        "slot.request.timeout",
        "300000",
        "milliseconds a job waits for enough free slots before it fails",
    ),
    (
        "jobmanager.worker.start-timeout",
        "60000",
        "milliseconds a job's worker processes may take to start and register",
    ),
    (
        "jobmanager.artifacts.dir",
        "<temp dir>/weir/artifacts",
        "where the JobManager stores job artifacts",
    ),
    (
        "jobmanager.artifacts.max-size",
        "536870912",
        "largest job artifact accepted, in bytes",
    ),
    (
        "taskmanager.numberOfTaskSlots",
        "1",
        "slots a TaskManager offers (--slots overrides)",
    ),
    (
        "taskmanager.data.bind-host",
        "127.0.0.1",
        "host the job workers' data servers bind",
    ),
    (
        "taskmanager.artifacts.cache-dir",
        "<temp dir>/weir/artifact-cache",
        "where TaskManagers cache fetched artifacts (shareable: entries are checked against their digest before each start)",
    ),
];

/// Resolved configuration: every key with its value and where the value came from.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<String, (String, String)>,
}

fn env_name(key: &str) -> String {
    format!("WEIR_{}", key.to_ascii_uppercase().replace(['.', '-'], "_"))
}

fn known(key: &str) -> bool {
    KEYS.iter().any(|(k, _, _)| *k == key)
}

fn unknown(key: &str, source: &str) -> anyhow::Error {
    let keys: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
    anyhow::anyhow!(
        "unknown configuration key '{key}' in {source}; known keys: {}",
        keys.join(", ")
    )
}

/// Flattens a TOML table into dotted keys.
fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            toml::Value::String(s) => out.push((key, s.clone())),
            other => out.push((key, other.to_string())),
        }
    }
}

impl Config {
    /// Loads the configuration from `file` (if any), the environment and `overrides`
    /// (`key=value`).
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let mut values: BTreeMap<String, (String, String)> = KEYS
            .iter()
            .map(|(k, d, _)| (k.to_string(), (d.to_string(), "default".to_string())))
            .collect();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read configuration file {}", path.display()))?;
            let table: toml::Table = text.parse().with_context(|| {
                format!("configuration file {} is not valid TOML", path.display())
            })?;
            let mut pairs = Vec::new();
            flatten("", &table, &mut pairs);
            let source = path.display().to_string();
            for (k, v) in pairs {
                if !known(&k) {
                    return Err(unknown(&k, &source));
                }
                values.insert(k, (v, source.clone()));
            }
        }
        for (k, _, _) in KEYS {
            let name = env_name(k);
            if let Ok(v) = std::env::var(&name) {
                values.insert(k.to_string(), (v, name));
            }
        }
        for o in overrides {
            let Some((k, v)) = o.split_once('=') else {
                bail!("-D {o}: expected key=value");
            };
            let k = k.trim();
            if !known(k) {
                return Err(unknown(k, &format!("-D {o}")));
            }
            values.insert(k.to_string(), (v.trim().to_string(), format!("-D {k}")));
        }
        Ok(Self { values })
    }

    /// Sets `key` from an explicit command flag.
    pub fn set(&mut self, key: &str, value: String, flag: &str) {
        debug_assert!(known(key), "{key}");
        self.values
            .insert(key.to_string(), (value, flag.to_string()));
    }

    fn raw(&self, key: &str) -> (&str, &str) {
        let (v, s) = self.values.get(key).expect("every key has a default");
        (v.as_str(), s.as_str())
    }

    /// A string value (`None` when empty).
    pub fn string(&self, key: &str) -> Option<String> {
        let (v, _) = self.raw(key);
        (!v.is_empty()).then(|| v.to_string())
    }

    /// A socket address.
    pub fn address(&self, key: &str) -> Result<SocketAddr> {
        let (v, s) = self.raw(key);
        v.parse().with_context(|| {
            format!("{key} = '{v}' (from {s}) is not an address HOST:PORT with a numeric host")
        })
    }

    /// A number.
    pub fn number(&self, key: &str) -> Result<u64> {
        let (v, s) = self.raw(key);
        v.parse()
            .with_context(|| format!("{key} = '{v}' (from {s}) is not a non-negative integer"))
    }

    /// A duration in milliseconds.
    pub fn millis(&self, key: &str) -> Result<Duration> {
        Ok(Duration::from_millis(self.number(key)?))
    }

    /// A directory, with `<temp dir>` filled in.
    pub fn dir(&self, key: &str) -> PathBuf {
        let (v, _) = self.raw(key);
        let tmp = std::env::temp_dir();
        PathBuf::from(v.replace("<temp dir>", &tmp.display().to_string()))
    }

    /// Refuses an address outside 127.0.0.0/8 (or `::1`) without a cluster secret.
    pub fn check_exposure(&self, key: &str, address: &SocketAddr) -> Result<()> {
        if !address.ip().is_loopback() && self.string("cluster.secret").is_none() {
            bail!(
                "{key} = {address} is reachable from other hosts: set cluster.secret (in weir.toml, WEIR_CLUSTER_SECRET or -D cluster.secret=...) so that every connection must present it"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("weir.toml");
        std::fs::write(
            &file,
            "[heartbeat]\ntimeout = 9000\n[jobmanager.rpc]\naddress = \"127.0.0.1:7000\"\n",
        )
        .unwrap();
        let c = Config::load(Some(&file), &["heartbeat.timeout=1234".into()]).unwrap();
        assert_eq!(
            c.millis("heartbeat.timeout").unwrap(),
            Duration::from_millis(1234)
        );
        assert_eq!(
            c.address("jobmanager.rpc.address").unwrap(),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(c.number("heartbeat.interval").unwrap(), 1000);
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_names_the_key_and_its_source() {
        let err = Config::load(None, &["heartbeat.timeot=1".into()]).unwrap_err();
        assert!(err.to_string().contains("heartbeat.timeot"), "{err}");
        let c = Config::load(None, &["heartbeat.timeout=soon".into()]).unwrap();
        let err = c.millis("heartbeat.timeout").unwrap_err();
        assert!(
            format!("{err:#}").contains("-D heartbeat.timeout"),
            "{err:#}"
        );
    }

    #[test]
    fn a_non_loopback_address_needs_the_cluster_secret() {
        let c = Config::load(None, &[]).unwrap();
        let open: SocketAddr = "0.0.0.0:6123".parse().unwrap();
        assert!(c.check_exposure("jobmanager.rpc.address", &open).is_err());
        assert!(c
            .check_exposure("jobmanager.rpc.address", &"127.0.0.2:1".parse().unwrap())
            .is_ok());
        let c = Config::load(None, &["cluster.secret=s3cret".into()]).unwrap();
        assert!(c.check_exposure("jobmanager.rpc.address", &open).is_ok());
    }

    #[test]
    fn environment_variable_names_follow_the_keys() {
        assert_eq!(env_name("heartbeat.timeout"), "WEIR_HEARTBEAT_TIMEOUT");
        assert_eq!(
            env_name("jobmanager.artifacts.max-size"),
            "WEIR_JOBMANAGER_ARTIFACTS_MAX_SIZE"
        );
    }
}
