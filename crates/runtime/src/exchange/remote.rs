//! Channels between TaskManagers over TCP.
//!
//! A producer opens one connection per remote channel, sends a fixed handshake naming the
//! consumer's gate and channel, then length-prefixed buffers. The TaskManager's
//! [`DataServer`] accepts connections and feeds each into the named gate.
//!
//! Invariants: frame sizes are bounded by [`MAX_FRAME_BYTES`]; a bad handshake, an unknown
//! gate, an oversized or truncated frame, or a connection dropped before end-of-partition
//! fails only the affected channel's task (with an error naming the peer and channel),
//! never the TaskManager.

use super::gate::InputMessage;
use super::registry::GateRegistry;
use crate::element::ends_with_end_of_partition;
use crate::error::ExchangeError;
use crate::metrics::TaskMetrics;
use crate::types::{GateAddress, JobId, SubtaskId};
use bytes::Bytes;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, warn};

/// First bytes of every data connection.
pub const HANDSHAKE_MAGIC: [u8; 4] = *b"WEIR";
/// Version of the data protocol; a peer with another version is refused.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest buffer a peer may send in one frame.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
const HANDSHAKE_LEN: usize = 4 + 1 + 8 + 4 + 2 + 2 + 4;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const GATE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

fn encode_handshake(gate: &GateAddress, channel: u32) -> [u8; HANDSHAKE_LEN] {
    let mut b = [0u8; HANDSHAKE_LEN];
    b[0..4].copy_from_slice(&HANDSHAKE_MAGIC);
    b[4] = PROTOCOL_VERSION;
    b[5..13].copy_from_slice(&gate.subtask.job.0.to_le_bytes());
    b[13..17].copy_from_slice(&gate.subtask.vertex.to_le_bytes());
    b[17..19].copy_from_slice(&gate.subtask.subtask.to_le_bytes());
    b[19..21].copy_from_slice(&gate.gate.to_le_bytes());
    b[21..25].copy_from_slice(&channel.to_le_bytes());
    b
}

fn decode_handshake(b: &[u8; HANDSHAKE_LEN]) -> Result<(GateAddress, u32), String> {
    if b[0..4] != HANDSHAKE_MAGIC {
        return Err(format!(
            "not a Weir data connection (magic {:02x?})",
            &b[0..4]
        ));
    }
    if b[4] != PROTOCOL_VERSION {
        return Err(format!(
            "data protocol version {} is not supported (expected {PROTOCOL_VERSION})",
            b[4]
        ));
    }
    let gate = GateAddress {
        subtask: SubtaskId {
            job: JobId(u64::from_le_bytes(b[5..13].try_into().expect("8"))),
            vertex: u32::from_le_bytes(b[13..17].try_into().expect("4")),
            subtask: u16::from_le_bytes(b[17..19].try_into().expect("2")),
        },
        gate: u16::from_le_bytes(b[19..21].try_into().expect("2")),
    };
    Ok((gate, u32::from_le_bytes(b[21..25].try_into().expect("4"))))
}

/// The producer end of one channel to another TaskManager.
pub struct RemoteChannel {
    stream: TcpStream,
    peer: SocketAddr,
    target: String,
    /// The frame being written: length prefix and buffer in one write.
    frame: Vec<u8>,
}

/// How often a write blocked by TCP back-pressure looks at the cancellation flag.
pub const WRITE_WAIT_SLICE: Duration = Duration::from_millis(50);

impl RemoteChannel {
    /// Connects to the TaskManager at `addr` and names the consumer's gate and channel.
    pub fn connect(
        addr: SocketAddr,
        gate: GateAddress,
        channel: u32,
        buffer_size: usize,
    ) -> Result<Self, ExchangeError> {
        let target = format!("{gate:?} channel {channel}");
        let io = |source| ExchangeError::Io {
            peer: addr.to_string(),
            target: target.clone(),
            source,
        };
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        stream
            .write_all(&encode_handshake(&gate, channel))
            .map_err(io)?;
        stream
            .set_write_timeout(Some(WRITE_WAIT_SLICE))
            .map_err(io)?;
        Ok(Self {
            stream,
            peer: addr,
            target,
            frame: Vec::with_capacity(buffer_size + 512),
        })
    }

    /// Sends one buffer as a frame. While the peer does not take data (TCP back-pressure)
    /// the write waits in slices of [`WRITE_WAIT_SLICE`]; a set `cancel` flag ends it.
    pub fn send(
        &mut self,
        data: &[u8],
        cancel: &AtomicBool,
        metrics: &TaskMetrics,
    ) -> Result<(), ExchangeError> {
        if data.len() > MAX_FRAME_BYTES {
            return Err(ExchangeError::Protocol {
                peer: self.peer.to_string(),
                target: self.target.clone(),
                reason: format!(
                    "buffer of {} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit",
                    data.len()
                ),
            });
        }
        self.frame.clear();
        self.frame
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.frame.extend_from_slice(data);
        let mut pos = 0;
        let mut blocked: Option<std::time::Instant> = None;
        let result = self.write_frame(&mut pos, &mut blocked, cancel);
        if let Some(since) = blocked {
            metrics.add_back_pressured_ns(since.elapsed().as_nanos() as u64);
        }
        result
    }

    fn write_frame(
        &mut self,
        pos: &mut usize,
        blocked: &mut Option<std::time::Instant>,
        cancel: &AtomicBool,
    ) -> Result<(), ExchangeError> {
        while *pos < self.frame.len() {
            match self.stream.write(&self.frame[*pos..]) {
                Ok(0) => {
                    return Err(self.io_error(std::io::ErrorKind::WriteZero.into()));
                }
                Ok(n) => *pos += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    blocked.get_or_insert_with(std::time::Instant::now);
                    if cancel.load(Ordering::Relaxed) {
                        return Err(ExchangeError::Cancelled);
                    }
                }
                Err(e) => return Err(self.io_error(e)),
            }
        }
        Ok(())
    }

    fn io_error(&self, source: std::io::Error) -> ExchangeError {
        ExchangeError::Io {
            peer: self.peer.to_string(),
            target: self.target.clone(),
            source,
        }
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
                            let _ = std::thread::Builder::new()
                                .name("weir-data-conn".into())
                                .spawn(move || serve_connection(stream, reg));
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

fn serve_connection(mut stream: TcpStream, registry: Arc<GateRegistry>) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown peer".into());
    let mut hs = [0u8; HANDSHAKE_LEN];
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    if let Err(e) = stream.read_exact(&mut hs) {
        warn!(peer = %peer, error = %e, "data connection closed before its handshake");
        return;
    }
    let (gate, channel) = match decode_handshake(&hs) {
        Ok(x) => x,
        Err(reason) => {
            warn!(peer = %peer, reason = %reason, "refusing data connection");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    };
    let (sender, channels) = match registry.lookup_with_channels(&gate, GATE_LOOKUP_TIMEOUT, None) {
        Ok(s) => s,
        Err(e) => {
            warn!(peer = %peer, error = %e, "refusing data connection to unknown gate");
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
    };
    if channel >= channels {
        warn!(peer = %peer, ?gate, channel, channels, "refusing data connection to an unknown channel");
        let _ = stream.shutdown(Shutdown::Both);
        return;
    }
    let _ = stream.set_read_timeout(None);
    debug!(peer = %peer, ?gate, channel, "data connection open");
    let fail = |error: String| {
        warn!(peer = %peer, ?gate, channel, error = %error, "data connection failed");
        let _ = sender.send(InputMessage::Failed {
            gate: gate.gate,
            channel,
            error: format!("data connection from {peer} to {gate:?} channel {channel}: {error}"),
        });
    };
    let mut ended = false;
    loop {
        let mut len = [0u8; 4];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            // After end of partition the producer is done: however the connection closes
            // now, nothing is lost.
            Err(_) if ended => return,
            Err(e) => return fail(format!("connection lost before end of partition: {e}")),
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > MAX_FRAME_BYTES {
            return fail(format!(
                "frame of {len} bytes is outside 1..={MAX_FRAME_BYTES}"
            ));
        }
        let mut data = vec![0u8; len];
        if let Err(e) = stream.read_exact(&mut data) {
            return fail(format!("truncated frame of {len} bytes: {e}"));
        }
        ended = ends_with_end_of_partition(&data);
        let msg = InputMessage::Buffer {
            gate: gate.gate,
            channel,
            data: Bytes::from(data),
        };
        if sender.send(msg).is_err() {
            // The consumer task is gone; it reported its own outcome.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn handshake_decoder_accepts_only_its_own_encoding(bytes in proptest::array::uniform25(any::<u8>())) {
            if let Ok((gate, channel)) = decode_handshake(&bytes) {
                prop_assert_eq!(encode_handshake(&gate, channel), bytes);
            }
        }
    }
}
