//! A sink that writes records as text lines into rolling part files in a directory, as
//! Flink's `FileSink` with a row format.
//!
//! Invariants:
//! - Subtask `s` writes the files `part-<s>-0`, `part-<s>-1`, ... in the output directory
//!   (created if missing); subtasks never share a file. A subtask that receives no record
//!   writes no file.
//! - A part file being written is named `.part-<s>-<n>.inprogress` (hidden: names starting
//!   with `.` are not results) and is renamed to `part-<s>-<n>` once complete: when it
//!   reached the maximum part size (default 128 MiB; a part exceeds it by at most one line)
//!   or at the end of input. A failed job leaves only hidden in-progress files behind, never
//!   a truncated visible part. Existing files of the same names are replaced.
//! - Every record is one line: the formatter's text followed by `\n`. Writes are buffered;
//!   the formatter appends into one reused `String`, so the sink allocates nothing per
//!   record itself.
//! - An I/O error fails the task with a message naming the file.

use super::{SinkContext, SinkFunction, SinkWriter};
use std::fmt::{Display, Write as _};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_runtime::{TaskError, Timestamp};

/// The default size at which a part file is rolled: 128 MiB.
pub const DEFAULT_MAX_PART_SIZE: u64 = 128 * 1024 * 1024;

/// Appends the text of one record (without the line terminator) to the buffer.
type Formatter<T> = Arc<dyn Fn(&T, &mut String) + Send + Sync>;

/// Writes records as text lines into rolling part files in a directory.
///
/// ```no_run
/// use weir_api::sink::FileSink;
/// use weir_api::StreamExecutionEnvironment;
/// use std::fmt::Write;
///
/// let env = StreamExecutionEnvironment::new();
/// let pairs = env.from_collection(vec![(1u32, 2.5f64), (2, 4.0)]);
/// // Appends into a reused buffer: no allocation per record.
/// pairs.sink_to_files(FileSink::new("out/pairs", |(k, v): &(u32, f64), line: &mut String| {
///     let _ = write!(line, "{k},{v}");
/// }));
/// env.execute("pairs").unwrap();
/// ```
pub struct FileSink<T> {
    dir: PathBuf,
    format: Formatter<T>,
    max_part_size: u64,
}

impl<T> Clone for FileSink<T> {
    fn clone(&self) -> Self {
        Self {
            dir: self.dir.clone(),
            format: self.format.clone(),
            max_part_size: self.max_part_size,
        }
    }
}

impl<T> FileSink<T> {
    /// Creates a sink into `dir` whose `format` appends a record's text to the given
    /// (reused, cleared) line buffer; the sink adds the `\n`.
    pub fn new(
        dir: impl AsRef<Path>,
        format: impl Fn(&T, &mut String) + Send + Sync + 'static,
    ) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            format: Arc::new(format),
            max_part_size: DEFAULT_MAX_PART_SIZE,
        }
    }

    /// Creates a sink into `dir` whose `format` returns a record's text (one `String` per
    /// record; prefer [`FileSink::new`] on hot paths).
    pub fn with_formatter(
        dir: impl AsRef<Path>,
        format: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Self {
        Self::new(dir, move |v, line| line.push_str(&format(v)))
    }

    /// Sets the size in bytes at which a part file is completed and a new one started
    /// (default [`DEFAULT_MAX_PART_SIZE`]; at least one line always goes into each part).
    pub fn with_max_part_size(mut self, bytes: u64) -> Self {
        self.max_part_size = bytes;
        self
    }

    /// Returns the output directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the size at which part files roll.
    pub fn max_part_size(&self) -> u64 {
        self.max_part_size
    }
}

impl<T: Display> FileSink<T> {
    /// Creates a sink into `dir` that writes each record's [`Display`] text.
    pub fn display(dir: impl AsRef<Path>) -> Self {
        Self::new(dir, |v, line| {
            // Writing into a String cannot fail.
            let _ = write!(line, "{v}");
        })
    }
}

impl<T: 'static> SinkFunction<T> for FileSink<T> {
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            TaskError::Other(format!(
                "file sink cannot create output directory {}: {e}",
                self.dir.display()
            ))
        })?;
        Ok(Box::new(FileWriter {
            dir: self.dir.clone(),
            format: self.format.clone(),
            max_part_size: self.max_part_size,
            subtask: ctx.subtask,
            next_part: 0,
            current: None,
            line: String::new(),
        }))
    }
}

/// The part file a subtask is writing.
struct OpenPart {
    writer: BufWriter<File>,
    in_progress: PathBuf,
    done: PathBuf,
    written: u64,
}

struct FileWriter<T> {
    dir: PathBuf,
    format: Formatter<T>,
    max_part_size: u64,
    subtask: u16,
    /// Index of the next part file to open.
    next_part: u64,
    current: Option<OpenPart>,
    /// Reused for every record.
    line: String,
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> TaskError {
    TaskError::Other(format!("file sink cannot {action} {}: {e}", path.display()))
}

impl<T> FileWriter<T> {
    fn open_part(&mut self) -> Result<OpenPart, TaskError> {
        let n = self.next_part;
        self.next_part += 1;
        let in_progress = self
            .dir
            .join(format!(".part-{}-{n}.inprogress", self.subtask));
        let done = self.dir.join(format!("part-{}-{n}", self.subtask));
        let file = File::create(&in_progress).map_err(|e| io_error("create", &in_progress, e))?;
        Ok(OpenPart {
            writer: BufWriter::with_capacity(256 * 1024, file),
            in_progress,
            done,
            written: 0,
        })
    }

    /// Flushes the current part file, if any, and gives it its final name.
    fn close_part(&mut self) -> Result<(), TaskError> {
        let Some(part) = self.current.take() else {
            return Ok(());
        };
        let OpenPart {
            writer,
            in_progress,
            done,
            ..
        } = part;
        let file = writer
            .into_inner()
            .map_err(|e| io_error("write", &in_progress, e.into_error()))?;
        drop(file);
        std::fs::rename(&in_progress, &done).map_err(|e| {
            TaskError::Other(format!(
                "file sink cannot rename {} to {}: {e}",
                in_progress.display(),
                done.display()
            ))
        })
    }
}

impl<T> SinkWriter<T> for FileWriter<T> {
    fn write(&mut self, value: T, _ts: Timestamp) -> Result<(), TaskError> {
        self.line.clear();
        (self.format)(&value, &mut self.line);
        self.line.push('\n');
        if self.current.is_none() {
            self.current = Some(self.open_part()?);
        }
        let part = self.current.as_mut().expect("a part file is open");
        part.writer
            .write_all(self.line.as_bytes())
            .map_err(|e| io_error("write", &part.in_progress, e))?;
        part.written += self.line.len() as u64;
        if part.written >= self.max_part_size {
            self.close_part()?;
        }
        Ok(())
    }

    /// In-progress part files are hidden, so there is nothing to make visible before a part
    /// completes; the buffer is written when full or when the part closes.
    fn flush(&mut self) -> Result<(), TaskError> {
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TaskError> {
        self.close_part()
    }
}
