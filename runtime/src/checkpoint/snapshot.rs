//! The state an operator hands over when a checkpoint barrier passes it.
//!
//! Keyed operators snapshot their keyed state and timers synchronously, when the barrier
//! passes, into an owned [`OperatorSnapshot`]; the task uploads it afterwards while the
//! operator goes on processing. Operator (non-keyed) state is a list whose entries are
//! redistributed round-robin when the parallelism changes.
//!
//! A native (incremental RocksDB) snapshot is a directory on local disk: its state file
//! is encoded only by the upload, once the shared files it references are known. A full
//! snapshot of RocksDB is a checkpoint of the database on local disk too: the upload
//! streams it into the state file ([`StreamedOperatorState`]), byte for byte what
//! [`KeyedOperatorState::encode`] makes of the same state.

use crate::error::TaskError;
use serde::{Deserialize, Serialize};
use weir_state_backends::{
    BackendSnapshot, FullSnapshotReader, KeyGroupRange, KeyedStateSnapshot, LocalFullSnapshot,
    LocalSnapshot, NativeKeyedState, StreamedKeyedState, StreamedTimers, TimerSnapshot,
};

/// The state of one operator of one subtask for one checkpoint.
#[derive(Debug)]
pub struct OperatorSnapshot {
    /// The operator's `uid` (its name when it has none).
    pub uid: String,
    /// The key groups the state covers.
    pub key_groups: KeyGroupRange,
    /// The encoded state (empty for a native snapshot until its upload).
    pub bytes: Vec<u8>,
    /// A native snapshot still to be uploaded, with the operator's timers.
    pub native: Option<(LocalSnapshot, Option<TimerSnapshot>)>,
    /// A full snapshot still to be streamed into its state file, with the operator's
    /// timers if the snapshot does not carry them.
    pub streamed: Option<(LocalFullSnapshot, Option<TimerSnapshot>)>,
}

/// The encoding of a [`KeyedOperatorState`] holding a full snapshot, streamed from a
/// [`LocalFullSnapshot`]: the same fields, in the same order, serialized alike.
#[derive(Serialize)]
pub struct StreamedOperatorState<'a> {
    keyed: StreamedKeyedData<'a>,
    timers: Option<StreamedTimerData<'a>>,
}

/// [`KeyedStateData::Full`]: the first variant, as there.
#[derive(Serialize)]
enum StreamedKeyedData<'a> {
    Full(StreamedKeyedState<'a>),
}

/// Timers carried by the streamed snapshot, or taken beside it.
#[derive(Serialize)]
#[serde(untagged)]
enum StreamedTimerData<'a> {
    Carried(StreamedTimers<'a>),
    Beside(&'a TimerSnapshot),
}

impl<'a> StreamedOperatorState<'a> {
    /// The state streamed from `reader`, with `beside`, the timers taken beside the
    /// snapshot if it does not carry them.
    pub fn new(reader: &'a FullSnapshotReader<'a>, beside: Option<&'a TimerSnapshot>) -> Self {
        let timers = match reader.timers() {
            Some(carried) => Some(StreamedTimerData::Carried(carried)),
            None => beside.map(StreamedTimerData::Beside),
        };
        Self {
            keyed: StreamedKeyedData::Full(reader.keyed()),
            timers,
        }
    }
}

/// The keyed state of an operator as stored: every entry, or a native snapshot's
/// descriptor whose data lies in shared files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyedStateData {
    /// Every entry, in the backend-independent format.
    Full(KeyedStateSnapshot),
    /// A native RocksDB snapshot (the handle lists its shared files).
    Native(NativeKeyedState),
}

/// What a keyed operator stores: its keyed state and its timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyedOperatorState {
    /// Every keyed state of the operator.
    pub keyed: KeyedStateData,
    /// Its timers, if it has a timer service.
    pub timers: Option<TimerSnapshot>,
}

impl KeyedOperatorState {
    /// Encodes the state of operator `uid`.
    pub fn encode(&self, uid: &str) -> Result<Vec<u8>, TaskError> {
        let keyed = match &self.keyed {
            KeyedStateData::Full(full) => full.encoded_len_hint(),
            KeyedStateData::Native(_) => 0,
        };
        let timers = self
            .timers
            .as_ref()
            .map_or(0, TimerSnapshot::encoded_len_hint);
        // Sized up front: a large snapshot is not copied again and again as it grows.
        let mut bytes = Vec::with_capacity(keyed + timers + 64);
        weir_state_backends::encode_into(self, &mut bytes).map_err(|e| {
            TaskError::Checkpoint(format!("cannot encode the state of '{uid}': {e}"))
        })?;
        Ok(bytes)
    }
}

impl OperatorSnapshot {
    /// The state of a keyed operator: encoded now when full in memory, by the upload when
    /// native or streamed.
    pub fn keyed(
        uid: &str,
        keyed: BackendSnapshot,
        timers: Option<TimerSnapshot>,
    ) -> Result<Self, TaskError> {
        match keyed {
            BackendSnapshot::Full(keyed) => {
                let key_groups = keyed.key_group_range;
                let bytes = KeyedOperatorState {
                    keyed: KeyedStateData::Full(keyed),
                    timers,
                }
                .encode(uid)?;
                Ok(Self {
                    uid: uid.to_string(),
                    key_groups,
                    bytes,
                    native: None,
                    streamed: None,
                })
            }
            BackendSnapshot::Native(local) => Ok(Self {
                uid: uid.to_string(),
                key_groups: local.key_group_range,
                bytes: Vec::new(),
                native: Some((local, timers)),
                streamed: None,
            }),
            BackendSnapshot::Streamed(full) => Ok(Self {
                uid: uid.to_string(),
                key_groups: full.key_group_range(),
                bytes: Vec::new(),
                native: None,
                streamed: Some((full, timers)),
            }),
        }
    }

    /// Encodes operator (non-keyed) list state, such as a source's split positions or a
    /// sink's pending transactions: on a restore at another parallelism its entries are
    /// redistributed round-robin.
    pub fn operator_list(uid: &str, entries: &[Vec<u8>]) -> Result<Self, TaskError> {
        let mut bytes = Vec::new();
        weir_state_backends::encode_into(&entries, &mut bytes).map_err(|e| {
            TaskError::Checkpoint(format!("cannot encode the state of '{uid}': {e}"))
        })?;
        Ok(Self::unkeyed(uid, bytes))
    }

    /// State of `uid` that covers no key group, already encoded.
    pub(super) fn unkeyed(uid: &str, bytes: Vec<u8>) -> Self {
        Self {
            uid: uid.to_string(),
            key_groups: KeyGroupRange::new(0, 0),
            bytes,
            native: None,
            streamed: None,
        }
    }

    /// Decodes operator list state.
    pub fn decode_list(bytes: &[u8]) -> Result<Vec<Vec<u8>>, TaskError> {
        weir_state_backends::codec::decode_limited(bytes)
            .map(|(s, _)| s)
            .map_err(|e| {
                TaskError::RestoredState(format!("cannot decode operator list state: {e}"))
            })
    }

    /// Decodes the state of a keyed operator.
    pub fn decode_keyed(bytes: &[u8]) -> Result<KeyedOperatorState, TaskError> {
        weir_state_backends::codec::decode_limited(bytes)
            .map(|(s, _)| s)
            .map_err(|e| {
                TaskError::RestoredState(format!("cannot decode keyed operator state: {e}"))
            })
    }
}
