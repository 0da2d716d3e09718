//! The data in flight that an unaligned checkpoint stores: what its barriers overtook.
//!
//! With `execution.checkpointing.unaligned.enabled`, a task snapshots its operators as soon
//! as the first barrier of a checkpoint reaches it, and the barrier leaves at once ahead of
//! the buffers queued for each output channel. Two kinds of buffers were sent before a
//! barrier but are not reflected in the operators' state, and the checkpoint stores them:
//! - output: the buffers queued for a channel, not yet sent, when the barrier overtook them
//!   (stored under [`output_uid`]); the producer's subpartition copies them under the lock
//!   that orders its sends, and says how many buffers it sent before the barrier;
//! - input: the buffers of each input channel that the task reads after its snapshot and
//!   that were sent before that channel's barrier (stored under [`input_uid`]), starting
//!   with the part of a record that an earlier buffer began.
//!
//! A restore sends every output channel's stored buffers before anything new and reads each
//! input channel's stored buffers before anything that arrives, so every record in flight
//! is processed exactly once. In-flight data is tied to its channels: a checkpoint that
//! holds any cannot be restored at another parallelism (Flink can; Weir refuses with an
//! error that says so).
//!
//! Invariant: buffers are stored per channel in the order they were sent, with their
//! flags, so the consumer reassembles records that span buffers as it did.

use super::snapshot::OperatorSnapshot;
use crate::error::TaskError;
use crate::types::CheckpointId;
use serde::{Deserialize, Serialize};

/// Prefix of the state names of in-flight data.
pub const CHANNEL_STATE_PREFIX: &str = "weir:channels/";

/// One stored buffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelBuffer {
    /// The encoded elements: written as a byte string, copied at once, read back as the
    /// sequence of `u8` it encodes alike.
    #[serde(serialize_with = "serde_bytes::serialize")]
    pub bytes: Vec<u8>,
    /// The buffer's flags (a record continues in the next buffer).
    pub flags: u8,
    /// With the continues flag: where the unfinished last frame starts.
    pub complete: u32,
}

impl ChannelBuffer {
    /// A copy of the payload and flags of `buffer`.
    pub fn copy_of(buffer: &crate::exchange::Buffer) -> Self {
        Self {
            bytes: buffer.payload().to_vec(),
            flags: buffer.flags,
            complete: buffer.complete,
        }
    }
}

/// The in-flight data of one side of a subtask: per channel index, its buffers in order.
pub type ChannelData = Vec<(u32, Vec<ChannelBuffer>)>;

/// The size of a stored state file that holds no data in flight.
pub fn empty_state_file_size() -> u64 {
    let mut empty = Vec::new();
    weir_state_backends::encode_into(&ChannelData::new(), &mut empty)
        .expect("an empty list encodes");
    weir_state_backends::encode_versioned(&empty)
        .expect("a byte string encodes")
        .len() as u64
}

/// The state name of the in-flight data of output `output` of job vertex `vertex`.
pub fn output_uid(vertex: u32, output: usize) -> String {
    format!("{CHANNEL_STATE_PREFIX}v{vertex}/out{output}")
}

/// The state name of the in-flight data of the inputs of job vertex `vertex`.
pub fn input_uid(vertex: u32) -> String {
    format!("{CHANNEL_STATE_PREFIX}v{vertex}/in")
}

/// The job vertex whose in-flight data state `uid` holds; `None` for any other state.
pub fn vertex_of(uid: &str) -> Option<u32> {
    let rest = uid.strip_prefix(CHANNEL_STATE_PREFIX)?.strip_prefix('v')?;
    rest.split('/').next()?.parse().ok()
}

impl OperatorSnapshot {
    /// The in-flight data `data` under state name `uid`.
    pub fn channels(uid: &str, data: &ChannelData) -> Result<Self, TaskError> {
        let mut bytes = Vec::new();
        weir_state_backends::encode_into(data, &mut bytes).map_err(|e| {
            TaskError::Checkpoint(format!("cannot encode the data in flight of '{uid}': {e}"))
        })?;
        Ok(Self::unkeyed(uid, bytes))
    }

    /// Decodes stored in-flight data.
    pub fn decode_channels(bytes: &[u8]) -> Result<ChannelData, TaskError> {
        weir_state_backends::codec::decode_limited(bytes)
            .map(|(d, _)| d)
            .map_err(|e| TaskError::RestoredState(format!("cannot decode data in flight: {e}")))
    }
}

/// The checkpoint an unaligned barrier belongs to, with what its channels sent before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorityBarrier {
    /// The checkpoint.
    pub checkpoint: CheckpointId,
    /// The barrier's options.
    pub options: crate::element::BarrierOptions,
    /// Buffers the channel's producer sent before the barrier.
    pub sequence: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_state_names_carry_their_vertex_and_nothing_else_parses() {
        assert_eq!(vertex_of(&output_uid(7, 2)), Some(7));
        assert_eq!(vertex_of(&input_uid(12)), Some(12));
        assert_eq!(vertex_of("sensor-window"), None);
        assert_eq!(vertex_of("weir:channels/x/in"), None);
    }

    #[test]
    fn stored_channel_data_round_trips() {
        let data: ChannelData = vec![(
            3,
            vec![ChannelBuffer {
                bytes: vec![1, 2, 3],
                flags: 1,
                complete: 2,
            }],
        )];
        let snapshot = OperatorSnapshot::channels(&input_uid(1), &data).unwrap();
        assert_eq!(snapshot.uid, input_uid(1));
        assert_eq!(
            OperatorSnapshot::decode_channels(&snapshot.bytes).unwrap(),
            data
        );
        assert!(OperatorSnapshot::decode_channels(&[0xff; 3]).is_err());
    }
}
