//! The state an operator hands over when a checkpoint barrier passes it.
//!
//! Keyed operators snapshot their keyed state and timers synchronously, when the barrier
//! passes, into an owned [`OperatorSnapshot`]; the task uploads it afterwards while the
//! operator goes on processing. Operator (non-keyed) state is a list whose entries are
//! redistributed round-robin when the parallelism changes.

use crate::error::TaskError;
use serde::{Deserialize, Serialize};
use weir_state_backends::{KeyGroupRange, KeyedStateSnapshot, TimerSnapshot};

/// The state of one operator of one subtask for one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorSnapshot {
    /// The operator's `uid` (its name when it has none).
    pub uid: String,
    /// The key groups the state covers.
    pub key_groups: KeyGroupRange,
    /// The encoded state.
    pub bytes: Vec<u8>,
}

/// What a keyed operator stores: its keyed state and its timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedOperatorState {
    /// Every keyed state of the operator.
    pub keyed: KeyedStateSnapshot,
    /// Its timers, if it has a timer service.
    pub timers: Option<TimerSnapshot>,
}

impl OperatorSnapshot {
    /// Encodes the state of a keyed operator.
    pub fn keyed(
        uid: &str,
        keyed: KeyedStateSnapshot,
        timers: Option<TimerSnapshot>,
    ) -> Result<Self, TaskError> {
        let key_groups = keyed.key_group_range;
        let mut bytes = Vec::new();
        weir_state_backends::encode_into(&KeyedOperatorState { keyed, timers }, &mut bytes)
            .map_err(|e| TaskError::Other(format!("cannot encode the state of '{uid}': {e}")))?;
        Ok(Self {
            uid: uid.to_string(),
            key_groups,
            bytes,
        })
    }

    /// Encodes operator (non-keyed) list state, such as a source's split positions or a
    /// sink's pending transactions: on a restore at another parallelism its entries are
    /// redistributed round-robin.
    pub fn operator_list(uid: &str, entries: &[Vec<u8>]) -> Result<Self, TaskError> {
        let mut bytes = Vec::new();
        weir_state_backends::encode_into(&entries, &mut bytes)
            .map_err(|e| TaskError::Other(format!("cannot encode the state of '{uid}': {e}")))?;
        Ok(Self {
            uid: uid.to_string(),
            key_groups: KeyGroupRange::new(0, 0),
            bytes,
        })
    }

    /// Decodes operator list state.
    pub fn decode_list(bytes: &[u8]) -> Result<Vec<Vec<u8>>, TaskError> {
        weir_state_backends::decode_from(bytes)
            .map(|(s, _)| s)
            .map_err(|e| TaskError::Other(format!("cannot decode operator list state: {e}")))
    }

    /// Decodes the state of a keyed operator.
    pub fn decode_keyed(bytes: &[u8]) -> Result<KeyedOperatorState, TaskError> {
        weir_state_backends::decode_from(bytes)
            .map(|(s, _)| s)
            .map_err(|e| TaskError::Other(format!("cannot decode keyed operator state: {e}")))
    }
}
