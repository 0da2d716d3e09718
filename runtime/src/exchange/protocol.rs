//! The wire protocol of the data plane between two TaskManagers.
//!
//! A producer TaskManager opens one TCP connection to each consumer TaskManager it sends
//! to and multiplexes every logical channel over it. The connection starts with a hello
//! (`"WEIR"`, the protocol version, then the cluster secret as a u16 length and its
//! bytes, empty when the cluster has none); then both sides exchange frames, each a fixed
//! [`HEADER_LEN`]-byte header followed by `len` payload bytes:
//!
//! | kind     | direction            | `arg`           | payload                                  |
//! |----------|----------------------|-----------------|------------------------------------------|
//! | `OPEN`   | producer → consumer  | 0               | gate address with the job attempt, and channel index (24 bytes)|
//! | `DATA`   | producer → consumer  | backlog         | one buffer of encoded elements           |
//! | `CLOSE`  | producer → consumer  | 0               | none: the producer gave the channel up (or acknowledges an `ERROR`) |
//! | `CREDIT` | consumer → producer  | credits granted | none                                     |
//! | `ERROR`  | consumer → producer  | 0               | UTF-8 message: the channel failed        |
//! | `BARRIER`| producer → consumer  | 0               | unaligned barrier: checkpoint (u64), options (u8), buffers sent before it (u64), 17 bytes; needs no credit |
//!
//! Every frame names its logical channel by a connection-local id that the producer picks
//! in `OPEN`. Invariants: [`decode_header`] accepts exactly the headers [`encode_header`]
//! can produce with in-range fields and never panics; a payload is never longer than
//! [`MAX_FRAME_BYTES`] (data frames are further bounded by the receiving gate's buffer
//! size), so a peer cannot make a TaskManager allocate without bound.

use crate::checkpoint::channel_state::PriorityBarrier;
use crate::types::{GateAddress, JobId, SubtaskId};
use thiserror::Error;

/// First bytes of every data connection.
pub const HANDSHAKE_MAGIC: [u8; 4] = *b"WEIR";
/// Version of the data protocol; a peer with another version is refused.
pub const PROTOCOL_VERSION: u8 = 7;
/// Length of the hello's fixed start: magic and version (the secret follows).
pub const HELLO_LEN: usize = 5;
/// Longest cluster secret a hello may carry.
pub const MAX_SECRET_BYTES: usize = 1024;
/// Length of a frame header.
pub const HEADER_LEN: usize = 18;
/// Largest payload of any frame.
pub const MAX_FRAME_BYTES: usize = 64 << 20;
/// Largest payload of an `ERROR` frame.
pub const MAX_ERROR_BYTES: usize = 64 << 10;
/// Length of an `OPEN` payload.
pub const OPEN_LEN: usize = 24;
/// Length of a `BARRIER` payload.
pub const BARRIER_LEN: usize = 17;

/// The kinds of frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// Opens a logical channel to a consumer's gate.
    Open = 1,
    /// One buffer of a channel.
    Data = 2,
    /// The producer gave a channel up before its end.
    Close = 3,
    /// The consumer grants credits (free buffers) to a channel.
    Credit = 4,
    /// The consumer failed a channel.
    Error = 5,
    /// A barrier of an unaligned checkpoint, ahead of the channel's queued buffers.
    Barrier = 6,
    /// The consumer asks for buffers of `arg` bytes (buffer debloating).
    BufferSize = 7,
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the frame is.
    pub kind: FrameKind,
    /// Connection-local id of the logical channel.
    pub channel: u32,
    /// Backlog (`DATA`) or credits (`CREDIT`); zero otherwise.
    pub arg: u32,
    /// Payload length.
    pub len: u32,
    /// Buffer flags (`DATA`); zero otherwise.
    pub flags: u8,
    /// Offset of the unfinished last frame (`DATA` with the continues flag), else `len`.
    pub complete: u32,
}

/// Why a hello or a frame header is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// The hello does not start with [`HANDSHAKE_MAGIC`].
    #[error("not a Weir data connection (magic {magic:02x?}){}", tls_hint(magic))]
    NotWeir {
        /// The first four bytes the peer sent.
        magic: [u8; 4],
    },
    /// The peer speaks another version of the data protocol.
    #[error("data protocol version {theirs} is not supported (expected {ours})")]
    VersionMismatch {
        /// The peer's version.
        theirs: u8,
        /// Ours ([`PROTOCOL_VERSION`]).
        ours: u8,
    },
    /// The header's kind byte names no [`FrameKind`].
    #[error("unknown frame kind {kind}")]
    UnknownKind {
        /// The kind byte.
        kind: u8,
    },
    /// An `OPEN`, `CLOSE` or `CREDIT` frame whose payload has the wrong length.
    #[error("{kind:?} frame with a {len}-byte payload (expected {expected})")]
    WrongLength {
        /// The frame's kind.
        kind: FrameKind,
        /// Its announced payload length.
        len: usize,
        /// The length its kind has.
        expected: usize,
    },
    /// An `ERROR` frame longer than [`MAX_ERROR_BYTES`].
    #[error("error frame of {len} bytes exceeds {max}")]
    ErrorTooLong {
        /// Its announced payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `DATA` frame that is empty or longer than [`MAX_FRAME_BYTES`].
    #[error("data frame of {len} bytes is outside 1..={max}")]
    DataLength {
        /// Its announced payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A `DATA` frame with flag bits this version does not define.
    #[error("data frame with unknown flags {flags:#04x}")]
    UnknownFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A `DATA` frame whose complete part is longer than the frame.
    #[error("data frame whose complete part ({complete}) exceeds its length ({len})")]
    CompleteExceedsLength {
        /// The announced complete part.
        complete: u32,
        /// The payload length.
        len: usize,
    },
    /// A frame sets fields its kind does not use.
    #[error("{kind:?} frame with unused fields set")]
    UnusedFieldsSet {
        /// The frame's kind.
        kind: FrameKind,
    },
    /// A `CREDIT` frame that grants no credit.
    #[error("credit frame granting nothing")]
    EmptyCredit,
    /// A `BUFFER_SIZE` frame that asks for empty buffers.
    #[error("buffer size frame asking for empty buffers")]
    EmptyBufferSize,
}

/// Encodes the hello, presenting `secret` (at most [`MAX_SECRET_BYTES`]; empty: none).
pub fn encode_hello(secret: &[u8]) -> Vec<u8> {
    let secret = &secret[..secret.len().min(MAX_SECRET_BYTES)];
    let mut b = Vec::with_capacity(HELLO_LEN + 2 + secret.len());
    b.extend_from_slice(&HANDSHAKE_MAGIC);
    b.push(PROTOCOL_VERSION);
    b.extend_from_slice(&(secret.len() as u16).to_le_bytes());
    b.extend_from_slice(secret);
    b
}

/// A hint when `bytes` (the first a peer sent) start a TLS record: an alert or a
/// handshake, as a peer with `security.ssl.internal.enabled` sends.
pub fn tls_hint(bytes: &[u8]) -> &'static str {
    if crate::rpc::tls::looks_like_tls(bytes) {
        "; the peer speaks TLS: set security.ssl.internal.enabled and its certificates here too"
    } else {
        ""
    }
}

/// Checks a hello.
pub fn decode_hello(b: &[u8; HELLO_LEN]) -> Result<(), ProtocolError> {
    if b[..4] != HANDSHAKE_MAGIC {
        return Err(ProtocolError::NotWeir {
            magic: [b[0], b[1], b[2], b[3]],
        });
    }
    if b[4] != PROTOCOL_VERSION {
        return Err(ProtocolError::VersionMismatch {
            theirs: b[4],
            ours: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

/// Writes `h` into `out`.
pub fn encode_header(h: &FrameHeader, out: &mut [u8]) {
    out[0] = h.kind as u8;
    out[1..5].copy_from_slice(&h.channel.to_le_bytes());
    out[5..9].copy_from_slice(&h.arg.to_le_bytes());
    out[9..13].copy_from_slice(&h.len.to_le_bytes());
    out[13] = h.flags;
    out[14..18].copy_from_slice(&h.complete.to_le_bytes());
}

/// Decodes and validates a frame header.
pub fn decode_header(b: &[u8; HEADER_LEN]) -> Result<FrameHeader, ProtocolError> {
    let kind = match b[0] {
        1 => FrameKind::Open,
        2 => FrameKind::Data,
        3 => FrameKind::Close,
        4 => FrameKind::Credit,
        5 => FrameKind::Error,
        6 => FrameKind::Barrier,
        7 => FrameKind::BufferSize,
        kind => return Err(ProtocolError::UnknownKind { kind }),
    };
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let h = FrameHeader {
        kind,
        channel: u32_at(1),
        arg: u32_at(5),
        len: u32_at(9),
        flags: b[13],
        complete: u32_at(14),
    };
    let len = h.len as usize;
    let fixed = |want: usize| {
        if len != want {
            Err(ProtocolError::WrongLength {
                kind,
                len,
                expected: want,
            })
        } else {
            Ok(())
        }
    };
    match kind {
        FrameKind::Open => fixed(OPEN_LEN)?,
        FrameKind::Barrier => fixed(BARRIER_LEN)?,
        FrameKind::Close | FrameKind::Credit | FrameKind::BufferSize => fixed(0)?,
        FrameKind::Error if len > MAX_ERROR_BYTES => {
            return Err(ProtocolError::ErrorTooLong {
                len,
                max: MAX_ERROR_BYTES,
            })
        }
        FrameKind::Error => {}
        FrameKind::Data => {
            if len == 0 || len > MAX_FRAME_BYTES {
                return Err(ProtocolError::DataLength {
                    len,
                    max: MAX_FRAME_BYTES,
                });
            }
            if h.flags & !7 != 0 {
                return Err(ProtocolError::UnknownFlags { flags: h.flags });
            }
            if h.complete > h.len {
                return Err(ProtocolError::CompleteExceedsLength {
                    complete: h.complete,
                    len,
                });
            }
        }
    }
    let zero_rest = kind != FrameKind::Data && (h.flags != 0 || h.complete != 0);
    let zero_arg = matches!(
        kind,
        FrameKind::Open | FrameKind::Close | FrameKind::Error | FrameKind::Barrier
    );
    if zero_rest || (zero_arg && h.arg != 0) {
        return Err(ProtocolError::UnusedFieldsSet { kind });
    }
    if kind == FrameKind::Credit && h.arg == 0 {
        return Err(ProtocolError::EmptyCredit);
    }
    if kind == FrameKind::BufferSize && h.arg == 0 {
        return Err(ProtocolError::EmptyBufferSize);
    }
    Ok(h)
}

/// Encodes the payload of an `OPEN` frame.
pub fn encode_open(gate: &GateAddress, channel: u32) -> [u8; OPEN_LEN] {
    let mut b = [0u8; OPEN_LEN];
    b[0..8].copy_from_slice(&gate.subtask.job.0.to_le_bytes());
    b[8..12].copy_from_slice(&gate.subtask.vertex.to_le_bytes());
    b[12..14].copy_from_slice(&gate.subtask.subtask.to_le_bytes());
    b[14..16].copy_from_slice(&gate.gate.to_le_bytes());
    b[16..20].copy_from_slice(&channel.to_le_bytes());
    b[20..24].copy_from_slice(&gate.attempt.to_le_bytes());
    b
}

/// Decodes the payload of an `OPEN` frame.
pub fn decode_open(b: &[u8; OPEN_LEN]) -> (GateAddress, u32) {
    let gate = GateAddress {
        subtask: SubtaskId {
            job: JobId(u64::from_le_bytes(b[0..8].try_into().expect("8"))),
            vertex: u32::from_le_bytes(b[8..12].try_into().expect("4")),
            subtask: u16::from_le_bytes(b[12..14].try_into().expect("2")),
        },
        gate: u16::from_le_bytes(b[14..16].try_into().expect("2")),
        attempt: u32::from_le_bytes(b[20..24].try_into().expect("4")),
    };
    (gate, u32::from_le_bytes(b[16..20].try_into().expect("4")))
}

/// Encodes the payload of a `BARRIER` frame.
pub fn encode_barrier(b: &PriorityBarrier) -> [u8; BARRIER_LEN] {
    let mut out = [0u8; BARRIER_LEN];
    out[0..8].copy_from_slice(&b.checkpoint.to_le_bytes());
    out[8] = b.options.to_byte();
    out[9..17].copy_from_slice(&b.sequence.to_le_bytes());
    out
}

/// Decodes the payload of a `BARRIER` frame.
pub fn decode_barrier(b: &[u8; BARRIER_LEN]) -> PriorityBarrier {
    PriorityBarrier {
        checkpoint: u64::from_le_bytes(b[0..8].try_into().expect("8")),
        options: crate::element::BarrierOptions::from_byte(b[8]),
        sequence: u64::from_le_bytes(b[9..17].try_into().expect("8")),
    }
}

/// Returns a control frame (header only, or header and a short payload).
pub fn control_frame(kind: FrameKind, channel: u32, arg: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    encode_header(
        &FrameHeader {
            kind,
            channel,
            arg,
            len: payload.len() as u32,
            flags: 0,
            complete: 0,
        },
        &mut out,
    );
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_header_decoder_accepts_only_its_own_encodings(bytes in proptest::array::uniform18(any::<u8>())) {
            if let Ok(h) = decode_header(&bytes) {
                let mut again = [0u8; HEADER_LEN];
                encode_header(&h, &mut again);
                prop_assert_eq!(again, bytes);
            }
        }

        #[test]
        fn valid_headers_round_trip(channel: u32, arg in 1u32.., len in 1u32..=(MAX_FRAME_BYTES as u32), flags in 0u8..8) {
            let h = FrameHeader { kind: FrameKind::Data, channel, arg, len, flags, complete: len / 2 };
            let mut b = [0u8; HEADER_LEN];
            encode_header(&h, &mut b);
            prop_assert_eq!(decode_header(&b), Ok(h));
            for kind in [FrameKind::Credit, FrameKind::BufferSize] {
                let c = FrameHeader { kind, channel, arg, len: 0, flags: 0, complete: 0 };
                encode_header(&c, &mut b);
                prop_assert_eq!(decode_header(&b), Ok(c));
            }
        }

        #[test]
        fn open_payloads_round_trip(job: u64, vertex: u32, subtask: u16, gate: u16, channel: u32, attempt: u32) {
            let g = GateAddress { subtask: SubtaskId { job: JobId(job), vertex, subtask }, gate, attempt };
            prop_assert_eq!(decode_open(&encode_open(&g, channel)), (g, channel));
        }
    }

    #[test]
    fn a_buffer_size_frame_asking_for_nothing_or_carrying_bytes_is_refused() {
        let mut b = [0u8; HEADER_LEN];
        for (arg, len, error) in [(0, 0, "empty buffers"), (256, 4, "payload")] {
            let h = FrameHeader {
                kind: FrameKind::BufferSize,
                channel: 1,
                arg,
                len,
                flags: 0,
                complete: 0,
            };
            encode_header(&h, &mut b);
            let e = decode_header(&b).unwrap_err().to_string();
            assert!(e.contains(error), "{e}");
        }
    }

    #[test]
    fn oversized_and_empty_data_frames_are_refused() {
        let mut b = [0u8; HEADER_LEN];
        for len in [0, MAX_FRAME_BYTES as u32 + 1] {
            let h = FrameHeader {
                kind: FrameKind::Data,
                channel: 1,
                arg: 0,
                len,
                flags: 0,
                complete: 0,
            };
            encode_header(&h, &mut b);
            assert!(decode_header(&b)
                .unwrap_err()
                .to_string()
                .contains("outside"));
        }
    }

    #[test]
    fn a_hello_of_another_version_or_protocol_is_refused() {
        let mut h: [u8; HELLO_LEN] = encode_hello(b"")[..HELLO_LEN].try_into().unwrap();
        assert!(decode_hello(&h).is_ok());
        h[4] += 1;
        assert!(decode_hello(&h)
            .unwrap_err()
            .to_string()
            .contains("version"));
        assert_eq!(
            decode_hello(b"HTTP/").unwrap_err().to_string(),
            "not a Weir data connection (magic [48, 54, 54, 50])"
        );
        assert_eq!(
            decode_hello(&h).unwrap_err().to_string(),
            format!(
                "data protocol version {} is not supported (expected {PROTOCOL_VERSION})",
                PROTOCOL_VERSION + 1
            )
        );
    }
}
