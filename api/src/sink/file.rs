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
//! - With checkpointing the sink is transactional (two-phase commit): a part closed by
//!   size or by a checkpoint barrier waits as `.part-<s>-<n>.pending` and becomes
//!   `part-<s>-<n>` only when the checkpoint that covers it completes. After a restart the
//!   restored checkpoint's pending parts are committed and every part numbered from the
//!   restored counter on (written after that checkpoint) is deleted, so each record is in
//!   exactly one visible part. At the end of input the last part closes, and the job's
//!   final checkpoint (which every task takes after its input ended) commits it.
//!   Without checkpointing every part is published at the end of input.
//! - Restored at another parallelism, a subtask finishes the parts of every old subtask
//!   whose state it was given; a new subtask index without state numbers its parts after
//!   the visible parts its index already has.
//! - The state names the (absolute) directory its parts were written in, so a job restored
//!   with another output directory commits the earlier parts where they were written, as
//!   Flink's `FileSink` does, and writes new parts into the new directory.
//! - Every record is one line: the formatter's text followed by `\n`. Writes are buffered;
//!   the formatter appends into one reused `String`, so the sink allocates nothing per
//!   record itself.
//! - An I/O error fails the task with a message naming the file.
//! - A directory given as `s3://bucket/dir` writes to S3 instead (see
//!   [`super::object_file`]): the same part names and commit protocol, with multipart
//!   uploads in place of files and renames.

use super::object_file::ObjectFileWriter;
use super::parts_state::PartsState;
use super::pending_parts::PendingParts;
use super::{SinkContext, SinkFunction, SinkWriter};
use std::fmt::{Display, Write as _};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weir_runtime::{CheckpointId, TaskError, Timestamp};

/// The default size at which a part file is rolled: 128 MiB.
pub const DEFAULT_MAX_PART_SIZE: u64 = 128 * 1024 * 1024;

/// Appends the text of one record (without the line terminator) to the buffer.
pub(super) type Formatter<T> = Arc<dyn Fn(&T, &mut String) + Send + Sync>;

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
        if let Some(url) = self.dir.to_str().filter(|d| d.starts_with("s3://")) {
            let format = self.format.clone();
            let writer = ObjectFileWriter::new(url, format, self.max_part_size, ctx)?;
            return Ok(Box::new(writer));
        }
        let cannot = |e: std::io::Error| {
            TaskError::Io(format!(
                "file sink cannot create output directory {}: {e}",
                self.dir.display()
            ))
        };
        std::fs::create_dir_all(&self.dir).map_err(cannot)?;
        Ok(Box::new(FileWriter {
            dir: std::path::absolute(&self.dir).map_err(cannot)?,
            format: self.format.clone(),
            max_part_size: self.max_part_size,
            subtask: ctx.subtask,
            next_part: 0,
            current: None,
            line: String::new(),
            transactional: ctx.checkpointing,
            parts: PendingParts::new(),
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
    /// Whether parts wait for a completed checkpoint before they become visible.
    transactional: bool,
    /// Parts closed and pre-committed (transactional only), by number.
    parts: PendingParts<u64>,
}

fn io_error(action: &str, path: &Path, e: std::io::Error) -> TaskError {
    TaskError::Io(format!("file sink cannot {action} {}: {e}", path.display()))
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

    fn pending_path(&self, subtask: u16, n: u64) -> PathBuf {
        pending_path(&self.dir, subtask, n)
    }

    /// Flushes the current part file, if any, and gives it its final name (or, when
    /// transactional, its pending name).
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
        file.sync_all()
            .map_err(|e| io_error("sync", &in_progress, e))?;
        drop(file);
        let n = self.next_part - 1;
        let target = if self.transactional {
            self.parts.close(n);
            self.pending_path(self.subtask, n)
        } else {
            done
        };
        rename(&in_progress, &target)
    }
}

fn pending_path(dir: &Path, subtask: u16, n: u64) -> PathBuf {
    dir.join(format!(".part-{subtask}-{n}.pending"))
}

/// Makes pending part `n` of `subtask` in `dir` visible (already visible counts as done).
fn publish(dir: &Path, subtask: u16, n: u64) -> Result<(), TaskError> {
    let pending = pending_path(dir, subtask, n);
    let done = dir.join(format!("part-{subtask}-{n}"));
    if pending.exists() {
        rename(&pending, &done)?;
    } else if !done.exists() {
        return Err(TaskError::RestoredState(format!(
            "file sink cannot commit part {}: neither it nor {} exists (was the output directory removed or cleaned?)",
            done.display(),
            pending.display()
        )));
    }
    Ok(())
}

/// The names and paths of the entries of `dir`; a directory that is gone has none.
fn list(dir: &Path) -> Result<Vec<(String, PathBuf)>, TaskError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", dir, e)),
    };
    entries
        .map(|e| {
            let e = e.map_err(|e| io_error("list", dir, e))?;
            Ok((e.file_name().to_string_lossy().into_owned(), e.path()))
        })
        .collect()
}

fn rename(from: &Path, to: &Path) -> Result<(), TaskError> {
    std::fs::rename(from, to).map_err(|e| {
        TaskError::Io(format!(
            "file sink cannot rename {} to {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

/// Returns the part number of a file of `subtask` (`part-s-n`, `.part-s-n.inprogress`,
/// `.part-s-n.pending`).
fn part_number(name: &str, subtask: u16) -> Option<u64> {
    let rest = name.strip_prefix('.').unwrap_or(name);
    let rest = rest.strip_prefix(&format!("part-{subtask}-"))?;
    let digits = rest
        .strip_suffix(".inprogress")
        .or_else(|| rest.strip_suffix(".pending"))
        .unwrap_or(rest);
    digits.parse().ok()
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

    /// Closes the last part: without checkpointing that publishes it; with, the job's
    /// final checkpoint covers it and its completion publishes it.
    fn finish(&mut self) -> Result<(), TaskError> {
        self.close_part()
    }

    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        if !self.transactional {
            return Ok(None);
        }
        self.close_part()?;
        PartsState::Local {
            subtask: self.subtask,
            next_part: self.next_part,
            pending: self.parts.pre_commit(checkpoint),
            dir: self.dir.clone(),
        }
        .encode()
        .map(Some)
    }

    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        for n in self.parts.ready(checkpoint) {
            publish(&self.dir, self.subtask, n)?;
        }
        Ok(())
    }

    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let mut own_next = None;
        for bytes in states {
            let into = self.dir.display().to_string();
            let (subtask, next_part, pending, dir) =
                PartsState::decode(&bytes, &self.dir)?.into_local(&into)?;
            // The parts are where they were written, even if the output directory changed.
            for n in &pending {
                publish(&dir, subtask, *n)?;
            }
            // Parts numbered from the restored counter on were written after the
            // checkpoint: their records are replayed, so they go.
            for (name, path) in list(&dir)? {
                if part_number(&name, subtask).is_some_and(|n| n >= next_part) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error("delete", &path, e)),
                    }
                }
            }
            if subtask == self.subtask && dir == self.dir {
                own_next = Some(next_part);
            }
        }
        // A subtask without state of its own in this directory (a new subtask index, or a
        // new output directory) goes on after the parts its index already has there
        // (committed by an earlier run), so none is overwritten.
        self.next_part = match own_next {
            Some(n) => n,
            None => list(&self.dir)?
                .iter()
                .filter(|(name, _)| !name.starts_with('.'))
                .filter_map(|(name, _)| part_number(name, self.subtask))
                .map(|n| n + 1)
                .max()
                .unwrap_or(0),
        };
        Ok(())
    }
}
