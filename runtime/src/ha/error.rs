//! Errors of the high-availability services; each names what it was doing and where
//! (the key, the quorum or the znode).

use std::time::Duration;

/// A high-availability failure.
#[derive(Debug, thiserror::Error)]
pub enum HaError {
    /// A required configuration key is missing.
    #[error("high availability: `{key}` is required when high-availability.type is zookeeper")]
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A configuration value is not valid.
    #[error("high availability: `{key}` = '{value}' is not valid: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// No ZooKeeper session could be established within the connection timeout.
    #[error("ZooKeeper quorum {quorum} is unreachable: no session within {timeout:?} ({source})")]
    Unreachable {
        /// The quorum (`high-availability.zookeeper.quorum`).
        quorum: String,
        /// The connection timeout.
        timeout: Duration,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A ZooKeeper request failed.
    #[error("ZooKeeper {what} of {path} failed: {source}")]
    Request {
        /// The request.
        what: &'static str,
        /// The znode, relative to the cluster's path.
        path: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A znode holds bytes that are not what Weir writes there.
    #[error("ZooKeeper znode {path} holds unreadable data: {reason}")]
    BadData {
        /// The znode, relative to the cluster's path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A write was refused because this JobManager no longer leads (its latch znode is
    /// gone with its session): a deposed leader acts no more.
    #[error("this JobManager (epoch {epoch}) no longer leads: its ZooKeeper {what} of {path} was refused")]
    NotLeader {
        /// Its epoch.
        epoch: u64,
        /// The write.
        what: &'static str,
        /// The znode, relative to the cluster's path.
        path: String,
    },
    /// `high-availability.storageDir` cannot be used.
    #[error("high-availability.storageDir {url}: {reason}")]
    Storage {
        /// The directory (or file in it) concerned.
        url: String,
        /// Why.
        reason: String,
    },
    /// Waiting for a leader took longer than allowed.
    #[error("no JobManager leader published its address under {path} within {timeout:?}")]
    NoLeader {
        /// The cluster's path.
        path: String,
        /// How long it waited.
        timeout: Duration,
    },
}

impl HaError {
    /// A failed request `what` on `path`.
    pub fn request(what: &'static str, path: &str, source: zookeeper_client::Error) -> Self {
        Self::Request {
            what,
            path: path.to_string(),
            source,
        }
    }

    /// Whether a request failed because the session it went through has expired: no
    /// later request through that session can succeed, only one through a new session.
    pub fn is_session_expired(&self) -> bool {
        matches!(
            self,
            Self::Request {
                source: zookeeper_client::Error::SessionExpired,
                ..
            }
        )
    }
}
