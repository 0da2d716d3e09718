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

use weir_runtime::{Output, SourceStep, TaskError};

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
}

/// Reads one subtask's share of a source.
pub trait SourceReader<T> {
    /// Emits up to `max` records into `out`.
    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError>;

    /// Returns the read position for a checkpoint (taken between two polls), or `None` if
    /// the source cannot be replayed (its records since the last checkpoint may be lost on
    /// failure).
    fn position(&mut self) -> Result<Option<Vec<u8>>, TaskError>;

    /// Moves the reader back to a `position` it returned (before the first poll, after a
    /// restart).
    fn restore(&mut self, position: &[u8]) -> Result<(), TaskError>;
}

/// Decodes a reader position written by [`encode_position`].
pub(crate) fn decode_position<P: serde::de::DeserializeOwned>(
    bytes: &[u8],
    source: &str,
) -> Result<P, TaskError> {
    weir_state_backends::decode_from(bytes)
        .map(|(p, _)| p)
        .map_err(|e| TaskError::Other(format!("cannot restore the position of {source}: {e}")))
}

/// Encodes a reader position.
pub(crate) fn encode_position<P: serde::Serialize>(
    position: &P,
) -> Result<Option<Vec<u8>>, TaskError> {
    let mut out = Vec::new();
    weir_state_backends::encode_into(position, &mut out)
        .map_err(|e| TaskError::Other(format!("cannot encode a source position: {e}")))?;
    Ok(Some(out))
}
