//! A bounded source over an in-memory collection.
//!
//! Subtask `i` of `p` emits the elements at positions `i, i + p, i + 2p, ...`, in order: one
//! split per subtask. After a restore at another parallelism a subtask reads the splits it
//! was given one after the other.

use super::{SourceContext, SourceFunction, SourceReader};
use std::sync::Arc;
use weir_runtime::{Output, SourceStep, TaskError, NO_TIMESTAMP};

/// The source of `env.from_collection`.
pub struct CollectionSource<T> {
    items: Arc<Vec<T>>,
}

impl<T> CollectionSource<T> {
    /// Creates the source over `items`.
    pub fn new(items: Vec<T>) -> Self {
        Self {
            items: Arc::new(items),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> SourceFunction<T> for CollectionSource<T> {
    fn create_reader(&self, ctx: &SourceContext) -> Result<Box<dyn SourceReader<T>>, TaskError> {
        Ok(Box::new(CollectionReader {
            items: self.items.clone(),
            splits: vec![(ctx.subtask as u64, u64::from(ctx.parallelism.max(1)))],
        }))
    }
}

struct CollectionReader<T> {
    items: Arc<Vec<T>>,
    /// `(next index, step)` of every split still to read, read one after the other.
    splits: Vec<(u64, u64)>,
}

impl<T: Clone> SourceReader<T> for CollectionReader<T> {
    fn snapshot_splits(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        super::encode_splits(&self.splits)
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        self.splits = super::decode_splits(&splits, "the collection")?;
        Ok(())
    }

    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError> {
        let Some((next, step)) = self.splits.first_mut() else {
            return Ok(SourceStep::Finished);
        };
        // The split's position as an index, converted once per batch, not per record.
        let step = usize::try_from((*step).max(1)).unwrap_or(usize::MAX);
        let mut i = usize::try_from(*next).unwrap_or(usize::MAX);
        for _ in 0..max {
            let Some(v) = self.items.get(i) else {
                break;
            };
            out.emit(v.clone(), NO_TIMESTAMP)?;
            i = i.saturating_add(step);
        }
        *next = i as u64;
        if i >= self.items.len() {
            self.splits.remove(0);
        }
        Ok(if self.splits.is_empty() {
            SourceStep::Finished
        } else {
            SourceStep::More
        })
    }
}
