//! Sources: where records enter a job.
//!
//! A [`SourceFunction`] is shared by all subtasks and creates one [`SourceReader`] per
//! subtask; the reader is polled in batches by the task loop, so a source never blocks its
//! task for long (a reader with nothing to read returns [`SourceStep::Idle`]).

mod collection;
mod csv;
mod generator;
mod socket;
mod text;

pub use collection::CollectionSource;
pub use csv::{BadRecordPolicy, CsvSource};
pub use generator::GeneratorSource;
pub use socket::SocketTextSource;
pub use text::TextFileSource;

use weir_runtime::{CheckpointId, Output, SourceStep, TaskError};

/// Where a source subtask learns which part of the input it reads.
#[derive(Clone, Debug)]
pub struct SourceContext {
    /// The source's name.
    pub name: String,
    /// This subtask's index.
    pub subtask: u16,
    /// The source's parallelism.
    pub parallelism: u16,
}

/// Creates the readers of a source.
pub trait SourceFunction<T>: Send + Sync + 'static {
    /// Creates the reader of one subtask.
    fn create_reader(&self, ctx: &SourceContext) -> Result<Box<dyn SourceReader<T>>, TaskError>;

    /// Returns the parallelism this source supports at most (`None`: any).
    fn max_parallelism(&self) -> Option<u16> {
        None
    }

    /// How the positions of a checkpoint are dealt to the readers that restore it.
    fn split_restore(&self) -> SplitRestore {
        SplitRestore::RoundRobin
    }
}

/// How the split positions of a checkpoint reach the readers that restore it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitRestore {
    /// At the same parallelism every reader gets its own positions back; at another, all
    /// positions are dealt round-robin.
    #[default]
    RoundRobin,
    /// Every reader gets the positions of all readers and keeps those it owns (Flink's
    /// union list state): for sources whose readers pick their splits themselves, such as
    /// Kafka partitions assigned by hash, so that a reader also knows which splits the
    /// checkpoint covers at all and reads only those it has never seen from the start.
    Union,
}

/// Reads one subtask's share of a source.
pub trait SourceReader<T> {
    /// Emits up to `max` records into `out`.
    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError>;

    /// Returns, for checkpoint `checkpoint` (taken between two polls), the read position of every
    /// split this reader owns (a split is a part of the input that one reader reads in
    /// order: a file, a range of sequence numbers), or `None` if the source cannot be
    /// replayed (its records since the last checkpoint may be lost on failure).
    fn snapshot_splits(
        &mut self,
        checkpoint: CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError>;

    /// Checkpoint `checkpoint`, whose positions [`Self::snapshot_splits`] returned,
    /// completed (a Kafka reader commits them to its consumer group, for monitoring).
    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let _ = checkpoint;
        Ok(())
    }

    /// Before the first poll, after a restore: reads exactly `splits` (positions some
    /// readers returned, redistributed round-robin when the parallelism changed) instead of
    /// the share the reader was created with. An empty list leaves it nothing to read.
    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError>;

    /// Records this reader has yet to read, where it knows (Flink's `pendingRecords`; a
    /// Kafka reader's consumer lag). Asked about once a second, between polls.
    fn pending_records(&self) -> Option<u64> {
        None
    }
}

/// Decodes a split position written by [`encode_split`] (for sources in other crates too).
pub fn decode_split<P: serde::de::DeserializeOwned>(
    bytes: &[u8],
    source: &str,
) -> Result<P, TaskError> {
    weir_state_backends::decode_from(bytes)
        .map(|(p, _)| p)
        .map_err(|e| {
            TaskError::RestoredState(format!("cannot restore the position of {source}: {e}"))
        })
}

/// Encodes a split position.
pub fn encode_split<P: serde::Serialize>(position: &P) -> Result<Vec<u8>, TaskError> {
    let mut out = Vec::new();
    weir_state_backends::encode_into(position, &mut out)
        .map_err(|e| TaskError::Checkpoint(format!("cannot encode a source position: {e}")))?;
    Ok(out)
}

/// Encodes the positions of `splits`, one entry each.
pub fn encode_splits<P: serde::Serialize>(splits: &[P]) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
    splits
        .iter()
        .map(encode_split)
        .collect::<Result<_, _>>()
        .map(Some)
}

/// Decodes split positions written by [`encode_splits`].
pub fn decode_splits<P: serde::de::DeserializeOwned>(
    splits: &[Vec<u8>],
    source: &str,
) -> Result<Vec<P>, TaskError> {
    splits.iter().map(|s| decode_split(s, source)).collect()
}

/// The split of a single-file source restored into its only reader: `None` when the list
/// is empty (another reader has the file), an error when it holds more than one.
pub(crate) fn single_split(
    splits: Vec<Vec<u8>>,
    source: &str,
) -> Result<Option<Vec<u8>>, TaskError> {
    let n = splits.len();
    let mut it = splits.into_iter();
    match (it.next(), n) {
        (None, _) => Ok(None),
        (Some(s), 1) => Ok(Some(s)),
        _ => Err(TaskError::RestoredState(format!(
            "cannot restore {source}: {n} positions for one reader of one file"
        ))),
    }
}
