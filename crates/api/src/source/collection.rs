//! A bounded source over an in-memory collection.
//!
//! Subtask `i` of `p` emits the elements at positions `i, i + p, i + 2p, ...`, in order.

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
            next: ctx.subtask as usize,
            step: ctx.parallelism as usize,
        }))
    }
}

struct CollectionReader<T> {
    items: Arc<Vec<T>>,
    next: usize,
    step: usize,
}

impl<T: Clone> SourceReader<T> for CollectionReader<T> {
    fn position(&mut self) -> Result<Option<Vec<u8>>, TaskError> {
        super::encode_position(&(self.next as u64))
    }

    fn restore(&mut self, position: &[u8]) -> Result<(), TaskError> {
        let next: u64 = super::decode_position(position, "the collection")?;
        self.next = usize::try_from(next).unwrap_or(usize::MAX);
        Ok(())
    }

    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError> {
        for _ in 0..max {
            let Some(v) = self.items.get(self.next) else {
                return Ok(SourceStep::Finished);
            };
            out.emit(v.clone(), NO_TIMESTAMP)?;
            self.next += self.step;
        }
        Ok(if self.next < self.items.len() {
            SourceStep::More
        } else {
            SourceStep::Finished
        })
    }
}
