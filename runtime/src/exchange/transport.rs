//! The bytes of one data connection: plain TCP, or a TLS session over it when the
//! process has internal TLS (`security.ssl.internal.*`, as Flink's internal SSL covers its
//! data plane too).
//!
//! A data connection is read by one thread and written by others (producer tasks on one
//! side, consumer tasks granting credits on the other), on blocking sockets. A TLS session
//! is one state machine, so both halves share it behind a lock, but no thread holds that
//! lock while it waits on the socket: the reader waits for ciphertext without it and takes
//! it only to decrypt what arrived; a writer takes it only to encrypt a frame into its own
//! buffer and writes that buffer to the socket after releasing it. Two blocked writers of
//! the two ends can therefore never wait on each other's readers.
//!
//! Invariants: the hello and every frame travel inside the session (the cluster secret is
//! never sent in the clear); records leave in the order they were encrypted (a writer
//! encrypts and writes under its half's own lock, which every writer of the connection
//! shares); a peer that does not complete the mutual handshake within the timeout, or whose
//! certificate is not trusted, is refused with an error that says TLS failed.

use crate::rpc::tls::InternalTls;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConnection, Connection, ServerConnection};

/// How long a TLS handshake on a data connection may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Ciphertext read from the socket per system call.
const RAW_READ: usize = 64 << 10;

type Session = Arc<Mutex<Connection>>;

/// The reading half of a data connection.
pub(crate) struct TransportReader {
    tcp: TcpStream,
    tls: Option<Session>,
    pending: Ciphertext,
}

/// Ciphertext read from the socket and not yet handed to the session: `raw[start..end]`.
struct Ciphertext {
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    /// The socket reached its end.
    eof: bool,
}

/// The writing half of a data connection.
pub(crate) struct TransportWriter {
    tcp: TcpStream,
    tls: Option<Session>,
    /// The ciphertext of the frame being written (reused).
    out: Vec<u8>,
}

/// Which end of the handshake this process is.
enum Side<'a> {
    Client(&'a InternalTls),
    Server(&'a InternalTls),
}

/// Opens the transport of a connection this process dialled: runs the TLS handshake as the
/// client when `tls` is set.
pub(crate) fn client(
    tcp: TcpStream,
    tls: Option<&InternalTls>,
) -> io::Result<(TransportReader, TransportWriter)> {
    open(tcp, tls.map(Side::Client))
}

/// Opens the transport of a connection this process accepted: runs the TLS handshake as the
/// server when `tls` is set.
pub(crate) fn server(
    tcp: TcpStream,
    tls: Option<&InternalTls>,
) -> io::Result<(TransportReader, TransportWriter)> {
    open(tcp, tls.map(Side::Server))
}

fn open(
    mut tcp: TcpStream,
    side: Option<Side<'_>>,
) -> io::Result<(TransportReader, TransportWriter)> {
    let session = match side {
        None => None,
        Some(side) => Some(Arc::new(Mutex::new(handshake(&mut tcp, side)?))),
    };
    let reader = TransportReader {
        tcp: tcp.try_clone()?,
        tls: session.clone(),
        pending: Ciphertext {
            raw: if session.is_some() {
                vec![0u8; RAW_READ].into_boxed_slice()
            } else {
                Box::default()
            },
            start: 0,
            end: 0,
            eof: false,
        },
    };
    let writer = TransportWriter {
        tcp,
        tls: session,
        out: Vec::new(),
    };
    Ok((reader, writer))
}

/// Runs the mutual TLS handshake on the blocking socket, within [`HANDSHAKE_TIMEOUT`] in
/// all (each socket call may wait only for what is left of it, so a peer that trickles
/// bytes cannot stretch it).
fn handshake(tcp: &mut TcpStream, side: Side<'_>) -> io::Result<Connection> {
    let (read_timeout, write_timeout) = (tcp.read_timeout()?, tcp.write_timeout()?);
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let setup = |e: tokio_rustls::rustls::Error| failed(io::Error::other(e));
    let mut session = match side {
        Side::Client(tls) => {
            let name = ServerName::try_from(crate::rpc::tls::SERVER_NAME).expect("a valid name");
            Connection::Client(ClientConnection::new(tls.client_config(), name).map_err(setup)?)
        }
        Side::Server(tls) => {
            Connection::Server(ServerConnection::new(tls.server_config()).map_err(setup)?)
        }
    };
    while session.is_handshaking() || session.wants_write() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(failed(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
            )));
        }
        tcp.set_read_timeout(Some(left))?;
        tcp.set_write_timeout(Some(left))?;
        if session.is_handshaking() {
            session.complete_io(tcp).map_err(failed)?;
        } else {
            session.write_tls(tcp).map_err(failed)?;
        }
    }
    tcp.set_read_timeout(read_timeout)?;
    tcp.set_write_timeout(write_timeout)?;
    Ok(session)
}

/// `e` with the hint that TLS failed and why it usually does.
fn failed(e: io::Error) -> io::Error {
    crate::rpc::tls::failed("TLS failed", e)
}

/// Reads plaintext out of the TLS session, feeding it ciphertext from `tcp` (read without
/// the session's lock) until some is there or the connection ends.
fn read_tls(
    session: &Session,
    tcp: &mut TcpStream,
    p: &mut Ciphertext,
    buf: &mut [u8],
) -> io::Result<usize> {
    loop {
        {
            let mut s = session.lock().expect("data session poisoned");
            match s.reader().read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection",
                    ))
                }
                done => return done,
            }
            if p.start < p.end || p.eof {
                // The end of stream is handed over too: the session then tells a clean
                // close (`close_notify`, `Ok(0)`) from a cut connection (an error).
                let mut pending = &p.raw[p.start..p.end];
                p.start += s.read_tls(&mut pending)?;
                // A peer that refuses this process's certificate says so with an alert
                // after this side's part of a TLS 1.3 handshake ended: name TLS.
                s.process_new_packets()
                    .map_err(|e| failed(io::Error::new(io::ErrorKind::InvalidData, e)))?;
                continue;
            }
        }
        let n = tcp.read(&mut p.raw)?;
        (p.start, p.end, p.eof) = (0, n, n == 0);
    }
}

impl Read for TransportReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &self.tls {
            None => self.tcp.read(buf),
            Some(session) => read_tls(session, &mut self.tcp, &mut self.pending, buf),
        }
    }
}

impl TransportWriter {
    /// The socket, to shut it down or set its write timeout.
    pub(crate) fn tcp(&self) -> &TcpStream {
        &self.tcp
    }

    /// Writes `frame` whole: as it is, or encrypted under the session's lock and then written
    /// without it. `write_raw` writes bytes to the socket (with the caller's bounds on
    /// blocking); a failure may leave part of the frame on the wire.
    pub(crate) fn write_frame(
        &mut self,
        frame: &[u8],
        write_raw: impl FnOnce(&mut TcpStream, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let Some(session) = &self.tls else {
            return write_raw(&mut self.tcp, frame);
        };
        self.out.clear();
        {
            let mut s = session.lock().expect("data session poisoned");
            let mut pos = 0;
            while pos < frame.len() {
                pos += s.writer().write(&frame[pos..])?;
                // Drained after every call (which encrypts up to the session's buffer
                // limit), so that limit never refuses plaintext; this also sends what the
                // reading half queued (a key update's answer).
                while s.wants_write() {
                    s.write_tls(&mut self.out)?;
                }
            }
        }
        write_raw(&mut self.tcp, &self.out)
    }
}
