//! The leader's published address and how others find it.
//!
//! The leader writes [`LeaderInfo`] into the ephemeral znode [`LEADER_ADDRESS`]; when its
//! session ends the znode goes with it. [`LeaderRetrieval`] reads it and, with a watch,
//! waits for a new one, through one session; [`LeaderWatch`] does so across sessions,
//! opening a new one when its session has expired. The bytes are those of
//! [`super::znode`].

use super::error::HaError;
use super::{connect, HaConfig};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use zookeeper_client::{Client, Error as ZkError};

/// The parent of the candidates' ephemeral sequential latch znodes.
pub const LEADER_LATCH: &str = "/leader/latch";
/// The ephemeral znode the leader publishes its addresses in.
pub const LEADER_ADDRESS: &str = "/leader/address";

/// A JobManager that leads (or runs for leadership).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Its control RPC address (`host:port`).
    pub rpc_address: String,
    /// Its REST address (`host:port`), empty without one.
    pub rest_address: String,
    /// Its epoch: the sequence number of its latch znode, which grows with every
    /// candidate, so a later leader always has a higher one (the fencing token).
    pub epoch: u64,
}

impl LeaderInfo {
    /// The bytes stored in a znode.
    pub fn encode(&self) -> Vec<u8> {
        super::znode::encode(self)
    }

    /// Reads the bytes of znode `path`.
    pub fn decode(path: &str, bytes: &[u8]) -> Result<Self, HaError> {
        super::znode::decode(path, bytes)
    }
}

/// Finds the leader of one cluster through its ZooKeeper session.
#[derive(Clone)]
pub struct LeaderRetrieval {
    client: Client,
}

impl LeaderRetrieval {
    /// Reads through `client`, a session rooted at the cluster's path.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// The leader published now, if any.
    pub async fn current(&self) -> Result<Option<LeaderInfo>, HaError> {
        match self.client.get_data(LEADER_ADDRESS).await {
            Ok((bytes, _)) => LeaderInfo::decode(LEADER_ADDRESS, &bytes).map(Some),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(HaError::request("read", LEADER_ADDRESS, e)),
        }
    }

    /// Waits (at most `timeout`) for a published leader whose epoch is not `known`:
    /// the first leader with `None`, a new one after a leader change otherwise.
    pub async fn next_leader(
        &self,
        known: Option<u64>,
        timeout: Duration,
    ) -> Result<LeaderInfo, HaError> {
        let deadline = Instant::now() + timeout;
        loop {
            let watcher = match self.client.get_and_watch_data(LEADER_ADDRESS).await {
                Ok((bytes, _, watcher)) => {
                    let info = LeaderInfo::decode(LEADER_ADDRESS, &bytes)?;
                    if Some(info.epoch) != known {
                        return Ok(info);
                    }
                    watcher
                }
                Err(ZkError::NoNode) => {
                    match self.client.check_and_watch_stat(LEADER_ADDRESS).await {
                        Ok((Some(_), _)) => continue, // published meanwhile
                        Ok((None, watcher)) => watcher,
                        Err(e) => return Err(HaError::request("watch", LEADER_ADDRESS, e)),
                    }
                }
                Err(e) => return Err(HaError::request("read", LEADER_ADDRESS, e)),
            };
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(HaError::NoLeader {
                    path: self.client.path().to_string(),
                    timeout,
                });
            };
            let _ = tokio::time::timeout(left, watcher.changed()).await;
        }
    }
}

/// Follows the published leader for as long as it is kept, across ZooKeeper sessions.
///
/// A [`LeaderRetrieval`] whose session expired (its holder was cut off from ZooKeeper for
/// longer than the session timeout) fails every read from then on, and never sees another
/// leader; a `LeaderWatch` then opens a new session of its own and goes on through it.
pub struct LeaderWatch {
    config: HaConfig,
    retrieval: LeaderRetrieval,
}

impl LeaderWatch {
    /// Watches through `retrieval` first, and through new sessions of `config`'s cluster
    /// once that one expired.
    pub fn new(config: HaConfig, retrieval: LeaderRetrieval) -> Self {
        Self { config, retrieval }
    }

    /// As [`LeaderRetrieval::next_leader`]; when the session has expired, opens a new one
    /// (within the connection timeout) and waits through it instead, `timeout` again.
    pub async fn next_leader(
        &mut self,
        known: Option<u64>,
        timeout: Duration,
    ) -> Result<LeaderInfo, HaError> {
        match self.retrieval.next_leader(known, timeout).await {
            Err(e) if e.is_session_expired() => {
                tracing::info!(
                    cluster = %self.config.cluster_path(),
                    "the ZooKeeper session watching the JobManager leader expired; opening a new one"
                );
                self.retrieval = LeaderRetrieval::new(connect(&self.config).await?);
                self.retrieval.next_leader(known, timeout).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_info_round_trips_and_foreign_bytes_are_named_errors() {
        let info = LeaderInfo {
            rpc_address: "127.0.0.1:6123".into(),
            rest_address: "127.0.0.1:8081".into(),
            epoch: 7,
        };
        let bytes = info.encode();
        assert!(String::from_utf8_lossy(&bytes).contains("\"format\":1"));
        assert_eq!(LeaderInfo::decode(LEADER_ADDRESS, &bytes).unwrap(), info);
        for bad in [
            &b"\x00garbage"[..],
            br#"{"format":9,"rpc_address":"a","rest_address":"","epoch":1}"#,
        ] {
            let e = LeaderInfo::decode(LEADER_ADDRESS, bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("/leader/address"), "{e}");
        }
    }
}
