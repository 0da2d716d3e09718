//! The CLI's view of the configuration ([`weir_runtime::config::Configuration`]: defaults,
//! then `weir.toml`, then `WEIR_*` variables, then `-D` flags), with what only the
//! processes of a cluster check: high availability and exposure beyond loopback.
//!
//! Invariant: explicit command flags (`--rpc-address`, `--slots`, ...) are set last, so
//! they override every source.

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use weir_runtime::config::key::Key;
use weir_runtime::config::keys;
use weir_runtime::config::Configuration;

/// Resolved configuration: every key with its value and where the value came from.
#[derive(Clone, Debug)]
pub struct Config(Configuration);

/// The `high-availability.*` keys.
fn ha_keys() -> impl Iterator<Item = &'static str> {
    weir_runtime::ha::HA_KEYS.iter().map(|(k, _, _)| *k)
}

impl Config {
    /// Loads `file` (else the discovered `weir.toml`), the environment and `overrides`.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<Self> {
        Ok(Self(Configuration::load(file, overrides)?))
    }

    /// Sets `key` from an explicit command flag.
    pub fn set<T>(&mut self, key: &Key<T>, value: String, flag: &str) {
        self.0.set(key, value, flag);
    }

    /// The value of `key`; an error names the key, the value and where it came from.
    pub fn get<T>(&self, key: &Key<T>) -> Result<T> {
        Ok(self.0.get(key)?)
    }

    /// The layered configuration.
    pub fn inner(&self) -> &Configuration {
        &self.0
    }

    /// The job keys set by a file, a variable or a flag: what a job program is handed.
    pub fn job_properties(&self) -> BTreeMap<String, String> {
        self.0.job_properties()
    }

    /// The high-availability settings, `None` unless `high-availability.type` is
    /// `zookeeper`; an error names the key (and where its value came from).
    pub fn ha(&self) -> Result<Option<weir_runtime::ha::HaConfig>> {
        let pairs: Vec<(&str, &str)> = ha_keys()
            .filter_map(|k| self.0.raw(k).map(|v| (k, v)))
            .collect();
        weir_runtime::ha::HaConfig::from_pairs(pairs).map_err(|e| {
            let sources: Vec<String> = ha_keys()
                .filter_map(|k| self.0.source(k).map(|s| format!("{k} from {s}")))
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
    fn flags_set_last_override_every_source() {
        let mut c = Config::load(None, &["taskmanager.numberOfTaskSlots=3".into()]).unwrap();
        c.set(&keys::TASK_SLOTS, "5".into(), "--slots");
        assert_eq!(c.get(&keys::TASK_SLOTS).unwrap(), 5);
        c.set(&keys::TASK_SLOTS, "many".into(), "--slots");
        let err = format!("{:#}", c.get(&keys::TASK_SLOTS).unwrap_err());
        assert!(err.contains("(from --slots)"), "{err}");
    }
}
