//! Framed messages of a control connection: `[length u32 BE][crc32 of the payload u32 BE]
//! [payload]`, the payload one message in the codec's encoding.
//!
//! Invariants: the length is checked against the limit before anything is allocated;
//! a payload whose checksum or encoding is wrong, or with bytes after its message, is an
//! error and never a message.

use super::RpcError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest payload of one control message (job graphs included; artifacts travel apart).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Length of a frame header.
const HEADER_LEN: usize = 8;

/// Writes `message` as one frame and flushes it.
pub async fn write_message<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    peer: &str,
    message: &T,
) -> Result<(), RpcError> {
    let mut buf = vec![0u8; HEADER_LEN];
    weir_state_backends::encode_into(message, &mut buf).map_err(|e| RpcError::Corrupt {
        peer: peer.to_owned(),
        reason: format!("cannot encode a message: {e}"),
    })?;
    let len = buf.len() - HEADER_LEN;
    if len > MAX_MESSAGE_BYTES {
        return Err(RpcError::TooLarge {
            peer: peer.to_owned(),
            len: len as u64,
            max: MAX_MESSAGE_BYTES,
        });
    }
    let crc = crc32fast::hash(&buf[HEADER_LEN..]);
    buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
    buf[4..HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
    let io = |source| RpcError::Io {
        peer: peer.to_owned(),
        source,
    };
    w.write_all(&buf).await.map_err(io)?;
    w.flush().await.map_err(io)
}

/// Reads exactly `buf.len()` bytes; the peer closing first is [`RpcError::Closed`].
pub(crate) async fn read_exact<R: AsyncRead + Unpin>(
    r: &mut R,
    peer: &str,
    buf: &mut [u8],
    during: &'static str,
) -> Result<(), RpcError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(RpcError::Closed {
            peer: peer.to_owned(),
            during,
        }),
        Err(source) => Err(RpcError::Io {
            peer: peer.to_owned(),
            source,
        }),
    }
}

/// Reads one frame and decodes its message.
pub async fn read_message<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
    peer: &str,
) -> Result<T, RpcError> {
    let mut header = [0u8; HEADER_LEN];
    read_exact(r, peer, &mut header, "before a message").await?;
    let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_be_bytes(header[4..].try_into().expect("4 bytes"));
    if len > MAX_MESSAGE_BYTES {
        return Err(RpcError::TooLarge {
            peer: peer.to_owned(),
            len: len as u64,
            max: MAX_MESSAGE_BYTES,
        });
    }
    let mut payload = vec![0u8; len];
    read_exact(r, peer, &mut payload, "inside a message").await?;
    let corrupt = |reason: String| RpcError::Corrupt {
        peer: peer.to_owned(),
        reason,
    };
    let computed = crc32fast::hash(&payload);
    if computed != crc {
        return Err(corrupt(format!(
            "checksum {computed:#010x}, but the frame says {crc:#010x}"
        )));
    }
    let (message, used) = weir_state_backends::codec::decode_message::<T>(&payload)
        .map_err(|e| corrupt(format!("cannot decode it: {e}")))?;
    if used != payload.len() {
        return Err(corrupt(format!(
            "{} bytes after the message",
            payload.len() - used
        )));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_in_order() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        write_message(&mut a, "b", &("hello".to_string(), 7u64))
            .await
            .unwrap();
        write_message(&mut a, "b", &vec![1u32, 2, 3]).await.unwrap();
        let first: (String, u64) = read_message(&mut b, "a").await.unwrap();
        let second: Vec<u32> = read_message(&mut b, "a").await.unwrap();
        assert_eq!(first, ("hello".to_string(), 7));
        assert_eq!(second, [1, 2, 3]);
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_allocating() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])
            .await
            .unwrap();
        let err = read_message::<_, u8>(&mut b, "10.0.0.9:1")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RpcError::TooLarge {
                    len: 0xffff_ffff,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("10.0.0.9:1"), "{err}");
    }

    #[tokio::test]
    async fn a_flipped_bit_trailing_bytes_and_a_short_frame_are_errors() {
        let (mut a, mut b) = tokio::io::duplex(1 << 16);
        let mut frame = Vec::new();
        write_message(&mut frame, "x", &12345u64).await.unwrap();
        let mut flipped = frame.clone();
        *flipped.last_mut().unwrap() ^= 1;
        a.write_all(&flipped).await.unwrap();
        let err = read_message::<_, u64>(&mut b, "x").await.unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");

        // A valid frame whose payload holds more than one message.
        let mut two = Vec::new();
        weir_state_backends::encode_into(&1u8, &mut two).unwrap();
        weir_state_backends::encode_into(&2u8, &mut two).unwrap();
        let mut framed = (two.len() as u32).to_be_bytes().to_vec();
        framed.extend(crc32fast::hash(&two).to_be_bytes());
        framed.extend(&two);
        a.write_all(&framed).await.unwrap();
        let err = read_message::<_, u8>(&mut b, "x").await.unwrap_err();
        assert!(err.to_string().contains("after the message"), "{err}");

        a.write_all(&frame[..frame.len() - 1]).await.unwrap();
        drop(a);
        let err = read_message::<_, u64>(&mut b, "x").await.unwrap_err();
        assert!(matches!(err, RpcError::Closed { .. }), "{err}");
    }
}
