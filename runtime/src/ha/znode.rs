//! The bytes every znode Weir writes holds: JSON with a `format` field (version 1) beside
//! the value's own fields, so that `zkCli.sh get` shows them and a later format can be
//! told apart.

use super::error::HaError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The stored format of every znode's data.
const FORMAT: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Stored<T> {
    format: u8,
    #[serde(flatten)]
    value: T,
}

/// The bytes of `value` with the format field.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(&Stored {
        format: FORMAT,
        value,
    })
    .expect("znode data serializes")
}

/// Reads the bytes of znode `path`; foreign bytes or another format are an error naming it.
pub fn decode<T: DeserializeOwned>(path: &str, bytes: &[u8]) -> Result<T, HaError> {
    let bad = |reason: String| HaError::BadData {
        path: path.to_string(),
        reason,
    };
    let stored: Stored<T> = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if stored.format != FORMAT {
        return Err(bad(format!("unknown format {}", stored.format)));
    }
    Ok(stored.value)
}
