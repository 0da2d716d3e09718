//! Helpers shared by the fuzz targets: wrap arbitrary bytes in the envelope their decoder
//! checks first (a frame's length and crc32, a stored blob's version byte and checksum),
//! so that the decoder behind the check sees arbitrary bytes too.

/// `payload` as one control RPC frame with the right length and crc32.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// `payload` as a versioned blob with the right version byte and checksum.
pub fn versioned(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![weir_state_backends::codec::FORMAT_VERSION];
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}
