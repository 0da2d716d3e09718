//! Entry points for the built-in sources beyond collections: the data generator, CSV and
//! text files, and TCP sockets.
//!
//! Invariants: each method only adds a source node (via
//! [`StreamExecutionEnvironment::add_source`]); nothing is opened or connected before
//! `execute`, so a missing file or a refused connection fails the job, naming the path or
//! `host:port`. Single-reader sources (files, sockets) run with parallelism 1.

use crate::datastream::DataStream;
use crate::environment::StreamExecutionEnvironment;
use crate::record::Record;
use crate::source::{CsvSource, GeneratorSource, SocketTextSource, TextFileSource};
use std::path::Path;

impl StreamExecutionEnvironment {
    /// Creates a stream from a data generator (Flink's `DataGeneratorSource`); it runs with
    /// the default parallelism, each subtask generating its share of the sequence.
    pub fn from_generator<T: Record>(&self, source: GeneratorSource<T>) -> DataStream<T> {
        self.add_source(source, "Generator Source")
    }

    /// Creates the bounded stream of the numbers `from..=to` (Flink's `fromSequence`); each
    /// subtask reads one contiguous range.
    pub fn from_sequence(&self, from: u64, to: u64) -> DataStream<u64> {
        self.add_source(GeneratorSource::sequence(from, to), "Sequence Source")
    }

    /// Reads the CSV file at `path` (with a header row) into rows of `T`, skipping malformed
    /// rows; use [`StreamExecutionEnvironment::read_csv_with`] for other options or to
    /// count skipped rows.
    pub fn read_csv<T: Record>(&self, path: impl AsRef<Path>) -> DataStream<T> {
        self.read_csv_with(CsvSource::new(path))
    }

    /// Reads a CSV file configured by `source` (headers, delimiter, bad-record policy); keep
    /// [`CsvSource::skipped_counter`] before passing the source in to count skipped rows.
    pub fn read_csv_with<T: Record>(&self, source: CsvSource<T>) -> DataStream<T> {
        self.add_source(source, "CSV Source").set_parallelism(1)
    }

    /// Reads the text file at `path` line by line (Flink's `readTextFile`).
    pub fn read_text_file(&self, path: impl AsRef<Path>) -> DataStream<String> {
        self.add_source(TextFileSource::new(path), "Text File Source")
            .set_parallelism(1)
    }

    /// Reads `\n`-terminated text lines from the TCP server at `host:port` until it closes
    /// the connection (Flink's `socketTextStream`).
    pub fn socket_text_stream(&self, host: &str, port: u16) -> DataStream<String> {
        self.add_socket_text_stream(SocketTextSource::new(host, port))
    }

    /// Reads text lines from a configured socket source (e.g. another connect timeout).
    pub fn add_socket_text_stream(&self, source: SocketTextSource) -> DataStream<String> {
        self.add_source(source, "Socket Stream").set_parallelism(1)
    }
}
