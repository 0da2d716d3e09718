//! A sink that drops every record (Flink's `DiscardingSink`), for benchmarks and tests that
//! only measure the pipeline in front of it.

use super::{SinkContext, SinkFunction, SinkWriter};
use weir_runtime::{TaskError, Timestamp};

/// Drops every record.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardingSink;

impl<T: 'static> SinkFunction<T> for DiscardingSink {
    fn create_writer(&self, _ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        Ok(Box::new(DiscardingSink))
    }
}

impl<T> SinkWriter<T> for DiscardingSink {
    #[inline]
    fn write(&mut self, value: T, _ts: Timestamp) -> Result<(), TaskError> {
        drop(value);
        Ok(())
    }
}
