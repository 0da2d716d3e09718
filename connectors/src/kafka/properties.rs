//! The client properties of a Kafka source or sink: the bootstrap servers and any
//! librdkafka property the user sets, applied over the connector's own defaults.
//!
//! Invariant: property values never appear in logs or errors (they may hold passwords);
//! only the bootstrap servers, which are addresses, are named.

use super::error::KafkaConnectorError;
use rdkafka::config::ClientConfig;
use std::collections::BTreeMap;

/// The bootstrap servers and user properties of one client.
#[derive(Clone, Debug, Default)]
pub struct Properties {
    pub(crate) servers: String,
    user: BTreeMap<String, String>,
}

impl Properties {
    /// Sets the bootstrap servers (`HOST:PORT[,HOST:PORT...]`).
    pub(crate) fn set_servers(&mut self, servers: &str) {
        self.servers = servers.to_string();
    }

    /// Sets a librdkafka property (`bootstrap.servers` included).
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        if key == "bootstrap.servers" {
            self.set_servers(value);
        } else {
            self.user.insert(key.to_string(), value.to_string());
        }
    }

    /// Returns the user's value of `key`, if set.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.user.get(key).map(String::as_str)
    }

    /// Checks the servers are set, naming `what` otherwise.
    pub(crate) fn check(&self, what: &str) -> Result<(), KafkaConnectorError> {
        if self.servers.trim().is_empty() {
            return Err(KafkaConnectorError::Config {
                what: what.to_string(),
                message: "no bootstrap servers set (bootstrap_servers(\"HOST:PORT\"))".into(),
            });
        }
        Ok(())
    }

    /// Returns a client configuration: `defaults`, then the user's properties over them.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.servers);
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.user {
            config.set(k, v);
        }
        config
    }
}
