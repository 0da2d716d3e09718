//! Wire encoding of stream elements inside network buffers.
//!
//! A buffer is a concatenation of frames `[len: u32 LE][tag: u8][body]`, where `len` counts
//! the tag and the body. Records are serialized exactly once, straight into the buffer of
//! their channel; watermarks, watermark-status changes, barriers and end-of-partition travel
//! in-band, in order with the records of the same channel.
//!
//! Invariant: [`ElementReader`] either yields whole, well-formed elements or an error naming
//! the offset; it never panics on arbitrary bytes.

use crate::types::{CheckpointId, Timestamp, NO_TIMESTAMP};
use thiserror::Error;

const TAG_RECORD: u8 = 1;
const TAG_RECORD_TS: u8 = 2;
const TAG_WATERMARK: u8 = 3;
const TAG_IDLE: u8 = 4;
const TAG_ACTIVE: u8 = 5;
const TAG_BARRIER: u8 = 6;
const TAG_END: u8 = 7;
const TAG_END_OF_DATA: u8 = 8;

/// Size of the frame header: the length prefix.
pub const FRAME_HEADER: usize = 4;

/// Size of a barrier's frame: header, tag, checkpoint id and options.
pub const BARRIER_FRAME_LEN: usize = FRAME_HEADER + 1 + 8 + 1;

/// Options carried by a checkpoint barrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BarrierOptions {
    /// Whether the checkpoint is a savepoint.
    pub savepoint: bool,
    /// Whether inputs align (exactly-once) or not (at-least-once).
    pub aligned: bool,
    /// Whether the job stops once this savepoint completes (stop-with-savepoint): sources
    /// emit nothing after the barrier, and no task processes anything after it.
    pub stop: bool,
    /// With `stop`: the sources emit the final watermark just before the barrier, so every
    /// event-time timer fires before the job stops (stop with `--drain`).
    pub drain: bool,
    /// Whether the barrier overtakes the data in flight (an unaligned checkpoint): it is sent
    /// ahead of the buffers queued for its channels, and the data it overtook becomes part
    /// of the checkpoint (see [`crate::checkpoint::channel_state`]).
    pub unaligned: bool,
    /// Whether an aligned barrier turns unaligned once it waited longer than
    /// `execution.checkpointing.aligned-checkpoint-timeout`: at an output, since its task
    /// emitted it; at an input, since the checkpoint's first barrier reached the task.
    pub timeout: bool,
}

impl BarrierOptions {
    /// The same options for a barrier that overtakes the data in flight (an aligned
    /// barrier whose alignment timed out).
    pub fn overtaking(self) -> Self {
        Self {
            unaligned: true,
            ..self
        }
    }

    /// The options as one byte of flags (bits 0 to 5; the others are zero).
    pub fn to_byte(self) -> u8 {
        u8::from(self.savepoint)
            | (u8::from(self.aligned) << 1)
            | (u8::from(self.stop) << 2)
            | (u8::from(self.drain) << 3)
            | (u8::from(self.unaligned) << 4)
            | (u8::from(self.timeout) << 5)
    }

    /// The options of a byte [`Self::to_byte`] made (other bits are ignored).
    pub fn from_byte(b: u8) -> Self {
        Self {
            savepoint: b & 1 != 0,
            aligned: b & 2 != 0,
            stop: b & 4 != 0,
            drain: b & 8 != 0,
            unaligned: b & 16 != 0,
            timeout: b & 32 != 0,
        }
    }
}

/// One decoded stream element; records borrow their serialized payload from the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Element<'a> {
    /// A data record with its event timestamp (or [`NO_TIMESTAMP`]) and serialized value.
    Record {
        /// Event timestamp.
        timestamp: Timestamp,
        /// The serialized value.
        payload: &'a [u8],
    },
    /// Event time has advanced to this timestamp on the channel.
    Watermark(Timestamp),
    /// The channel's producer is idle (`true`) or active again (`false`).
    Idle(bool),
    /// A checkpoint barrier (reserved for checkpointing).
    Barrier(CheckpointId, BarrierOptions),
    /// The producer sent its last record on this channel; barriers may still follow (the
    /// final checkpoint), then [`Element::EndOfPartition`].
    EndOfData,
    /// The producer sent its last element on this channel.
    EndOfPartition,
}

/// An error decoding a buffer.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ElementError {
    /// The buffer ends inside a frame.
    #[error("truncated element at byte {offset}: need {needed} bytes, {available} available")]
    Truncated {
        /// Byte offset of the frame.
        offset: usize,
        /// Bytes the frame claims.
        needed: usize,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// A frame has an unknown tag or an impossible length.
    #[error("malformed element at byte {offset}: {reason}")]
    Malformed {
        /// Byte offset of the frame.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Begins a record frame in `buf` and returns the position to pass to [`finish_frame`].
#[inline]
pub fn begin_record(buf: &mut Vec<u8>, timestamp: Timestamp) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    if timestamp == NO_TIMESTAMP {
        buf.push(TAG_RECORD);
    } else {
        buf.push(TAG_RECORD_TS);
        buf.extend_from_slice(&timestamp.to_le_bytes());
    }
    start
}

/// Patches the length prefix of the frame begun at `start`.
#[inline]
pub fn finish_frame(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - FRAME_HEADER) as u32;
    buf[start..start + FRAME_HEADER].copy_from_slice(&len.to_le_bytes());
}

/// Appends a non-record element (watermark, status, barrier, end of partition).
pub fn write_event(buf: &mut Vec<u8>, element: &Element<'_>) {
    let start = buf.len();
    buf.extend_from_slice(&[0, 0, 0, 0]);
    match element {
        Element::Record { timestamp, payload } => {
            buf.truncate(start);
            let s = begin_record(buf, *timestamp);
            buf.extend_from_slice(payload);
            finish_frame(buf, s);
            return;
        }
        Element::Watermark(ts) => {
            buf.push(TAG_WATERMARK);
            buf.extend_from_slice(&ts.to_le_bytes());
        }
        Element::Idle(idle) => buf.push(if *idle { TAG_IDLE } else { TAG_ACTIVE }),
        Element::Barrier(id, opts) => {
            buf.push(TAG_BARRIER);
            buf.extend_from_slice(&id.to_le_bytes());
            buf.push(opts.to_byte());
        }
        Element::EndOfData => buf.push(TAG_END_OF_DATA),
        Element::EndOfPartition => buf.push(TAG_END),
    }
    finish_frame(buf, start);
}

/// Returns whether the last frame of `buf` is an end-of-partition event. Walks the frame
/// headers only (payloads are skipped), so a record whose bytes happen to look like the
/// event is never mistaken for it. A malformed buffer is not an end.
pub fn ends_with_end_of_partition(buf: &[u8]) -> bool {
    let mut pos = 0;
    let mut last_tag = None;
    while pos < buf.len() {
        let Some(header) = buf.get(pos..pos + FRAME_HEADER + 1) else {
            return false;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        if len == 0 {
            return false;
        }
        last_tag = Some(header[FRAME_HEADER]);
        pos = match pos.checked_add(FRAME_HEADER + len) {
            Some(p) if p <= buf.len() => p,
            _ => return false,
        };
    }
    last_tag == Some(TAG_END)
}

/// Iterates the elements of one buffer.
pub struct ElementReader<'a> {
    buf: &'a [u8],
    pos: usize,
    records: u64,
}

impl<'a> ElementReader<'a> {
    /// Creates a reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            records: 0,
        }
    }

    /// Returns the number of records read so far.
    pub fn records_read(&self) -> u64 {
        self.records
    }

    /// Returns the offset of the next element.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Returns whether all elements were read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Returns the next record if the next element is a record, without consuming others.
    #[inline]
    pub fn next_record(&mut self) -> Option<Result<(Timestamp, &'a [u8]), ElementError>> {
        let tag = *self.buf.get(self.pos + FRAME_HEADER)?;
        if tag != TAG_RECORD && tag != TAG_RECORD_TS {
            return None;
        }
        match self.next_element()? {
            Ok(Element::Record { timestamp, payload }) => {
                self.records += 1;
                Some(Ok((timestamp, payload)))
            }
            Ok(_) => unreachable!("tag checked above"),
            Err(e) => Some(Err(e)),
        }
    }

    /// Decodes the next element, or `None` at the end of the buffer.
    pub fn next_element(&mut self) -> Option<Result<Element<'a>, ElementError>> {
        if self.is_empty() {
            return None;
        }
        Some(self.decode())
    }

    fn decode(&mut self) -> Result<Element<'a>, ElementError> {
        let offset = self.pos;
        let rest = &self.buf[offset..];
        if rest.len() < FRAME_HEADER + 1 {
            self.pos = self.buf.len();
            return Err(ElementError::Truncated {
                offset,
                needed: FRAME_HEADER + 1,
                available: rest.len(),
            });
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len == 0 {
            self.pos = self.buf.len();
            return Err(ElementError::Malformed {
                offset,
                reason: "zero-length frame",
            });
        }
        if rest.len() < FRAME_HEADER + len {
            self.pos = self.buf.len();
            return Err(ElementError::Truncated {
                offset,
                needed: FRAME_HEADER + len,
                available: rest.len(),
            });
        }
        let body = &rest[FRAME_HEADER + 1..FRAME_HEADER + len];
        let tag = rest[FRAME_HEADER];
        self.pos = offset + FRAME_HEADER + len;
        let fixed = |n: usize| -> Result<&'a [u8], ElementError> {
            if body.len() == n {
                Ok(body)
            } else {
                Err(ElementError::Malformed {
                    offset,
                    reason: "wrong body length for element kind",
                })
            }
        };
        let read_i64 = |b: &[u8]| i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        match tag {
            TAG_RECORD => Ok(Element::Record {
                timestamp: NO_TIMESTAMP,
                payload: body,
            }),
            TAG_RECORD_TS => {
                if body.len() < 8 {
                    return Err(ElementError::Malformed {
                        offset,
                        reason: "record shorter than its timestamp",
                    });
                }
                Ok(Element::Record {
                    timestamp: read_i64(body),
                    payload: &body[8..],
                })
            }
            TAG_WATERMARK => Ok(Element::Watermark(read_i64(fixed(8)?))),
            TAG_IDLE => fixed(0).map(|_| Element::Idle(true)),
            TAG_ACTIVE => fixed(0).map(|_| Element::Idle(false)),
            TAG_BARRIER => {
                let b = fixed(9)?;
                Ok(Element::Barrier(
                    read_i64(b) as u64,
                    BarrierOptions::from_byte(b[8]),
                ))
            }
            TAG_END => fixed(0).map(|_| Element::EndOfPartition),
            TAG_END_OF_DATA => fixed(0).map(|_| Element::EndOfData),
            _ => Err(ElementError::Malformed {
                offset,
                reason: "unknown element tag",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn elements_round_trip_in_order() {
        let mut buf = Vec::new();
        let s = begin_record(&mut buf, 42);
        buf.extend_from_slice(b"abc");
        finish_frame(&mut buf, s);
        write_event(&mut buf, &Element::Watermark(40));
        let s = begin_record(&mut buf, NO_TIMESTAMP);
        finish_frame(&mut buf, s);
        write_event(&mut buf, &Element::Idle(true));
        let opts = BarrierOptions {
            savepoint: true,
            aligned: true,
            stop: true,
            drain: true,
            unaligned: true,
            timeout: true,
        };
        assert_eq!(BarrierOptions::from_byte(opts.to_byte()), opts);
        write_event(&mut buf, &Element::EndOfData);
        let before = buf.len();
        write_event(&mut buf, &Element::Barrier(7, opts));
        assert_eq!(buf.len() - before, BARRIER_FRAME_LEN);
        buf.truncate(before);
        write_event(&mut buf, &Element::Barrier(7, opts));
        write_event(&mut buf, &Element::EndOfPartition);
        let mut r = ElementReader::new(&buf);
        let got: Vec<_> = std::iter::from_fn(|| r.next_element().map(Result::unwrap)).collect();
        assert_eq!(
            got,
            vec![
                Element::Record {
                    timestamp: 42,
                    payload: b"abc"
                },
                Element::Watermark(40),
                Element::Record {
                    timestamp: NO_TIMESTAMP,
                    payload: b""
                },
                Element::Idle(true),
                Element::EndOfData,
                Element::Barrier(7, opts),
                Element::EndOfPartition,
            ]
        );
    }

    #[test]
    fn next_record_stops_at_events() {
        let mut buf = Vec::new();
        write_event(&mut buf, &Element::Watermark(1));
        let mut r = ElementReader::new(&buf);
        assert!(r.next_record().is_none());
        assert_eq!(r.next_element(), Some(Ok(Element::Watermark(1))));
    }

    #[test]
    fn truncated_frame_is_an_error_naming_the_offset() {
        let mut buf = Vec::new();
        write_event(&mut buf, &Element::Watermark(1));
        buf.truncate(buf.len() - 1);
        let mut r = ElementReader::new(&buf);
        assert!(matches!(
            r.next_element(),
            Some(Err(ElementError::Truncated { offset: 0, .. }))
        ));
        assert!(r.next_element().is_none());
    }

    #[test]
    fn end_of_partition_is_found_by_frames_not_by_bytes() {
        let mut buf = Vec::new();
        let s = begin_record(&mut buf, NO_TIMESTAMP);
        buf.extend_from_slice(&[1, 0, 0, 0, TAG_END]); // a payload that looks like the event
        finish_frame(&mut buf, s);
        assert!(!ends_with_end_of_partition(&buf));
        write_event(&mut buf, &Element::EndOfPartition);
        assert!(ends_with_end_of_partition(&buf));
        assert!(!ends_with_end_of_partition(&buf[..buf.len() - 1]));
    }

    proptest! {
        #[test]
        fn reader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut r = ElementReader::new(&bytes);
            let mut n = 0;
            while let Some(e) = r.next_element() {
                n += 1;
                prop_assert!(n <= bytes.len());
                if e.is_err() { break; }
            }
        }
    }
}
