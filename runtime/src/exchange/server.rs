//! The consumer side of the data plane's TCP connections.
//!
//! A TaskManager's [`DataServer`] accepts one connection per producer TaskManager and reads
//! it on one thread: `OPEN` attaches a logical channel to a registered gate (waiting for
//! the gate on a helper thread if its task has not started yet, so other channels keep
//! flowing), `DATA` is read straight into a buffer of the gate's pool and queued for the
//! consumer task, `BARRIER` (an unaligned checkpoint's barrier) is queued for it as a
//! priority event, `CLOSE` forgets a channel its producer gave up (the producer's failure
//! cancels the job, so the consumer is not failed a second time). The consumer task grants credits through
//! [`RemoteCredit`], which writes `CREDIT` frames back on the same connection.
//!
//! Invariants: a `DATA` frame is read only into a buffer the consumer granted (the reader
//! counts credits per channel), so the reader never waits for a buffer and never blocks
//! one channel behind another; a frame for an unknown channel id, a buffer without
//! credit, or an oversized buffer fails only that channel (an `ERROR` frame tells the
//! producer); a malformed header or a connection dropped before a channel's end fails
//! the channels of this connection with an error naming the peer and channel, never the
//! TaskManager. Each connection starts with its handshake (`server_handshake.rs`: TLS with
//! internal TLS, then the hello and secret); its frames then go through the same transport.

use super::gate::{CreditSink, InputMessage};
use super::protocol::{
    control_frame, decode_barrier, decode_header, decode_open, FrameKind, ProtocolError,
    BARRIER_LEN, HEADER_LEN, OPEN_LEN,
};
use super::registry::{GateEntry, GateRegistry};
use super::server_handshake::handshake;
use super::transport::{TransportReader, TransportWriter};
use crate::error::ExchangeError;
use crate::rpc::tls::InternalTls;
use crate::types::GateAddress;
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use thiserror::Error;
use tracing::{debug, warn};

const GATE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the data server stops reading a connection (every channel on it then fails).
#[derive(Debug, Error)]
enum ServeError {
    /// Reading a frame header failed: the producer closed the connection or it broke.
    #[error("connection lost before end of partition: {source}")]
    Lost {
        /// The read error.
        source: std::io::Error,
    },
    /// A frame header is malformed.
    #[error("bad frame: {0}")]
    BadFrame(#[from] ProtocolError),
    /// A frame of a kind only consumers send.
    #[error("unexpected {kind:?} frame from a producer")]
    UnexpectedFrame {
        /// The frame's kind.
        kind: FrameKind,
    },
    /// An `OPEN` frame ends before its payload.
    #[error("truncated open frame: {source}")]
    TruncatedOpen {
        /// The read error.
        source: std::io::Error,
    },
    /// An `OPEN` frame reuses the id of a channel open on this connection.
    #[error("channel id {id} opened twice")]
    OpenedTwice {
        /// The connection-local channel id.
        id: u32,
    },
    /// No thread could be started to wait for a gate not registered yet.
    #[error("cannot wait for gate {gate:?}: {source}")]
    GateWait {
        /// The gate the channel is for.
        gate: GateAddress,
        /// The thread spawn error.
        source: std::io::Error,
    },
    /// A `DATA` frame ends before its payload.
    #[error("truncated data frame of {len} bytes: {source}")]
    TruncatedData {
        /// Its announced payload length.
        len: usize,
        /// The read error.
        source: std::io::Error,
    },
    /// A frame being skipped ends before its payload.
    #[error("truncated frame: {source}")]
    TruncatedFrame {
        /// The read error.
        source: std::io::Error,
    },
}

/// The write half of a connection, shared by the consumer tasks that grant credits on it.
struct Writer {
    stream: Mutex<TransportWriter>,
    peer: String,
}

impl Writer {
    fn send(&self, frame: &[u8]) {
        let mut s = self.stream.lock().expect("data connection writer poisoned");
        if let Err(e) = s.write_frame(frame, |tcp, bytes| tcp.write_all(bytes)) {
            // Part of a frame may be on the wire (or a credit lost): end the connection,
            // so the reader fails its channels instead of letting them stall.
            debug!(peer = %self.peer, error = %e, "cannot write to data connection");
            let _ = s.tcp().shutdown(Shutdown::Both);
        }
    }
}

/// The consumer end of one remote channel.
struct ServerChannel {
    gate: GateAddress,
    channel: u32,
    /// Credits granted and not yet used by a `DATA` frame.
    credit: AtomicU32,
    /// Set once the gate is registered.
    entry: OnceLock<GateEntry>,
    /// Set when the channel failed, possibly before it was attached.
    failed: AtomicBool,
}

/// Grants credits of one remote channel to its producer.
pub struct RemoteCredit {
    channel: Arc<ServerChannel>,
    id: u32,
    writer: Arc<Writer>,
}

impl CreditSink for RemoteCredit {
    /// Grants `n` more buffers: counted first, so the reader accepts the data they allow.
    fn announce(&self, n: u32) {
        self.channel.credit.fetch_add(n, Ordering::AcqRel);
        self.writer
            .send(&control_frame(FrameKind::Credit, self.id, n, &[]));
    }

    fn resize_buffers(&self, bytes: u32) {
        self.writer
            .send(&control_frame(FrameKind::BufferSize, self.id, bytes, &[]));
    }
}

impl std::fmt::Debug for RemoteCredit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} channel {} from {}",
            self.channel.gate, self.channel.channel, self.writer.peer
        )
    }
}

/// Accepts data connections for one TaskManager and feeds them into its gates.
pub struct DataServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl DataServer {
    /// Binds `bind` (use port 0 for any free port) and starts accepting.
    pub fn start(bind: SocketAddr, registry: Arc<GateRegistry>) -> std::io::Result<Self> {
        Self::start_secured(bind, registry, None, None)
    }

    /// Binds `bind` and starts accepting connections that present `secret` (any
    /// connection when `None`), inside a mutual TLS session when `tls` is set; others are
    /// refused and logged.
    pub fn start_secured(
        bind: SocketAddr,
        registry: Arc<GateRegistry>,
        secret: Option<&str>,
        tls: Option<InternalTls>,
    ) -> std::io::Result<Self> {
        let secret: Arc<[u8]> = secret.unwrap_or_default().as_bytes().into();
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let accept = std::thread::Builder::new()
            .name(format!("weir-data-accept-{}", addr.port()))
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Acquire) {
                        break;
                    }
                    match conn {
                        Ok(stream) => {
                            let reg = registry.clone();
                            let secret = secret.clone();
                            let tls = tls.clone();
                            let _ = std::thread::Builder::new()
                                .name("weir-data-conn".into())
                                .spawn(move || {
                                    serve_connection(stream, reg, &secret, tls.as_ref())
                                });
                        }
                        Err(e) => warn!(error = %e, "data server accept failed"),
                    }
                }
            })?;
        Ok(Self {
            addr,
            stop,
            accept: Some(accept),
        })
    }

    /// Returns the bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DataServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

struct Conn {
    stream: TcpStream,
    /// Reads frames with few system calls: headers and small buffers come from one read.
    reader: BufReader<TransportReader>,
    peer: String,
    writer: Arc<Writer>,
    registry: Arc<GateRegistry>,
    channels: HashMap<u32, Arc<ServerChannel>>,
    scratch: Vec<u8>,
}

fn serve_connection(
    stream: TcpStream,
    registry: Arc<GateRegistry>,
    secret: &[u8],
    tls: Option<&InternalTls>,
) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown peer".into());
    let Some((reader, writer, stream)) = handshake(stream, &peer, secret, tls) else {
        return;
    };
    debug!(peer = %peer, tls = tls.is_some(), "data connection open");
    let mut conn = Conn {
        stream,
        reader,
        peer: peer.clone(),
        writer: Arc::new(Writer {
            stream: Mutex::new(writer),
            peer,
        }),
        registry,
        channels: HashMap::new(),
        scratch: Vec::new(),
    };
    let reason = conn.run();
    conn.fail_all(&reason.to_string());
    let _ = conn.stream.shutdown(Shutdown::Both);
}

impl Conn {
    /// Serves frames until the connection ends; returns why it ended.
    fn run(&mut self) -> ServeError {
        loop {
            let mut h = [0u8; HEADER_LEN];
            if let Err(source) = self.reader.read_exact(&mut h) {
                return ServeError::Lost { source };
            }
            let header = match decode_header(&h) {
                Ok(h) => h,
                Err(e) => return ServeError::BadFrame(e),
            };
            let id = header.channel;
            let len = header.len as usize;
            let step = match header.kind {
                FrameKind::Open => self.open(id),
                FrameKind::Data => self.data(id, len, header.arg, header.flags, header.complete),
                FrameKind::Barrier => self.barrier(id),
                FrameKind::Close => {
                    // The producer's task failed or was cancelled (and its failure
                    // cancels the job), or it acknowledges an error: forget the channel
                    // without failing the consumer, so the job's failure names the root
                    // cause, not this consequence.
                    if let Some(ch) = self.channels.remove(&id) {
                        ch.failed.store(true, Ordering::SeqCst);
                        debug!(peer = %self.peer, gate = ?ch.gate, channel = ch.channel, "data channel closed by its producer");
                    }
                    Ok(())
                }
                kind => return ServeError::UnexpectedFrame { kind },
            };
            if let Err(reason) = step {
                return reason;
            }
        }
    }

    fn open(&mut self, id: u32) -> Result<(), ServeError> {
        let mut p = [0u8; OPEN_LEN];
        self.reader
            .read_exact(&mut p)
            .map_err(|source| ServeError::TruncatedOpen { source })?;
        let (gate, channel) = decode_open(&p);
        if self.channels.contains_key(&id) {
            return Err(ServeError::OpenedTwice { id });
        }
        let ch = Arc::new(ServerChannel {
            gate,
            channel,
            credit: AtomicU32::new(0),
            entry: OnceLock::new(),
            failed: AtomicBool::new(false),
        });
        self.channels.insert(id, ch.clone());
        let attach = Attach {
            channel: ch,
            id,
            writer: self.writer.clone(),
        };
        match self.registry.get(&gate) {
            Some(entry) => attach.run(Ok(entry)),
            None => {
                // The consumer task has not registered its gate yet: wait aside, so the
                // channels already open keep flowing.
                let registry = self.registry.clone();
                let spawned = std::thread::Builder::new()
                    .name("weir-data-open".into())
                    .spawn(move || {
                        let entry = registry.lookup(&gate, GATE_LOOKUP_TIMEOUT, None);
                        attach.run(entry)
                    });
                if let Err(source) = spawned {
                    return Err(ServeError::GateWait { gate, source });
                }
            }
        }
        Ok(())
    }

    fn data(
        &mut self,
        id: u32,
        len: usize,
        backlog: u32,
        flags: u8,
        complete: u32,
    ) -> Result<(), ServeError> {
        let Some(ch) = self.channels.get(&id).cloned() else {
            self.skip(len)?;
            warn!(peer = %self.peer, channel = id, "data for an unknown channel id");
            self.writer.send(&control_frame(
                FrameKind::Error,
                id,
                0,
                format!("unknown channel id {id}").as_bytes(),
            ));
            return Ok(());
        };
        let entry = ch.entry.get();
        let has_credit = ch
            .credit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1))
            .is_ok();
        let problem = match entry {
            _ if !has_credit => Some("a buffer arrived without credit".to_string()),
            None => Some("a buffer arrived before the channel was attached".to_string()),
            Some(e) if HEADER_LEN + len > e.pool.segment_capacity() => Some(format!(
                "a buffer of {len} bytes exceeds the gate's {}-byte buffers",
                e.pool.segment_capacity() - HEADER_LEN
            )),
            Some(_) => None,
        };
        let mut buffer = match (problem, entry.and_then(|e| e.pool.try_request())) {
            (None, Some(b)) => b,
            (problem, _) => {
                let reason =
                    problem.unwrap_or_else(|| "no free buffer for a credited buffer".into());
                self.skip(len)?;
                self.channels.remove(&id);
                self.fail_channel(&ch, &reason);
                self.writer
                    .send(&control_frame(FrameKind::Error, id, 0, reason.as_bytes()));
                return Ok(());
            }
        };
        buffer
            .read_payload(&mut self.reader, len)
            .map_err(|source| ServeError::TruncatedData { len, source })?;
        buffer.backlog = backlog;
        buffer.flags = flags;
        buffer.complete = complete;
        let end = buffer.is_end();
        let sender = entry.expect("checked above").sender.clone();
        let (gate, channel) = (ch.gate, ch.channel);
        drop(ch);
        let msg = InputMessage::Buffer {
            gate: gate.gate,
            channel,
            buffer,
        };
        if end {
            // Forget the channel first: once the consumer has its end, nothing of the
            // channel may outlive the job (its gate's pool is reserved until then).
            self.channels.remove(&id);
        }
        if sender.send(msg).is_err() {
            self.channels.remove(&id);
            self.writer.send(&control_frame(
                FrameKind::Error,
                id,
                0,
                format!("the consumer of {gate:?} channel {channel} is gone").as_bytes(),
            ));
        }
        Ok(())
    }

    /// A barrier of an unaligned checkpoint: queued for the consumer as a priority event,
    /// ahead of the channel's buffers (it needs no credit). A barrier for an unknown
    /// channel is dropped (its checkpoint does not complete); one for a channel not attached
    /// yet fails the channel, whose consumer could not tell its data before and after it.
    fn barrier(&mut self, id: u32) -> Result<(), ServeError> {
        let mut p = [0u8; BARRIER_LEN];
        self.reader
            .read_exact(&mut p)
            .map_err(|source| ServeError::TruncatedFrame { source })?;
        let barrier = decode_barrier(&p);
        let Some(ch) = self.channels.get(&id).cloned() else {
            debug!(peer = %self.peer, channel = id, checkpoint = barrier.checkpoint, "barrier for an unknown channel dropped");
            return Ok(());
        };
        let Some(entry) = ch.entry.get() else {
            let reason = "a barrier arrived before the channel was attached".to_string();
            self.channels.remove(&id);
            self.fail_channel(&ch, &reason);
            self.writer
                .send(&control_frame(FrameKind::Error, id, 0, reason.as_bytes()));
            return Ok(());
        };
        let _ = entry.sender.send(InputMessage::Priority {
            gate: ch.gate.gate,
            channel: ch.channel,
            barrier,
        });
        Ok(())
    }

    /// Reads and drops `len` payload bytes (bounded by the header check).
    fn skip(&mut self, len: usize) -> Result<(), ServeError> {
        self.scratch.resize(len.min(64 << 10), 0);
        let mut left = len;
        while left > 0 {
            let n = left.min(self.scratch.len());
            self.reader
                .read_exact(&mut self.scratch[..n])
                .map_err(|source| ServeError::TruncatedFrame { source })?;
            left -= n;
        }
        Ok(())
    }

    fn fail_channel(&self, ch: &ServerChannel, reason: &str) {
        ch.failed.store(true, Ordering::SeqCst);
        warn!(peer = %self.peer, gate = ?ch.gate, channel = ch.channel, error = %reason, "data channel failed");
        if let Some(entry) = ch.entry.get() {
            let _ = entry.sender.send(InputMessage::Failed {
                gate: ch.gate.gate,
                channel: ch.channel,
                error: format!(
                    "data connection from {} to {:?} channel {}: {reason}",
                    self.peer, ch.gate, ch.channel
                ),
            });
        }
    }

    fn fail_all(&mut self, reason: &str) {
        for (_, ch) in std::mem::take(&mut self.channels) {
            self.fail_channel(&ch, reason);
        }
    }
}

/// Attaches a remote channel to its gate once the gate is known.
struct Attach {
    channel: Arc<ServerChannel>,
    id: u32,
    writer: Arc<Writer>,
}

impl Attach {
    fn run(self, entry: Result<GateEntry, ExchangeError>) {
        let refuse = |reason: String| {
            warn!(peer = %self.writer.peer, gate = ?self.channel.gate, channel = self.channel.channel, reason = %reason, "refusing data channel");
            self.writer.send(&control_frame(
                FrameKind::Error,
                self.id,
                0,
                reason.as_bytes(),
            ));
        };
        let entry = match entry {
            Ok(e) => e,
            Err(e) => return refuse(e.to_string()),
        };
        if self.channel.channel >= entry.channels {
            return refuse(format!(
                "{:?} has {} channels; channel {} does not exist",
                self.channel.gate, entry.channels, self.channel.channel
            ));
        }
        let sender = entry.sender.clone();
        let _ = self.channel.entry.set(entry);
        if self.channel.failed.load(Ordering::SeqCst) {
            // The channel failed while it waited for its gate (its producer closed it or
            // the connection dropped): the consumer must not wait for it.
            let _ = sender.send(InputMessage::Failed {
                gate: self.channel.gate.gate,
                channel: self.channel.channel,
                error: format!(
                    "data connection from {} to {:?} channel {}: failed before it was attached",
                    self.writer.peer, self.channel.gate, self.channel.channel
                ),
            });
            return;
        }
        let opened = InputMessage::Opened {
            gate: self.channel.gate.gate,
            channel: self.channel.channel,
            credit: Box::new(RemoteCredit {
                channel: self.channel.clone(),
                id: self.id,
                writer: self.writer.clone(),
            }),
        };
        if sender.send(opened).is_err() {
            refuse(format!("the consumer of {:?} is gone", self.channel.gate));
        }
    }
}
