//! Reassembly of element frames that span network buffers.
//!
//! A producer whose frame (see [`crate::element`]) does not fit in the rest of a buffer
//! writes its start there and flags the buffer `FLAG_CONTINUES`; the next buffers of the
//! same channel carry the rest. The consumer keeps the start in a [`PartialFrame`] and
//! completes it from the front of the channel's next buffers.
//!
//! Invariants: a partial frame never grows past the length its header claims, nor past
//! [`MAX_SPANNING_FRAME`]; a continuation that contradicts the header is a
//! [`ReassemblyError`], never a panic.

use crate::element::FRAME_HEADER;
use thiserror::Error;

/// Largest frame a channel may reassemble from several buffers.
pub const MAX_SPANNING_FRAME: usize = 1 << 30;

/// A partial frame that kept a buffer larger than this releases it once the frame is read.
const RETAINED_CAPACITY: usize = 1 << 20;

/// A frame that continues in the next buffer cannot be reassembled.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReassemblyError {
    /// The frame's header claims fewer bytes than the frame already has, or none at all.
    #[error("a buffer continues a frame of {total} bytes after {have} bytes of it")]
    Inconsistent {
        /// Bytes the frame claims, header included.
        total: usize,
        /// Bytes of it already reassembled.
        have: usize,
    },
    /// The frame is longer than [`MAX_SPANNING_FRAME`].
    #[error("a record of {total} bytes exceeds the {limit}-byte limit", limit = MAX_SPANNING_FRAME)]
    TooLarge {
        /// Bytes the frame claims, header included.
        total: usize,
    },
}

/// The start of one channel's frame that continues in its next buffer.
#[derive(Debug, Default)]
pub struct PartialFrame {
    bytes: Vec<u8>,
}

impl PartialFrame {
    /// Returns whether no frame is being reassembled.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Returns the bytes reassembled so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Keeps `start`, the beginning of a frame that continues in the next buffer.
    pub fn extend(&mut self, start: &[u8]) {
        self.bytes.extend_from_slice(start);
    }

    /// Appends the bytes of `data` that belong to the frame; returns how many bytes of
    /// `data` it took.
    pub fn complete(&mut self, data: &[u8]) -> Result<usize, ReassemblyError> {
        let pending = &mut self.bytes;
        let mut from = 0;
        if pending.len() < FRAME_HEADER {
            let k = (FRAME_HEADER - pending.len()).min(data.len());
            pending.extend_from_slice(&data[..k]);
            from = k;
            if pending.len() < FRAME_HEADER {
                return Ok(from);
            }
        }
        let total = frame_total(pending);
        if total <= FRAME_HEADER || total < pending.len() {
            return Err(ReassemblyError::Inconsistent {
                total,
                have: pending.len(),
            });
        }
        if total > MAX_SPANNING_FRAME {
            return Err(ReassemblyError::TooLarge { total });
        }
        let k = (total - pending.len()).min(data.len() - from);
        pending.extend_from_slice(&data[from..from + k]);
        Ok(from + k)
    }

    /// Returns whether the frame has all the bytes its header claims.
    pub fn is_whole(&self) -> bool {
        self.bytes.len() >= FRAME_HEADER && self.bytes.len() == frame_total(&self.bytes)
    }

    /// Forgets the frame (it was read); a buffer grown past 1 MiB is released.
    pub fn clear(&mut self) {
        self.bytes.clear();
        if self.bytes.capacity() > RETAINED_CAPACITY {
            self.bytes = Vec::new();
        }
    }
}

/// Returns the length a frame's header claims, header included.
fn frame_total(pending: &[u8]) -> usize {
    FRAME_HEADER + u32::from_le_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = ((body.len() + 1) as u32).to_le_bytes().to_vec();
        f.push(1);
        f.extend_from_slice(body);
        f
    }

    fn partial(bytes: &[u8]) -> PartialFrame {
        let mut p = PartialFrame::default();
        p.extend(bytes);
        p
    }

    #[test]
    fn a_frame_spanning_buffers_is_completed_across_them_even_inside_its_length() {
        let f = frame(&[7u8; 20]);
        let mut pending = partial(&f[..2]);
        // The second buffer completes the length prefix and some of the body.
        assert_eq!(pending.complete(&f[2..10]), Ok(8));
        assert!(!pending.is_whole());
        let mut rest = f[10..].to_vec();
        rest.extend_from_slice(b"next frames");
        assert_eq!(pending.complete(&rest), Ok(f.len() - 10));
        assert!(pending.is_whole());
        assert_eq!(pending.bytes(), &f[..]);
    }

    #[test]
    fn a_continued_frame_shorter_than_its_start_is_an_error_not_a_panic() {
        let mut pending = partial(&[2, 0, 0, 0, 1, 9, 9, 9]);
        let err = pending.complete(&[1, 2, 3]).unwrap_err();
        assert_eq!(err, ReassemblyError::Inconsistent { total: 6, have: 8 });
        assert!(err.to_string().contains("continues a frame"), "{err}");
        let mut empty_frame = partial(&[0, 0, 0, 0]);
        assert!(empty_frame.complete(&[1]).is_err());
    }

    #[test]
    fn a_frame_over_the_spanning_limit_is_refused() {
        let claimed = (MAX_SPANNING_FRAME as u32).to_le_bytes();
        let mut pending = partial(&claimed[..3]);
        let err = pending.complete(&[claimed[3], 1]).unwrap_err();
        assert_eq!(
            err,
            ReassemblyError::TooLarge {
                total: MAX_SPANNING_FRAME + FRAME_HEADER
            }
        );
        assert!(err.to_string().contains("-byte limit"), "{err}");
    }

    #[test]
    fn clearing_a_read_frame_releases_a_buffer_grown_past_a_mebibyte() {
        let mut big = partial(&vec![0; RETAINED_CAPACITY + 1]);
        big.clear();
        assert!(big.is_empty());
        assert_eq!(big.bytes.capacity(), 0);
        let mut small = partial(&[1, 0, 0, 0, 1]);
        small.clear();
        assert!(
            small.bytes.capacity() > 0,
            "a small buffer is kept for reuse"
        );
    }
}
