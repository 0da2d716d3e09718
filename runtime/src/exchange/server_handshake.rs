//! The start of a data connection on the consumer side: the transport (the TLS handshake
//! with internal TLS) and the hello with the cluster secret, within one timeout.
//!
//! Invariant: a peer that fails the TLS handshake, sends no Weir hello of this protocol
//! version, or presents a missing or wrong secret is refused (logged and closed) before
//! any frame of it is read; the secret is compared in time independent of where it differs.

use super::protocol::{decode_hello, ProtocolError, HELLO_LEN};
use super::transport::{self, TransportReader, TransportWriter};
use crate::rpc::tls::InternalTls;
use std::io::{BufReader, Read};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
use thiserror::Error;
use tracing::warn;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const CREDIT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Reads frames with few system calls: headers and small buffers come from one read.
const READ_BUFFER: usize = 64 << 10;

/// Why the data server refuses a connection at its hello.
#[derive(Debug, Error)]
enum HandshakeError {
    /// The hello is not a Weir data hello of this protocol version.
    #[error(transparent)]
    Hello(#[from] ProtocolError),
    /// The hello ends before its secret's length.
    #[error("hello without a secret field: {source}")]
    NoSecretField {
        /// The read error.
        source: std::io::Error,
    },
    /// The secret is longer than a hello may carry.
    #[error("secret of {len} bytes is too long")]
    SecretTooLong {
        /// Its announced length.
        len: usize,
    },
    /// The hello ends inside its secret.
    #[error("hello cut short: {source}")]
    CutShort {
        /// The read error.
        source: std::io::Error,
    },
    /// The cluster has a secret and the peer presented none.
    #[error("it presented no cluster secret")]
    NoSecret,
    /// The peer presented a secret other than the cluster's.
    #[error("it presented a wrong cluster secret")]
    WrongSecret,
}

/// Reads the secret a hello presents and compares it with `ours` (in time independent of
/// where they differ).
fn read_secret(stream: &mut impl Read, ours: &[u8]) -> Result<(), HandshakeError> {
    let mut len = [0u8; 2];
    stream
        .read_exact(&mut len)
        .map_err(|source| HandshakeError::NoSecretField { source })?;
    let len = u16::from_le_bytes(len) as usize;
    if len > super::protocol::MAX_SECRET_BYTES {
        return Err(HandshakeError::SecretTooLong { len });
    }
    let mut theirs = vec![0u8; len];
    stream
        .read_exact(&mut theirs)
        .map_err(|source| HandshakeError::CutShort { source })?;
    if !ours.is_empty() && !crate::types::same_secret(ours, &theirs) {
        return Err(if theirs.is_empty() {
            HandshakeError::NoSecret
        } else {
            HandshakeError::WrongSecret
        });
    }
    Ok(())
}

/// Opens the transport (the TLS handshake, if any) and reads and checks the hello, within
/// [`HANDSHAKE_TIMEOUT`]; refuses (logs and closes) a peer that fails either.
pub(super) fn handshake(
    stream: TcpStream,
    peer: &str,
    secret: &[u8],
    tls: Option<&InternalTls>,
) -> Option<(BufReader<TransportReader>, TransportWriter, TcpStream)> {
    let control = match stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.try_clone())
    {
        Ok(control) => control,
        Err(e) => {
            warn!(peer = %peer, error = %e, "cannot serve data connection");
            return None;
        }
    };
    let (reader, writer) = match transport::server(stream, tls) {
        Ok(halves) => halves,
        Err(e) => {
            warn!(peer = %peer, error = %e, "refusing data connection");
            return None;
        }
    };
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let mut hello = [0u8; HELLO_LEN];
    if let Err(e) = reader.read_exact(&mut hello) {
        warn!(peer = %peer, error = %e, "data connection closed before its handshake");
        let _ = control.shutdown(Shutdown::Both);
        return None;
    }
    let checked = decode_hello(&hello)
        .map_err(HandshakeError::from)
        .and_then(|()| read_secret(&mut reader, secret));
    if let Err(reason) = checked {
        warn!(peer = %peer, reason = %reason, "refusing data connection");
        let _ = control.shutdown(Shutdown::Both);
        return None;
    }
    let timeouts = control
        .set_read_timeout(None)
        .and_then(|()| control.set_write_timeout(Some(CREDIT_WRITE_TIMEOUT)))
        .and_then(|()| control.set_nodelay(true))
        .and_then(|()| super::socket::bound_unacknowledged(&control));
    if let Err(e) = timeouts {
        warn!(peer = %peer, error = %e, "cannot serve data connection");
        return None;
    }
    Some((reader, writer, control))
}
