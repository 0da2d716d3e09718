//! The producer side of the data plane's TCP connections: one connection per consumer
//! TaskManager, shared by every channel this TaskManager sends to it.
//!
//! A [`ConnectionManager`] opens connections on demand. Producer tasks write `OPEN`,
//! `DATA` and `CLOSE` frames under the connection's write lock; one reader thread per
//! connection takes `CREDIT` and `ERROR` frames and hands them to the channels, which
//! then deliver queued buffers from that thread.
//!
//! Invariants: a `DATA` frame is written in one piece (header and buffer are one
//! contiguous segment), so frames of different channels never interleave; the consumer
//! reads every frame into a buffer it granted, so a write never waits on another
//! channel's consumer and the shared connection cannot deadlock; when the connection
//! breaks, every channel on it fails with an error naming the peer and the channel, and
//! the next channel to that peer opens a new connection. With internal TLS the hello and
//! every frame go through the connection's TLS session ([`super::transport`]).

use super::buffer::FLAG_BARRIER;
use super::protocol::{
    control_frame, decode_header, encode_header, encode_hello, encode_open, tls_hint, FrameHeader,
    FrameKind, HEADER_LEN, MAX_ERROR_BYTES,
};
use super::subpartition::{Push, PushError, Subpartition};
use super::transport::{self, TransportReader, TransportWriter};
use crate::checkpoint::channel_state::PriorityBarrier;
use crate::error::ExchangeError;
use crate::rpc::tls::InternalTls;
use crate::types::GateAddress;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tracing::{debug, warn};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one socket write may block in total before the connection counts as broken.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one blocking write call waits before it is retried.
pub const WRITE_WAIT_SLICE: Duration = Duration::from_millis(50);

/// Why a frame could not be sent on a data connection; the connection is broken.
#[derive(Debug, Error)]
pub enum ConnectionError {
    /// Writing the frame failed (or timed out); the connection was ended.
    #[error("write to {peer} failed: {source}")]
    Write {
        /// The consumer TaskManager's data address.
        peer: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The connection broke before the frame was written.
    #[error("data connection to {peer} broke: {reason}")]
    Broken {
        /// The consumer TaskManager's data address.
        peer: SocketAddr,
        /// Why it broke, as its reader saw it.
        reason: String,
    },
}

/// One TCP connection to a consumer TaskManager.
pub(crate) struct Connection {
    peer: SocketAddr,
    writer: Mutex<TransportWriter>,
    /// A handle to shut the socket down without waiting for the write lock.
    control: TcpStream,
    channels: Mutex<HashMap<u32, Arc<Subpartition>>>,
    broken: AtomicBool,
    /// Why the connection broke, set before `broken`.
    reason: std::sync::OnceLock<String>,
}

impl Connection {
    /// Writes one whole frame. A failed write may have left part of a frame on the wire,
    /// so it ends the connection: the socket is shut down, and the reader thread then
    /// fails every channel on it.
    fn write(&self, frame: &[u8]) -> Result<(), ConnectionError> {
        let mut w = self.writer.lock().expect("connection writer poisoned");
        w.write_frame(frame, write_all_bounded).map_err(|source| {
            self.broken.store(true, Ordering::Release);
            let _ = self.control.shutdown(Shutdown::Both);
            ConnectionError::Write {
                peer: self.peer,
                source,
            }
        })
    }

    /// Writes `buffer` as the `DATA` frame of channel `id`.
    pub(crate) fn send_data(
        &self,
        id: u32,
        buffer: &mut super::buffer::Buffer,
    ) -> Result<(), ConnectionError> {
        let len = buffer.payload_len() as u32;
        let header = FrameHeader {
            kind: FrameKind::Data,
            channel: id,
            arg: buffer.backlog,
            len,
            flags: buffer.flags,
            // `complete` says where the unfinished last frame, or the barrier that ends the
            // buffer, starts.
            complete: if buffer.flags & (super::buffer::FLAG_CONTINUES | FLAG_BARRIER) != 0 {
                buffer.complete
            } else {
                len
            },
        };
        let frame = buffer.frame_mut();
        encode_header(&header, &mut frame[..HEADER_LEN]);
        self.write(frame)
    }

    /// Forgets channel `id` (its end was sent).
    pub(crate) fn forget(&self, id: u32) {
        self.channels
            .lock()
            .expect("connection channels poisoned")
            .remove(&id);
    }

    /// Tells the consumer that channel `id` is given up, and forgets it.
    pub(crate) fn close_channel(&self, id: u32) {
        self.forget(id);
        if !self.broken.load(Ordering::Acquire) {
            let _ = self.write(&control_frame(FrameKind::Close, id, 0, &[]));
        }
    }

    /// Marks the connection broken and fails every channel on it.
    fn break_with(&self, reason: &str) {
        let _ = self.reason.set(reason.to_string());
        self.broken.store(true, Ordering::Release);
        // First the socket, so a producer blocked in a write returns (and releases its
        // channel) before its channel is failed.
        let _ = self.control.shutdown(Shutdown::Both);
        let channels: Vec<Arc<Subpartition>> = self
            .channels
            .lock()
            .expect("connection channels poisoned")
            .drain()
            .map(|(_, s)| s)
            .collect();
        for s in channels {
            s.fail(format!("data connection to {}: {reason}", self.peer));
        }
    }

    fn channel(&self, id: u32) -> Option<Arc<Subpartition>> {
        self.channels
            .lock()
            .expect("connection channels poisoned")
            .get(&id)
            .cloned()
    }
}

/// Writes `frame` completely, retrying writes that time out, for at most [`WRITE_TIMEOUT`].
fn write_all_bounded(stream: &mut TcpStream, frame: &[u8]) -> std::io::Result<()> {
    let deadline = Instant::now() + WRITE_TIMEOUT;
    let mut pos = 0;
    while pos < frame.len() {
        match stream.write(&frame[pos..]) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => pos += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if Instant::now() >= deadline {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("peer took no data for {WRITE_TIMEOUT:?}"),
                    ));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The producer-side connections of one TaskManager, one per consumer TaskManager.
#[derive(Default)]
pub struct ConnectionManager {
    connections: Mutex<HashMap<SocketAddr, Arc<Connection>>>,
    next_id: AtomicU32,
    /// The cluster secret every connection presents (empty: none).
    secret: Vec<u8>,
    /// Mutual TLS on every connection (`None`: plain TCP).
    tls: Option<InternalTls>,
}

impl ConnectionManager {
    /// Creates a manager without connections.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a manager whose connections present the cluster secret, inside a TLS
    /// session when `tls` is set.
    pub fn secured(secret: Option<&str>, tls: Option<InternalTls>) -> Self {
        Self {
            connections: Mutex::default(),
            next_id: AtomicU32::default(),
            secret: secret.unwrap_or_default().as_bytes().to_vec(),
            tls,
        }
    }

    /// Returns the number of open connections.
    pub fn connection_count(&self) -> usize {
        self.connections
            .lock()
            .expect("connection manager poisoned")
            .values()
            .filter(|c| !c.broken.load(Ordering::Acquire))
            .count()
    }

    /// Opens a channel to `channel` of `gate` in the TaskManager at `addr`, over the
    /// connection to it (opened now if there is none).
    pub fn open_channel(
        &self,
        addr: SocketAddr,
        gate: GateAddress,
        channel: u32,
    ) -> Result<Arc<Subpartition>, ExchangeError> {
        let target = format!("{gate:?} channel {channel} at {addr}");
        let connection = {
            let mut conns = self
                .connections
                .lock()
                .expect("connection manager poisoned");
            match conns.get(&addr) {
                Some(c) if !c.broken.load(Ordering::Acquire) => c.clone(),
                _ => {
                    let c = connect(addr, &self.secret, self.tls.as_ref()).map_err(|source| {
                        ExchangeError::Io {
                            peer: addr.to_string(),
                            target: target.clone(),
                            source,
                        }
                    })?;
                    conns.insert(addr, c.clone());
                    c
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let remote = RemoteChannel {
            connection: connection.clone(),
            id,
        };
        let sub = Arc::new(Subpartition::new(Box::new(remote), target.clone()));
        connection
            .channels
            .lock()
            .expect("connection channels poisoned")
            .insert(id, sub.clone());
        let opened = if connection.broken.load(Ordering::Acquire) {
            Err(ConnectionError::Broken {
                peer: addr,
                reason: connection
                    .reason
                    .get()
                    .cloned()
                    .unwrap_or_else(|| "a write failed".into()),
            })
        } else {
            connection.write(&control_frame(
                FrameKind::Open,
                id,
                0,
                &encode_open(&gate, channel),
            ))
        };
        if let Err(reason) = opened {
            connection.forget(id);
            return Err(ExchangeError::ChannelFailed {
                target,
                reason: reason.to_string(),
            });
        }
        Ok(sub)
    }
}

impl Drop for ConnectionManager {
    fn drop(&mut self) {
        let conns: Vec<_> = self
            .connections
            .lock()
            .map(|mut c| c.drain().map(|(_, c)| c).collect())
            .unwrap_or_default();
        for c in conns {
            c.break_with("the TaskManager is shutting down");
        }
    }
}

fn connect(
    addr: SocketAddr,
    secret: &[u8],
    tls: Option<&InternalTls>,
) -> std::io::Result<Arc<Connection>> {
    let stream = super::socket::connect(addr, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    super::socket::bound_unacknowledged(&stream)?;
    let control = stream.try_clone()?;
    let (reader, mut writer) = transport::client(stream, tls)?;
    writer.write_frame(&encode_hello(secret), |tcp, hello| tcp.write_all(hello))?;
    writer.tcp().set_write_timeout(Some(WRITE_WAIT_SLICE))?;
    let connection = Arc::new(Connection {
        peer: addr,
        writer: Mutex::new(writer),
        control,
        channels: Mutex::new(HashMap::new()),
        broken: AtomicBool::new(false),
        reason: std::sync::OnceLock::new(),
    });
    let c2 = connection.clone();
    std::thread::Builder::new()
        .name(format!("weir-credit-{}", addr.port()))
        .spawn(move || read_credits(reader, c2))?;
    debug!(peer = %addr, tls = tls.is_some(), "data connection open");
    Ok(connection)
}

/// Reads `CREDIT`, `BUFFER_SIZE` and `ERROR` frames until the connection ends.
fn read_credits(stream: TransportReader, connection: Arc<Connection>) {
    let mut stream = std::io::BufReader::with_capacity(4096, stream);
    let reason = loop {
        let mut h = [0u8; HEADER_LEN];
        if let Err((e, got)) = read_header(&mut stream, &mut h) {
            break format!("connection lost: {e}{}", tls_hint(&h[..got]));
        }
        let header = match decode_header(&h) {
            Ok(h) => h,
            Err(e) => break format!("bad frame from the consumer: {e}{}", tls_hint(&h)),
        };
        match header.kind {
            FrameKind::Credit => {
                if let Some(s) = connection.channel(header.channel) {
                    s.add_credit(header.arg);
                }
            }
            FrameKind::BufferSize => {
                if let Some(s) = connection.channel(header.channel) {
                    s.set_buffer_size(header.arg);
                }
            }
            FrameKind::Error => {
                let mut msg = vec![0u8; (header.len as usize).min(MAX_ERROR_BYTES)];
                if let Err(e) = stream.read_exact(&mut msg) {
                    break format!("connection lost: {e}");
                }
                let msg = String::from_utf8_lossy(&msg).into_owned();
                let sub = connection
                    .channels
                    .lock()
                    .expect("connection channels poisoned")
                    .remove(&header.channel);
                if let Some(s) = sub {
                    warn!(peer = %connection.peer, channel = %s.target(), error = %msg, "consumer failed a channel");
                    s.fail(format!(
                        "consumer TaskManager {} failed the channel: {msg}",
                        connection.peer
                    ));
                }
                // Acknowledge, so the consumer side forgets the channel (and releases the
                // gate's buffers it holds).
                let ack = control_frame(FrameKind::Close, header.channel, 0, &[]);
                if let Err(e) = connection.write(&ack) {
                    break e.to_string();
                }
            }
            kind => break format!("unexpected {kind:?} frame from the consumer"),
        }
    };
    if !connection.broken.load(Ordering::Acquire) {
        debug!(peer = %connection.peer, reason = %reason, "data connection closed");
    }
    connection.break_with(&reason);
}

/// Reads a whole frame header; on failure also says how many bytes came (a peer speaking
/// TLS sends a 7-byte alert before it closes).
fn read_header(stream: &mut impl Read, h: &mut [u8]) -> Result<(), (std::io::Error, usize)> {
    let mut got = 0;
    while got < h.len() {
        match stream.read(&mut h[got..]) {
            Ok(0) => return Err((std::io::ErrorKind::UnexpectedEof.into(), got)),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((e, got)),
        }
    }
    Ok(())
}

/// A channel to a consumer in another TaskManager: its buffers go over the connection
/// shared by every channel to that TaskManager.
struct RemoteChannel {
    connection: Arc<Connection>,
    id: u32,
}

impl Push for RemoteChannel {
    fn push(&self, mut buffer: super::buffer::Buffer) -> Result<(), PushError> {
        Ok(self.connection.send_data(self.id, &mut buffer)?)
    }

    fn push_priority(&self, barrier: PriorityBarrier) -> Result<(), PushError> {
        let payload = super::protocol::encode_barrier(&barrier);
        Ok(self
            .connection
            .write(&control_frame(FrameKind::Barrier, self.id, 0, &payload))?)
    }

    fn ended(&self) {
        self.connection.forget(self.id);
    }

    fn give_up(&self, failed: bool) {
        if failed {
            self.connection.forget(self.id);
        } else {
            self.connection.close_channel(self.id);
        }
    }
}
