//! The single place that touches the binary encoding of everything Weir stores or sends:
//! keyed state and snapshots, checkpoint metadata, job graphs, control RPC messages.
//!
//! Everything uses bincode 2 with `bincode::config::standard()`. Versioned
//! blobs (whole snapshots) are laid out as
//! `[FORMAT_VERSION: u8][crc32 of payload: u32 LE][payload]`.
//!
//! Invariants:
//! - [`encode_into`] only ever appends to its output buffer.
//! - [`decode_versioned`] only hands a payload to the decoder after the version
//!   and the checksum matched, and rejects payloads with trailing bytes, so a
//!   blob either decodes completely or fails with a [`CodecError`] naming what
//!   was being decoded.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Version byte written at the start of every versioned blob. Version 2: checkpoint
/// metadata lists shared files, and keyed operator state may be a native snapshot.
pub const FORMAT_VERSION: u8 = 2;

/// Length of the versioned header: version byte plus the crc32.
const HEADER_LEN: usize = 5;

/// Failure to encode or decode state bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The serializer rejected a value.
    #[error("failed to encode {what}: {source}")]
    Encode {
        /// What was being encoded (a type name or a description).
        what: String,
        /// The underlying encoder error.
        #[source]
        source: bincode::error::EncodeError,
    },
    /// The bytes are not a valid encoding of the expected type.
    #[error("failed to decode {what}: {source}")]
    Decode {
        /// What was being decoded (a type name or a description).
        what: String,
        /// The underlying decoder error.
        #[source]
        source: bincode::error::DecodeError,
    },
    /// The blob is shorter than its fixed header.
    #[error("{what} is truncated: {len} bytes is shorter than the {needed}-byte header")]
    Truncated {
        /// What was being decoded.
        what: String,
        /// Length of the blob.
        len: usize,
        /// Minimum length required.
        needed: usize,
    },
    /// The blob was written by an incompatible format version.
    #[error("{what} has format version {found}, but only version {expected} is supported")]
    VersionMismatch {
        /// What was being decoded.
        what: String,
        /// Version byte found in the blob.
        found: u8,
        /// Version this build reads and writes.
        expected: u8,
    },
    /// The payload does not match its stored checksum.
    #[error(
        "{what} is corrupt or truncated: stored checksum {stored:#010x}, computed {computed:#010x}"
    )]
    ChecksumMismatch {
        /// What was being decoded.
        what: String,
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the payload.
        computed: u32,
    },
    /// The payload decoded but bytes were left over.
    #[error("{what} has {extra} unexpected trailing bytes")]
    TrailingBytes {
        /// What was being decoded.
        what: String,
        /// Number of bytes left over.
        extra: usize,
    },
}

/// Appends the encoding of `value` to `out`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
        .map(|_| ())
        .map_err(|source| CodecError::Encode {
            what: std::any::type_name::<T>().to_owned(),
            source,
        })
}

/// The most memory one decode of a stored blob may claim for what it reads (lengths of
/// strings, vectors and maps): a claimed length beyond it is corrupt input, refused before
/// any allocation.
pub const DECODE_LIMIT: usize = 1 << 32;

/// The most memory one decode of a message from another process may claim (control RPC
/// frames carry at most 16 MiB).
pub const MESSAGE_DECODE_LIMIT: usize = 1 << 26;

/// Decodes one `T` from the front of `bytes`, returning it and the number of bytes
/// consumed. This is the hot path (records, state values) and checks no limit on claimed
/// lengths: bytes from outside the process go through [`decode_message`] or
/// [`decode_versioned`], which do.
pub fn decode_from<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard()).map_err(decode_error::<T>)
}

/// Decodes one `T` from the front of `bytes`, refusing claims beyond [`DECODE_LIMIT`]: for
/// stored state read back on restore.
pub fn decode_limited<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    bincode::serde::decode_from_slice(bytes, config).map_err(decode_error::<T>)
}

/// Decodes one `T`, a message from another process, from the front of `bytes`; claims
/// beyond [`MESSAGE_DECODE_LIMIT`] are refused.
pub fn decode_message<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CodecError> {
    let config = bincode::config::standard().with_limit::<MESSAGE_DECODE_LIMIT>();
    bincode::serde::decode_from_slice(bytes, config).map_err(decode_error::<T>)
}

fn decode_error<T>(source: bincode::error::DecodeError) -> CodecError {
    CodecError::Decode {
        what: std::any::type_name::<T>().to_owned(),
        source,
    }
}

/// Encodes `value` as a versioned, checksummed blob.
pub fn encode_versioned<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION, 0, 0, 0, 0];
    encode_into(value, &mut out)?;
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[1..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// [`encode_versioned`] of the byte string `bytes` (its length, then the bytes): the same
/// blob, with the bytes copied at once into a buffer of the final size rather than encoded
/// one by one as a sequence.
pub fn encode_versioned_bytes(bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 10 + bytes.len());
    out.extend_from_slice(&[FORMAT_VERSION, 0, 0, 0, 0]);
    encode_into(&(bytes.len() as u64), &mut out)?;
    out.extend_from_slice(bytes);
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[1..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// [`decode_versioned`] of a byte string written by [`encode_versioned_bytes`] (or by
/// [`encode_versioned`] of a `Vec<u8>`: the two agree), copied out at once. The length it
/// claims is checked against the bytes there before anything is allocated.
pub fn decode_versioned_bytes(bytes: &[u8], what: &str) -> Result<Vec<u8>, CodecError> {
    let payload = checked_payload(bytes, what)?;
    let (len, used) = decode_from::<u64>(payload).map_err(|err| named(err, what))?;
    let there = (payload.len() - used) as u64;
    if len > there {
        return Err(CodecError::Truncated {
            what: what.to_owned(),
            len: bytes.len(),
            needed: usize::try_from(len)
                .unwrap_or(usize::MAX)
                .saturating_add(HEADER_LEN + used),
        });
    }
    if len < there {
        return Err(CodecError::TrailingBytes {
            what: what.to_owned(),
            extra: (there - len) as usize,
        });
    }
    Ok(payload[used..].to_vec())
}

/// The payload of versioned blob `bytes` once its header and checksum are checked.
fn checked_payload<'a>(bytes: &'a [u8], what: &str) -> Result<&'a [u8], CodecError> {
    let stored = check_header(bytes, what)?;
    let payload = &bytes[HEADER_LEN..];
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(CodecError::ChecksumMismatch {
            what: what.to_owned(),
            stored,
            computed,
        });
    }
    Ok(payload)
}

/// `err`, a decoding error, naming `what` was decoded.
fn named(err: CodecError, what: &str) -> CodecError {
    match err {
        CodecError::Decode { source, .. } => CodecError::Decode {
            what: what.to_owned(),
            source,
        },
        other => other,
    }
}

/// Checks the header at the start of `bytes` (its length and format version) and returns
/// the checksum it stores.
fn check_header(bytes: &[u8], what: &str) -> Result<u32, CodecError> {
    if bytes.len() < HEADER_LEN {
        return Err(CodecError::Truncated {
            what: what.to_owned(),
            len: bytes.len(),
            needed: HEADER_LEN,
        });
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(CodecError::VersionMismatch {
            what: what.to_owned(),
            found: bytes[0],
            expected: FORMAT_VERSION,
        });
    }
    Ok(u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
}

/// Decodes a blob written by [`encode_versioned`], checking its version,
/// checksum and length; `what` names the blob in errors.
pub fn decode_versioned<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, CodecError> {
    let payload = checked_payload(bytes, what)?;
    let (value, used) = decode_limited::<T>(payload).map_err(|err| named(err, what))?;
    if used != payload.len() {
        return Err(CodecError::TrailingBytes {
            what: what.to_owned(),
            extra: payload.len() - used,
        });
    }
    Ok(value)
}

/// Counts and checksums the bytes written through it.
struct Summed<W> {
    inner: W,
    crc: crc32fast::Hasher,
    written: u64,
}

impl<W: std::io::Write> std::io::Write for Summed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the encoding of `value` to `out` and returns what must precede it to make the
/// blob [`encode_versioned`] writes of a byte string holding that encoding (header and
/// the string's length), so a value too large for memory is encoded on its way to a file
/// and [`decode_versioned_nested_from`] reads it back. `out` is flushed.
pub fn encode_versioned_nested_to<T: Serialize + ?Sized>(
    value: &T,
    out: impl std::io::Write,
) -> Result<Vec<u8>, CodecError> {
    let encode_error = |source| CodecError::Encode {
        what: std::any::type_name::<T>().to_owned(),
        source,
    };
    let mut summed = Summed {
        inner: out,
        crc: crc32fast::Hasher::new(),
        written: 0,
    };
    bincode::serde::encode_into_std_write(value, &mut summed, bincode::config::standard())
        .map_err(encode_error)?;
    std::io::Write::flush(&mut summed)
        .map_err(|inner| encode_error(bincode::error::EncodeError::Io { inner, index: 0 }))?;
    let mut head = vec![FORMAT_VERSION, 0, 0, 0, 0];
    encode_into(&summed.written, &mut head)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head[HEADER_LEN..]);
    crc.combine(&summed.crc);
    head[1..HEADER_LEN].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(head)
}

/// Counts and checksums the bytes read through it.
struct Checked<R> {
    inner: R,
    crc: crc32fast::Hasher,
    read: u64,
}

impl<R: std::io::Read> std::io::Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Decodes `T` from a versioned blob read from `reader`, the blob [`encode_versioned`]
/// writes of a byte string that holds `T`'s encoding (a stored state file), without holding
/// the blob in memory: the payload streams through the decoder and its checksum is checked
/// at the end, so a value is returned only when version, checksum and length all match
/// (a corrupt blob reports the checksum mismatch, not whatever the decoder made of it).
/// Returns the value and the blob's length; `what` names the blob in errors. An error of
/// `reader` itself is a [`CodecError::Decode`] whose source is the I/O error.
pub fn decode_versioned_nested_from<T: DeserializeOwned>(
    mut reader: impl std::io::Read,
    what: &str,
) -> Result<(T, u64), CodecError> {
    use std::io::Read as _;
    let named = |source| CodecError::Decode {
        what: what.to_owned(),
        source,
    };
    let mut header = Vec::with_capacity(HEADER_LEN);
    (&mut reader)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut header)
        .map_err(|e| {
            named(bincode::error::DecodeError::Io {
                inner: e,
                additional: 0,
            })
        })?;
    let stored = check_header(&header, what)?;
    let mut payload = Checked {
        inner: reader,
        crc: crc32fast::Hasher::new(),
        read: 0,
    };
    let config = bincode::config::standard().with_limit::<DECODE_LIMIT>();
    let decoded =
        bincode::decode_from_std_read::<u64, _, _>(&mut payload, config).and_then(|len| {
            let start = payload.read;
            let value = bincode::serde::decode_from_std_read::<T, _, _>(&mut payload, config)?;
            Ok((value, len, payload.read - start))
        });
    // The rest of the payload, read for the checksum and the length check.
    let rest = std::io::copy(&mut payload, &mut std::io::sink()).map_err(|e| {
        named(bincode::error::DecodeError::Io {
            inner: e,
            additional: 0,
        })
    })?;
    let computed = payload.crc.finalize();
    if computed != stored {
        return Err(CodecError::ChecksumMismatch {
            what: what.to_owned(),
            stored,
            computed,
        });
    }
    let (value, len, used) = decoded.map_err(named)?;
    // Bytes after the value, or a byte-string length that disagrees with the value's.
    let extra = if rest != 0 { rest } else { len.abs_diff(used) };
    if extra != 0 {
        return Err(CodecError::TrailingBytes {
            what: what.to_owned(),
            extra: extra as usize,
        });
    }
    Ok((value, HEADER_LEN as u64 + payload.read))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_string_encodes_alike_as_bytes_and_as_a_sequence_of_u8() {
        let payload: Vec<u8> = (0..=255u8).cycle().take(1_000).collect();
        let as_bytes = encode_versioned_bytes(&payload).unwrap();
        assert_eq!(as_bytes, encode_versioned(&payload).unwrap());
        assert_eq!(decode_versioned_bytes(&as_bytes, "blob").unwrap(), payload);
        // A length beyond the bytes there, or short of them, is refused by name.
        let mut long = vec![FORMAT_VERSION, 0, 0, 0, 0];
        encode_into(&(u64::from(u32::MAX)), &mut long).unwrap();
        long.extend_from_slice(&[1, 2, 3]);
        let crc = crc32fast::hash(&long[HEADER_LEN..]);
        long[1..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        let err = decode_versioned_bytes(&long, "blob").unwrap_err();
        assert!(matches!(err, CodecError::Truncated { .. }), "{err}");
        let mut short = as_bytes.clone();
        short.push(0);
        let crc = crc32fast::hash(&short[HEADER_LEN..]);
        short[1..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        let err = decode_versioned_bytes(&short, "blob").unwrap_err();
        assert!(
            matches!(err, CodecError::TrailingBytes { extra: 1, .. }),
            "{err}"
        );
        assert_eq!(
            decode_versioned::<Vec<u8>>(&as_bytes, "blob").unwrap(),
            payload
        );
    }

    #[test]
    fn encode_into_appends_and_decode_from_reports_consumed_bytes() {
        let mut buf = vec![0xAA];
        encode_into(&(7u64, "seven".to_owned()), &mut buf).unwrap();
        encode_into(&-3i32, &mut buf).unwrap();
        assert_eq!(buf[0], 0xAA);
        let ((n, s), used): ((u64, String), usize) = decode_from(&buf[1..]).unwrap();
        assert_eq!((n, s.as_str()), (7, "seven"));
        let (m, used2): (i32, usize) = decode_from(&buf[1 + used..]).unwrap();
        assert_eq!(m, -3);
        assert_eq!(1 + used + used2, buf.len());
    }

    #[test]
    fn versioned_blob_round_trips_and_starts_with_the_format_version() {
        let value = vec![(1u32, "a".to_owned()), (2, "b".to_owned())];
        let bytes = encode_versioned(&value).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        let back: Vec<(u32, String)> = decode_versioned(&bytes, "test blob").unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn wrong_version_names_found_and_expected_version_and_what() {
        let mut bytes = encode_versioned(&42u64).unwrap();
        bytes[0] = 9;
        let err = decode_versioned::<u64>(&bytes, "keyed snapshot").unwrap_err();
        assert!(matches!(
            err,
            CodecError::VersionMismatch {
                found: 9,
                expected: FORMAT_VERSION,
                ..
            }
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("keyed snapshot")
                && msg.contains('9')
                && msg.contains(&FORMAT_VERSION.to_string())
        );
    }

    #[test]
    fn flipped_payload_bit_fails_the_checksum() {
        let mut bytes = encode_versioned(&"hello world".to_owned()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        let err = decode_versioned::<String>(&bytes, "blob").unwrap_err();
        assert!(matches!(err, CodecError::ChecksumMismatch { .. }), "{err}");
    }

    #[test]
    fn truncated_blobs_are_rejected() {
        let bytes = encode_versioned(&vec![1u64, 2, 3, 4]).unwrap();
        for len in 0..bytes.len() {
            let err = decode_versioned::<Vec<u64>>(&bytes[..len], "blob").unwrap_err();
            assert!(
                matches!(
                    err,
                    CodecError::Truncated { .. } | CodecError::ChecksumMismatch { .. }
                ),
                "len {len}: {err}"
            );
        }
    }

    #[test]
    fn trailing_bytes_with_valid_checksum_are_rejected() {
        let mut bytes = encode_versioned(&5u8).unwrap();
        bytes.push(0);
        let crc = crc32fast::hash(&bytes[HEADER_LEN..]);
        bytes[1..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        let err = decode_versioned::<u8>(&bytes, "blob").unwrap_err();
        assert!(
            matches!(err, CodecError::TrailingBytes { extra: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn decoding_the_wrong_type_is_an_error_not_a_panic() {
        let bytes = encode_versioned(&"text".to_owned()).unwrap();
        let err = decode_versioned::<Vec<(u64, u64, u64)>>(&bytes, "blob").unwrap_err();
        assert!(err.to_string().contains("blob"));
    }

    #[test]
    fn a_claimed_length_beyond_the_limit_is_an_error_not_a_panic_or_an_allocation() {
        // A string claiming u64::MAX bytes (varint 253 + 8 bytes), then nothing.
        let mut huge = vec![253u8];
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode_limited::<String>(&huge).is_err());
        assert!(decode_message::<String>(&huge).is_err());
        assert!(decode_versioned::<String>(&encode_blob(&huge), "blob").is_err());
        // 100 MiB claimed by a message of a few bytes.
        let mut big = vec![253u8];
        big.extend_from_slice(&(100u64 << 20).to_le_bytes());
        assert!(decode_message::<Vec<u8>>(&big).is_err());
    }

    /// `payload` behind a valid version byte and checksum.
    fn encode_blob(payload: &[u8]) -> Vec<u8> {
        let mut out = vec![FORMAT_VERSION];
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn a_nested_blob_decodes_from_a_reader_and_corruption_is_reported_as_such() {
        let value: Vec<(u64, String)> = (0..1000).map(|i| (i, format!("v{i}"))).collect();
        let mut inner = Vec::new();
        encode_into(&value, &mut inner).unwrap();
        let blob = encode_versioned(inner.as_slice()).unwrap();
        let (back, len): (Vec<(u64, String)>, u64) =
            decode_versioned_nested_from(blob.as_slice(), "state file").unwrap();
        assert_eq!(back, value);
        assert_eq!(len, blob.len() as u64);

        let mut corrupt = blob.clone();
        corrupt[HEADER_LEN + 40] ^= 0xff;
        let e = decode_versioned_nested_from::<Vec<(u64, String)>>(corrupt.as_slice(), "f");
        assert!(
            matches!(e, Err(CodecError::ChecksumMismatch { .. })),
            "{e:?}"
        );
        let e = decode_versioned_nested_from::<Vec<(u64, String)>>(&blob[..3], "f");
        assert!(
            matches!(e, Err(CodecError::Truncated { len: 3, .. })),
            "{e:?}"
        );
        let mut longer = encode_versioned(&[inner.as_slice(), &[0u8; 7]].concat()[..]).unwrap();
        let e = decode_versioned_nested_from::<Vec<(u64, String)>>(longer.as_slice(), "f");
        assert!(
            matches!(e, Err(CodecError::TrailingBytes { extra: 7, .. })),
            "{e:?}"
        );
        longer[0] = FORMAT_VERSION + 1;
        let e = decode_versioned_nested_from::<Vec<(u64, String)>>(longer.as_slice(), "f");
        assert!(
            matches!(e, Err(CodecError::VersionMismatch { .. })),
            "{e:?}"
        );
    }

    #[test]
    fn a_nested_blob_encoded_to_a_writer_is_the_blob_encode_versioned_makes() {
        for n in [0u64, 3, 40, 20_000] {
            let value: Vec<(u64, String)> = (0..n).map(|i| (i, format!("v{i}"))).collect();
            let mut inner = Vec::new();
            encode_into(&value, &mut inner).unwrap();
            let mut body = Vec::new();
            let head = encode_versioned_nested_to(&value, &mut body).unwrap();
            let blob = [head, body].concat();
            assert_eq!(
                blob,
                encode_versioned(inner.as_slice()).unwrap(),
                "{n} entries"
            );
            let (back, _): (Vec<(u64, String)>, u64) =
                decode_versioned_nested_from(blob.as_slice(), "state file").unwrap();
            assert_eq!(back, value);
        }
    }

    #[test]
    fn a_failing_writer_is_an_encode_error() {
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("no space left"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = encode_versioned_nested_to(&"state".to_owned(), Full).unwrap_err();
        assert!(matches!(e, CodecError::Encode { .. }), "{e:?}");
        assert!(e.to_string().contains("encode"), "{e}");
    }
}
