//! A bounded source that reads a text file line by line, as Flink's `readTextFile`.
//!
//! Invariants:
//! - The file is read by subtask 0 only ([`SourceFunction::max_parallelism`] is 1; any other
//!   subtask finishes at once), so every line is emitted exactly once, in file order, with
//!   [`NO_TIMESTAMP`].
//! - A record is one line without its terminator (`\n` or `\r\n`); a last line without a
//!   terminator is still a record, and an empty file has none.
//! - A file that cannot be opened or read, or a line that is not UTF-8, fails the task with
//!   an error naming the path (and the line).

use super::{SourceContext, SourceFunction, SourceReader};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use weir_runtime::{Output, SourceStep, TaskError, NO_TIMESTAMP};

/// Reads the lines of one text file as `String` records.
#[derive(Clone, Debug)]
pub struct TextFileSource {
    path: PathBuf,
}

impl TextFileSource {
    /// Creates a source over the file at `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Returns the file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl SourceFunction<String> for TextFileSource {
    fn create_reader(
        &self,
        ctx: &SourceContext,
    ) -> Result<Box<dyn SourceReader<String>>, TaskError> {
        if ctx.subtask != 0 {
            return Ok(Box::new(EmptyReader));
        }
        let path = self.path.display().to_string();
        let file = File::open(&self.path)
            .map_err(|e| TaskError::Io(format!("cannot open text file {path}: {e}")))?;
        Ok(Box::new(TextReader {
            reader: BufReader::with_capacity(64 * 1024, file),
            path,
            line: 0,
            capacity_hint: 64,
            done: false,
        }))
    }

    fn max_parallelism(&self) -> Option<u16> {
        Some(1)
    }
}

/// The reader of a subtask that has nothing to read.
pub(crate) struct EmptyReader;

impl<T> SourceReader<T> for EmptyReader {
    fn snapshot_splits(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        Ok(Some(Vec::new()))
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        if splits.is_empty() {
            Ok(())
        } else {
            Err(TaskError::RestoredState(format!(
                "a file source subtask other than the first cannot take over {} positions",
                splits.len()
            )))
        }
    }

    fn poll(&mut self, _out: &mut dyn Output<T>, _max: usize) -> Result<SourceStep, TaskError> {
        Ok(SourceStep::Finished)
    }
}

struct TextReader {
    reader: BufReader<File>,
    path: String,
    /// Number of lines read so far.
    line: u64,
    /// Capacity for the next line's buffer (the previous line's length).
    capacity_hint: usize,
    /// Restored without the file's split: nothing to read.
    done: bool,
}

/// Removes a trailing `\n` or `\r\n`.
pub(crate) fn strip_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

impl SourceReader<String> for TextReader {
    fn snapshot_splits(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        use std::io::Seek;
        if self.done {
            return Ok(Some(Vec::new()));
        }
        let offset = self.reader.stream_position().map_err(|e| {
            TaskError::Checkpoint(format!("cannot tell the position in {}: {e}", self.path))
        })?;
        Ok(Some(vec![super::encode_split(&(offset, self.line))?]))
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        use std::io::{Seek, SeekFrom};
        let Some(position) = super::single_split(splits, &self.path)? else {
            self.done = true;
            return Ok(());
        };
        let (offset, line): (u64, u64) = super::decode_split(&position, &self.path)?;
        self.reader.seek(SeekFrom::Start(offset)).map_err(|e| {
            TaskError::Io(format!(
                "cannot seek to byte {offset} of {}: {e}",
                self.path
            ))
        })?;
        self.line = line;
        Ok(())
    }

    fn poll(&mut self, out: &mut dyn Output<String>, max: usize) -> Result<SourceStep, TaskError> {
        if self.done {
            return Ok(SourceStep::Finished);
        }
        for _ in 0..max {
            // Each record owns its bytes, so the buffer moves into the record; sizing it like
            // the previous line avoids regrowing it while reading.
            let mut buf = Vec::with_capacity(self.capacity_hint);
            let n = self
                .reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| TaskError::Io(format!("cannot read text file {}: {e}", self.path)))?;
            if n == 0 {
                return Ok(SourceStep::Finished);
            }
            self.capacity_hint = n.clamp(16, 64 * 1024);
            self.line += 1;
            strip_line_end(&mut buf);
            let line = String::from_utf8(buf).map_err(|e| {
                TaskError::Io(format!(
                    "text file {} line {}: not UTF-8: {e}",
                    self.path, self.line
                ))
            })?;
            out.emit(line, NO_TIMESTAMP)?;
        }
        Ok(SourceStep::More)
    }
}
