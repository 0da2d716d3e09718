//! The client properties of a Kafka source or sink: the bootstrap servers and any
//! librdkafka property the user sets, applied over the connector's own defaults.
//!
//! Every client reconnects to a broker that went away at least once a second
//! ([`RECONNECT_BACKOFF_MAX_MS`], the Java client's default, which Flink's connector
//! inherits): librdkafka's own default backs off up to 10 s, so a restarted broker would go
//! unused for up to that long, holding back the checkpoints whose commits wait on it.
//!
//! Invariant: property values never appear in logs or errors (they may hold passwords);
//! only the bootstrap servers, which are addresses, are named.

use super::error::KafkaConnectorError;
use rdkafka::config::ClientConfig;
use std::collections::BTreeMap;

/// The longest wait between two connection attempts to a broker, in milliseconds
/// (`reconnect.backoff.max.ms`, unless the user sets it, or sets a longer
/// `reconnect.backoff.ms`, which librdkafka requires to be no longer than the maximum).
pub(crate) const RECONNECT_BACKOFF_MAX_MS: u64 = 1000;

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

    /// Returns a client configuration: the connector's reconnection backoff, `defaults`,
    /// then the user's properties over them.
    pub(crate) fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.servers);
        let backoff = self
            .get("reconnect.backoff.ms")
            .and_then(|v| v.parse::<u64>().ok());
        let max = backoff.unwrap_or(0).max(RECONNECT_BACKOFF_MAX_MS);
        config.set("reconnect.backoff.max.ms", max.to_string());
        for (k, v) in defaults {
            config.set(*k, *v);
        }
        for (k, v) in &self.user {
            config.set(k, v);
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_reconnect_within_a_second_unless_the_user_says_otherwise() {
        let mut p = Properties::default();
        p.set("bootstrap.servers", "127.0.0.1:9092");
        let config = p.client_config(&[("linger.ms", "5")]);
        assert_eq!(config.get("reconnect.backoff.max.ms"), Some("1000"));
        assert_eq!(config.get("linger.ms"), Some("5"));
        assert_eq!(config.get("bootstrap.servers"), Some("127.0.0.1:9092"));
        // A longer first backoff raises the default maximum with it (librdkafka refuses a
        // maximum below it).
        p.set("reconnect.backoff.ms", "2000");
        let config = p.client_config(&[]);
        assert_eq!(config.get("reconnect.backoff.max.ms"), Some("2000"));
        assert!(config.create::<rdkafka::producer::BaseProducer>().is_ok());
        p.set("reconnect.backoff.max.ms", "250");
        p.set("reconnect.backoff.ms", "100");
        let config = p.client_config(&[]);
        assert_eq!(config.get("reconnect.backoff.max.ms"), Some("250"));
    }
}
