//! Cluster configuration: defaults, then `weir.toml`, then `WEIR_*` environment
//! variables, then `-D key=value` flags (each overriding the one before); explicit command
//! flags (`--rpc-address`, `--slots`, ...) override all of them.
//!
//! Invariants: every key is a typed constant of [`crate::keys`] with its default (the README
//! lists the same); an unknown key in the file or a flag, or a value that does not parse, is
//! an error naming the key and where it came from. The environment variable of `a.b-c` is
//! `WEIR_A_B_C`.

use crate::keys::{self, Key};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

/// Resolved configuration: every key with its value and where the value came from.
#[derive(Clone, Debug)]
pub struct Config {
    values: BTreeMap<String, (String, String)>,
}

fn env_name(key: &str) -> String {
    format!("WEIR_{}", key.to_ascii_uppercase().replace(['.', '-'], "_"))
}

/// The `high-availability.*` keys, read as a group by [`Config::ha`].
fn ha_keys() -> impl Iterator<Item = &'static str> {
    weir_runtime::ha::HA_KEYS.iter().map(|(k, _, _)| *k)
}

/// Every key: the typed ones, then the `high-availability.*` keys.
fn key_names() -> impl Iterator<Item = &'static str> {
    keys::ALL.iter().map(|k| k.name).chain(ha_keys())
}

fn known(key: &str) -> bool {
    key_names().any(|k| k == key)
}

fn unknown(key: &str, source: &str) -> anyhow::Error {
    let keys: Vec<&str> = key_names().collect();
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
        let mut values: BTreeMap<String, (String, String)> = keys::ALL
            .iter()
            .map(|k| {
                (
                    k.name.to_string(),
                    (k.default.to_string(), "default".into()),
                )
            })
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
        for k in key_names() {
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
    pub fn set<T>(&mut self, key: &Key<T>, value: String, flag: &str) {
        self.values
            .insert(key.name.to_string(), (value, flag.to_string()));
    }

    /// The value of `key`, parsed by its parser; an error names the key, the value and
    /// where it came from.
    pub fn get<T>(&self, key: &Key<T>) -> Result<T> {
        let (v, s) = self.values.get(key.name).expect("every key has a default");
        (key.parse)(v).map_err(|expected| {
            anyhow::anyhow!("{} = '{v}' (from {s}) is not {expected}", key.name)
        })
    }

    /// The high-availability settings, `None` unless `high-availability.type` is
    /// `zookeeper`; an error names the key (and where its value came from).
    pub fn ha(&self) -> Result<Option<weir_runtime::ha::HaConfig>> {
        let pairs = ha_keys().filter_map(|k| self.values.get(k).map(|(v, _)| (k, v.as_str())));
        weir_runtime::ha::HaConfig::from_pairs(pairs).map_err(|e| {
            let sources: Vec<String> = ha_keys()
                .filter_map(|k| self.values.get(k).map(|(_, s)| format!("{k} from {s}")))
                .collect();
            anyhow::anyhow!("{e} ({})", sources.join(", "))
        })
    }

    /// Refuses an address outside 127.0.0.0/8 (or `::1`) without a cluster secret.
    pub fn check_exposure(&self, key: &str, address: &SocketAddr) -> Result<()> {
        if !address.ip().is_loopback() && self.get(&keys::CLUSTER_SECRET)?.is_none() {
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
            c.get(&keys::HEARTBEAT_TIMEOUT).unwrap(),
            std::time::Duration::from_millis(1234)
        );
        assert_eq!(c.get(&keys::RPC_ADDRESS).unwrap(), "127.0.0.1:7000");
        assert_eq!(
            c.get(&keys::HEARTBEAT_INTERVAL).unwrap(),
            std::time::Duration::from_secs(1)
        );
    }

    #[test]
    fn an_unknown_key_or_a_bad_value_names_the_key_and_its_source() {
        let err = Config::load(None, &["heartbeat.timeot=1".into()]).unwrap_err();
        assert!(err.to_string().contains("heartbeat.timeot"), "{err}");
        let c = Config::load(None, &["heartbeat.timeout=soon".into()]).unwrap();
        let err = c.get(&keys::HEARTBEAT_TIMEOUT).unwrap_err();
        assert!(
            format!("{err:#}").contains("-D heartbeat.timeout")
                && format!("{err:#}").contains("a non-negative integer"),
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
