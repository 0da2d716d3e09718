//! The handshake that opens every control connection.
//!
//! The connecting side sends a hello, the accepting side a reply; both layouts are fixed
//! for every protocol version (big-endian integers):
//!
//! ```text
//! hello: "WRPC" | version u16 | role u8 | secret length u16 | secret (UTF-8)
//! reply: "WRPC" | version u16 | status u8 (0 welcome, 1 refused) | reason length u16 | reason (UTF-8)
//! ```
//!
//! Invariants: the accepting side refuses another protocol version and a missing or wrong
//! cluster secret with a reason the other side prints; bytes that do not start with
//! `"WRPC"` end the connection at once, unanswered; secrets are compared in time
//! independent of where they differ.

use super::frame::read_exact;
use super::RpcError;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// First bytes of every hello and reply.
pub const RPC_MAGIC: [u8; 4] = *b"WRPC";
/// Version of the control protocol.
pub const RPC_PROTOCOL_VERSION: u16 = 12;
/// Longest secret a hello may carry.
const MAX_SECRET_BYTES: usize = 1024;
/// Longest reason a reply may carry.
const MAX_REASON_BYTES: usize = 4096;

/// Who opens a control connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PeerRole {
    /// The `weir` command line.
    Client = 1,
    /// A TaskManager registering with the JobManager.
    TaskManager = 2,
    /// A job worker process reporting its tasks to the JobManager.
    Worker = 3,
}

impl PeerRole {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(PeerRole::Client),
            2 => Some(PeerRole::TaskManager),
            3 => Some(PeerRole::Worker),
            _ => None,
        }
    }
}

fn io(peer: &str) -> impl Fn(std::io::Error) -> RpcError + '_ {
    move |source| RpcError::Io {
        peer: peer.to_owned(),
        source,
    }
}

pub use crate::types::same_secret;

/// Reads a big-endian u16.
async fn read_u16<R: AsyncRead + Unpin>(
    r: &mut R,
    peer: &str,
    during: &'static str,
) -> Result<u16, RpcError> {
    let mut b = [0u8; 2];
    read_exact(r, peer, &mut b, during).await?;
    Ok(u16::from_be_bytes(b))
}

/// Reads the start every hello and reply share: the magic, then the version.
async fn read_start<R: AsyncRead + Unpin>(r: &mut R, peer: &str) -> Result<u16, RpcError> {
    let mut magic = [0u8; 4];
    read_exact(r, peer, &mut magic, "during the handshake").await?;
    if magic != RPC_MAGIC {
        return Err(RpcError::NotWeir {
            peer: peer.to_owned(),
            got: magic.to_vec(),
        });
    }
    read_u16(r, peer, "during the handshake").await
}

/// Reads a length-prefixed field of at most `max` bytes.
async fn read_field<R: AsyncRead + Unpin>(
    r: &mut R,
    peer: &str,
    max: usize,
) -> Result<Vec<u8>, RpcError> {
    let len = usize::from(read_u16(r, peer, "during the handshake").await?);
    if len > max {
        return Err(RpcError::TooLarge {
            peer: peer.to_owned(),
            len: len as u64,
            max,
        });
    }
    let mut field = vec![0u8; len];
    read_exact(r, peer, &mut field, "during the handshake").await?;
    Ok(field)
}

/// Opens a control connection as `role`, presenting `secret` (the cluster secret, if
/// the cluster has one).
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &str,
    role: PeerRole,
    secret: Option<&str>,
) -> Result<(), RpcError> {
    let secret = secret.unwrap_or_default().as_bytes();
    if secret.len() > MAX_SECRET_BYTES {
        return Err(RpcError::TooLarge {
            peer: peer.to_owned(),
            len: secret.len() as u64,
            max: MAX_SECRET_BYTES,
        });
    }
    send(stream, peer, role as u8, secret).await?;

    let theirs = read_start(stream, peer).await?;
    let mut status = [0u8; 1];
    read_exact(stream, peer, &mut status, "during the handshake").await?;
    let reason = read_field(stream, peer, MAX_REASON_BYTES).await?;
    if theirs != RPC_PROTOCOL_VERSION {
        return Err(RpcError::VersionMismatch {
            peer: peer.to_owned(),
            ours: RPC_PROTOCOL_VERSION,
            theirs,
        });
    }
    match status[0] {
        0 => Ok(()),
        1 => Err(RpcError::Refused {
            peer: peer.to_owned(),
            reason: String::from_utf8_lossy(&reason).into_owned(),
        }),
        other => Err(RpcError::Corrupt {
            peer: peer.to_owned(),
            reason: format!("handshake status {other}"),
        }),
    }
}

/// Sends the reply: welcome (`None`) or refused with `reason`.
async fn reply<S: AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &str,
    refused: Option<&str>,
) -> Result<(), RpcError> {
    let reason = refused.unwrap_or_default().as_bytes();
    let reason = &reason[..reason.len().min(MAX_REASON_BYTES)];
    send(stream, peer, u8::from(refused.is_some()), reason).await
}

/// Sends a hello or a reply: magic, version, `byte` (role or status), then `field`
/// (secret or reason) with its length.
async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &str,
    byte: u8,
    field: &[u8],
) -> Result<(), RpcError> {
    let mut out = Vec::with_capacity(9 + field.len());
    out.extend_from_slice(&RPC_MAGIC);
    out.extend_from_slice(&RPC_PROTOCOL_VERSION.to_be_bytes());
    out.push(byte);
    out.extend_from_slice(&(field.len() as u16).to_be_bytes());
    out.extend_from_slice(field);
    stream.write_all(&out).await.map_err(io(peer))?;
    stream.flush().await.map_err(io(peer))
}

/// Accepts a control connection: checks the hello's protocol version and, if `secret`
/// is set, the cluster secret; returns the peer's role. A refused peer is told why.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    peer: &str,
    secret: Option<&str>,
) -> Result<PeerRole, RpcError> {
    let theirs = read_start(stream, peer).await?;
    if theirs != RPC_PROTOCOL_VERSION {
        let why = format!(
            "it speaks Weir control protocol version {theirs}, this process version {RPC_PROTOCOL_VERSION}"
        );
        reply(stream, peer, Some(&why)).await?;
        return Err(RpcError::VersionMismatch {
            peer: peer.to_owned(),
            ours: RPC_PROTOCOL_VERSION,
            theirs,
        });
    }
    let mut role = [0u8; 1];
    read_exact(stream, peer, &mut role, "during the handshake").await?;
    let presented = read_field(stream, peer, MAX_SECRET_BYTES).await?;
    let Some(role) = PeerRole::from_u8(role[0]) else {
        let why = format!("unknown peer role {}", role[0]);
        reply(stream, peer, Some(&why)).await?;
        return Err(RpcError::Corrupt {
            peer: peer.to_owned(),
            reason: why,
        });
    };
    if let Some(expected) = secret {
        if !same_secret(expected.as_bytes(), &presented) {
            let why = "wrong or missing cluster secret (cluster.secret)";
            reply(stream, peer, Some(why)).await?;
            return Err(RpcError::Refused {
                peer: peer.to_owned(),
                reason: why.to_owned(),
            });
        }
    }
    reply(stream, peer, None).await?;
    Ok(role)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{read_message, write_message};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A loopback listener and a connection to it: (client side, server side).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    #[tokio::test]
    async fn a_peer_with_the_secret_is_welcomed_and_messages_flow() {
        let (mut c, mut s) = pair().await;
        let (connected, accepted) = tokio::join!(
            connect(&mut c, "jobmanager", PeerRole::TaskManager, Some("s3cret")),
            accept(&mut s, "taskmanager", Some("s3cret"))
        );
        connected.unwrap();
        assert_eq!(accepted.unwrap(), PeerRole::TaskManager);
        write_message(&mut c, "jobmanager", &"register".to_string())
            .await
            .unwrap();
        let m: String = read_message(&mut s, "taskmanager").await.unwrap();
        assert_eq!(m, "register");
    }

    #[tokio::test]
    async fn a_wrong_or_missing_secret_is_refused_with_the_reason_on_both_sides() {
        for presented in [Some("guess"), None] {
            let (mut c, mut s) = pair().await;
            let (connected, accepted) = tokio::join!(
                connect(&mut c, "jobmanager", PeerRole::Client, presented),
                accept(&mut s, "client", Some("s3cret"))
            );
            let err = connected.unwrap_err();
            assert!(
                matches!(&err, RpcError::Refused { reason, .. } if reason.contains("cluster.secret")),
                "{err}"
            );
            assert!(matches!(accepted.unwrap_err(), RpcError::Refused { .. }));
        }
    }

    #[tokio::test]
    async fn another_protocol_version_is_refused_naming_both_versions() {
        let (mut c, mut s) = pair().await;
        let mut hello = RPC_MAGIC.to_vec();
        hello.extend_from_slice(&99u16.to_be_bytes());
        hello.extend_from_slice(&[2, 0, 0]);
        c.write_all(&hello).await.unwrap();
        let err = accept(&mut s, "taskmanager", None).await.unwrap_err();
        assert!(
            matches!(
                err,
                RpcError::VersionMismatch {
                    theirs: 99,
                    ours: RPC_PROTOCOL_VERSION,
                    ..
                }
            ),
            "{err}"
        );
        // The old peer reads a reply it understands: refused, with both versions.
        let mut reply = vec![0u8; 9];
        c.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply[..4], &RPC_MAGIC);
        assert_eq!(reply[6], 1, "refused");
        let len = u16::from_be_bytes([reply[7], reply[8]]) as usize;
        let mut reason = vec![0u8; len];
        c.read_exact(&mut reason).await.unwrap();
        let reason = String::from_utf8(reason).unwrap();
        assert!(reason.contains("99") && reason.contains(&RPC_PROTOCOL_VERSION.to_string()));
    }

    #[tokio::test]
    async fn garbage_bytes_end_the_connection_unanswered() {
        let (mut c, mut s) = pair().await;
        c.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let err = accept(&mut s, "127.0.0.1:40000", None).await.unwrap_err();
        assert!(matches!(err, RpcError::NotWeir { .. }), "{err}");
        assert!(err.to_string().contains("127.0.0.1:40000"), "{err}");
        drop(s);
        // Closed (or reset, as the rest of the garbage was never read) without a byte.
        let mut rest = Vec::new();
        if let Err(e) = c.read_to_end(&mut rest).await {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        }
        assert!(rest.is_empty(), "nothing is answered");
        // And a client that reaches something else says so.
        let (mut c, mut s) = pair().await;
        let (connected, _) = tokio::join!(
            connect(&mut c, "127.0.0.1:8081", PeerRole::Client, None),
            async {
                let mut hello = [0u8; 9];
                s.read_exact(&mut hello).await.unwrap();
                s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                    .await
                    .unwrap();
            }
        );
        assert!(matches!(connected.unwrap_err(), RpcError::NotWeir { .. }));
    }

    #[tokio::test]
    async fn a_plain_client_that_reaches_a_tls_endpoint_is_told_to_enable_tls() {
        let (mut c, mut s) = pair().await;
        let (connected, _) = tokio::join!(
            connect(&mut c, "127.0.0.1:6123", PeerRole::Client, None),
            async {
                let mut hello = [0u8; 9];
                s.read_exact(&mut hello).await.unwrap();
                // What a TLS server answers to bytes that are no TLS record: a fatal alert.
                s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32])
                    .await
                    .unwrap();
            }
        );
        let err = connected.unwrap_err();
        assert!(matches!(err, RpcError::NotWeir { .. }), "{err}");
        assert!(
            err.to_string().contains("security.ssl.internal.enabled"),
            "{err}"
        );
    }

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(same_secret(b"", b""));
    }
}
