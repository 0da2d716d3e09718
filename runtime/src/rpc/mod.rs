//! The control RPC wire format between the processes of a standalone cluster (the CLI,
//! the JobManager and the TaskManagers): a versioned handshake, then framed serde
//! messages over TCP.
//!
//! A connection starts with a hello from the connecting side and a reply from the
//! accepting side, both in a fixed binary layout that never changes between protocol
//! versions (see [`handshake`]), so a peer of another version, a peer without the cluster
//! secret, or one that is not a Weir process at all is refused with a clear message.
//! Afterwards each side sends [`frame`]s: a length, a crc32 and one encoded message.
//!
//! Invariants:
//! - nothing a peer sends can make a process allocate more than [`MAX_MESSAGE_BYTES`]
//!   for one message, or panic: every malformed input is an [`RpcError`] naming the peer;
//! - a connection whose handshake failed carries no message.

pub mod fenced;
pub mod frame;
pub mod handshake;
pub mod link;
pub mod messages;
pub mod request;
pub mod tls;

use thiserror::Error;

pub use fenced::{Fence, Fenced, FencedSender};
pub use frame::{read_message, write_message, MAX_MESSAGE_BYTES};
pub use handshake::{accept, connect, PeerRole, RPC_MAGIC, RPC_PROTOCOL_VERSION};
pub use link::{spawn_link, LinkReceiver, LinkSender};
pub use request::{ClientRequest, RemoteError, RemoteErrorKind, Reply, Request};
pub use tls::ControlStream;

/// How long a connection attempt and its handshake may take.
pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connects to the control endpoint at `address` as `role`, presenting `secret` (inside
/// TLS when [`tls`] is installed), within [`CONNECT_TIMEOUT`].
pub async fn dial(
    address: &str,
    role: PeerRole,
    secret: Option<&str>,
) -> Result<ControlStream, RpcError> {
    let attempt = async {
        let tcp = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|source| RpcError::Io {
                peer: address.to_owned(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let mut stream = tls::client(tcp, address).await?;
        connect(&mut stream, address, role, secret)
            .await
            .map_err(|e| match e {
                // Under TLS 1.3 a server that refuses this process's certificate says so
                // with an alert after the client's side of the handshake completed.
                RpcError::Io { peer, source }
                    if tls::enabled() && source.kind() == std::io::ErrorKind::InvalidData =>
                {
                    tls::handshake_failed(&peer, source)
                }
                e => e,
            })?;
        Ok(stream)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(r) => r,
        Err(_) => Err(RpcError::Io {
            peer: address.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            ),
        }),
    }
}

/// Errors of a control connection; each names the peer.
#[derive(Debug, Error)]
pub enum RpcError {
    /// Reading or writing the socket failed.
    #[error("control connection with {peer}: {source}")]
    Io {
        /// The peer's address.
        peer: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The peer closed the connection.
    #[error("control connection with {peer} closed {during}")]
    Closed {
        /// The peer's address.
        peer: String,
        /// What was being read.
        during: &'static str,
    },
    /// The peer does not speak the Weir control protocol.
    #[error("{peer} is not a Weir control endpoint: {}", not_weir(got))]
    NotWeir {
        /// The peer's address.
        peer: String,
        /// The first bytes it sent.
        got: Vec<u8>,
    },
    /// The peer speaks another version of the protocol.
    #[error(
        "{peer} speaks Weir control protocol version {theirs}, this process version {ours}: \
         run the same Weir release on every process of the cluster"
    )]
    VersionMismatch {
        /// The peer's address.
        peer: String,
        /// Our version.
        ours: u16,
        /// Theirs.
        theirs: u16,
    },
    /// The accepting side refused the connection.
    #[error("{peer} refused the connection: {reason}")]
    Refused {
        /// The peer's address.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A message is larger than the limit.
    #[error("{peer} sent a message of {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The peer's address.
        peer: String,
        /// Its announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A message is not what it should be (checksum, encoding).
    #[error("{peer} sent a corrupt message: {reason}")]
    Corrupt {
        /// The peer's address.
        peer: String,
        /// What is wrong.
        reason: String,
    },
}

/// What a peer that is no Weir control endpoint sent, for [`RpcError::NotWeir`].
fn not_weir(got: &[u8]) -> String {
    if got.starts_with(b"HTTP") {
        "it answers HTTP, as the JobManager's REST port (rest.address) does: give its control RPC address (jobmanager.rpc.address, port 6123 by default)".into()
    } else if tls::looks_like_tls(got) {
        "it answers TLS: set security.ssl.internal.enabled and its certificates here too".into()
    } else {
        format!("it sent {got:02x?} where a Weir hello starts")
    }
}
