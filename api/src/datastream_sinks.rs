//! Sinks that write a stream to files: rolling part files of text lines.
//!
//! Invariants: each method only adds a sink node (via [`DataStream::add_sink`]); the sink
//! runs with the stream's default parallelism, every subtask writing its own part files.

use crate::datastream::{DataStream, DataStreamSink};
use crate::record::Record;
use crate::sink::FileSink;
use std::fmt::Display;
use std::path::Path;

impl<T: Record> DataStream<T> {
    /// Writes every record with the file sink `sink` (see [`FileSink`]).
    pub fn sink_to_files(&self, sink: FileSink<T>) -> DataStreamSink {
        self.add_sink(sink).name("File Sink")
    }

    /// Writes every record's [`Display`] text as one line into part files in `dir`
    /// (Flink's `writeAsText`).
    pub fn write_as_text(&self, dir: impl AsRef<Path>) -> DataStreamSink
    where
        T: Display,
    {
        self.sink_to_files(FileSink::display(dir))
    }
}
