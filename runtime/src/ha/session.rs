//! Opening a ZooKeeper session rooted at the cluster's path.
//!
//! Invariant: [`connect`] waits at most the configured connection timeout, so an
//! unreachable quorum is an error naming it, never a hang.

use super::config::HaConfig;
use super::error::HaError;
use zookeeper_client::{Acls, Client, CreateMode};

/// Opens a session with the quorum, creates the cluster's path if missing and returns a
/// client rooted there (every path it is given is relative to the cluster).
pub async fn connect(config: &HaConfig) -> Result<Client, HaError> {
    let unreachable = |source| HaError::Unreachable {
        quorum: config.quorum.clone(),
        timeout: config.connection_timeout,
        source,
    };
    let connecting = Client::connector()
        .with_session_timeout(config.session_timeout)
        .with_connection_timeout(config.connection_timeout)
        .connect(&config.quorum);
    let client = tokio::time::timeout(config.connection_timeout, connecting)
        .await
        .map_err(|_| unreachable(zookeeper_client::Error::Timeout))?
        .map_err(unreachable)?;
    let path = config.cluster_path();
    client
        .mkdir(&path, &CreateMode::Persistent.with_acls(Acls::anyone_all()))
        .await
        .map_err(|e| HaError::request("create", &path, e))?;
    client
        .chroot(path.clone())
        .map_err(|_| HaError::InvalidValue {
            key: "high-availability.cluster-id".into(),
            value: path,
            reason: "not a valid znode path".into(),
        })
}
