//! Prints records to standard output, as Flink's `print()`: `N> record` where `N` is the
//! 1-based subtask index when the sink runs with parallelism above one.

use super::{SinkContext, SinkFunction, SinkWriter};
use std::fmt::Debug;
use std::io::Write;
use weir_runtime::{TaskError, Timestamp};

/// The sink of `DataStream::print`.
pub struct PrintSink;

impl<T: Debug + 'static> SinkFunction<T> for PrintSink {
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        let prefix = if ctx.parallelism > 1 {
            format!("{}> ", ctx.subtask + 1)
        } else {
            String::new()
        };
        Ok(Box::new(PrintWriter { prefix }))
    }
}

struct PrintWriter {
    prefix: String,
}

impl<T: Debug> SinkWriter<T> for PrintWriter {
    fn write(&mut self, value: T, _ts: Timestamp) -> Result<(), TaskError> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}{:?}", self.prefix, value)
            .map_err(|e| TaskError::Io(format!("print sink: {e}")))
    }
}
