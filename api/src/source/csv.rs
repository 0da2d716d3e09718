//! A bounded source that reads one CSV file into serde rows.
//!
//! Invariants:
//! - The file is read by subtask 0 only ([`SourceFunction::max_parallelism`] is 1; any other
//!   subtask, should the parallelism be raised anyway, finishes at once without reading), so
//!   every row is emitted exactly once, in file order, with [`NO_TIMESTAMP`].
//! - With a header row (the default), columns map to struct fields by header name;
//!   without one, by position.
//! - A malformed row (wrong field count, invalid UTF-8, a field that does not deserialize)
//!   is, under [`BadRecordPolicy::Skip`], counted in the shared skipped counter, logged as a
//!   warning naming file and line, and dropped; under [`BadRecordPolicy::Fail`] it fails the
//!   task with a [`TaskError::User`] naming file, line and cause.
//! - A file that cannot be opened or read fails the task naming the path, whatever the
//!   policy.

use super::{SourceContext, SourceFunction, SourceReader};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use weir_runtime::{Output, SourceStep, TaskError, NO_TIMESTAMP};

/// What a CSV source does with a row it cannot parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BadRecordPolicy {
    /// Count the row, log a warning naming file and line, and go on (the default).
    #[default]
    Skip,
    /// Fail the task (and so the job) with an error naming file, line and cause.
    Fail,
}

/// Reads the rows of one CSV file as records of `T`.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use weir_api::source::{BadRecordPolicy, CsvSource};
/// use weir_api::StreamExecutionEnvironment;
///
/// #[derive(Serialize, Deserialize)]
/// struct Trip { id: u64, km: f64 }
///
/// let env = StreamExecutionEnvironment::new();
/// let source = CsvSource::<Trip>::new("trips.csv").on_bad_record(BadRecordPolicy::Skip);
/// let skipped = source.skipped_counter();
/// let trips = env.read_csv_with(source).collect();
/// env.execute("trips").unwrap();
/// println!("{} trips, {} malformed rows skipped", trips.take().len(),
///          skipped.load(std::sync::atomic::Ordering::Relaxed));
/// ```
pub struct CsvSource<T> {
    path: PathBuf,
    has_headers: bool,
    delimiter: u8,
    policy: BadRecordPolicy,
    skipped: Arc<AtomicU64>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for CsvSource<T> {
    fn clone(&self) -> Self {
        Self {
            path: self.path.clone(),
            has_headers: self.has_headers,
            delimiter: self.delimiter,
            policy: self.policy,
            skipped: self.skipped.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> CsvSource<T> {
    /// Creates a source over the file at `path`: comma-separated, with a header row,
    /// skipping malformed rows.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            has_headers: true,
            delimiter: b',',
            policy: BadRecordPolicy::default(),
            skipped: Arc::new(AtomicU64::new(0)),
            _t: PhantomData,
        }
    }

    /// Sets whether the first row is a header (default true).
    pub fn has_headers(mut self, has_headers: bool) -> Self {
        self.has_headers = has_headers;
        self
    }

    /// Sets the field delimiter (default `b','`).
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets what happens to malformed rows (default [`BadRecordPolicy::Skip`]).
    pub fn on_bad_record(mut self, policy: BadRecordPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Returns the file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns the policy for malformed rows.
    pub fn bad_record_policy(&self) -> BadRecordPolicy {
        self.policy
    }

    /// Returns the counter of skipped malformed rows, shared with every clone of this source
    /// and with the running job; read it during or after `execute`.
    pub fn skipped_counter(&self) -> Arc<AtomicU64> {
        self.skipped.clone()
    }
}

impl<T: DeserializeOwned + Send + 'static> SourceFunction<T> for CsvSource<T> {
    fn create_reader(&self, ctx: &SourceContext) -> Result<Box<dyn SourceReader<T>>, TaskError> {
        if ctx.subtask != 0 {
            return Ok(Box::new(super::text::EmptyReader));
        }
        let path = self.path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(self.has_headers)
            .delimiter(self.delimiter)
            .from_reader(
                File::open(&self.path)
                    .map_err(|e| TaskError::Io(format!("cannot open CSV file {path}: {e}")))?,
            );
        let headers = if self.has_headers {
            let h = reader.headers().map_err(|e| {
                TaskError::Io(format!(
                    "cannot read the header row of CSV file {path}: {e}"
                ))
            })?;
            Some(h.clone())
        } else {
            None
        };
        Ok(Box::new(CsvReader {
            reader,
            headers,
            row: csv::StringRecord::new(),
            path,
            operator: ctx.name.clone(),
            policy: self.policy,
            skipped: self.skipped.clone(),
            done: false,
            _t: PhantomData,
        }))
    }

    fn max_parallelism(&self) -> Option<u16> {
        Some(1)
    }
}

struct CsvReader<T> {
    reader: csv::Reader<File>,
    headers: Option<csv::StringRecord>,
    /// Reused for every row.
    row: csv::StringRecord,
    path: String,
    operator: String,
    policy: BadRecordPolicy,
    skipped: Arc<AtomicU64>,
    /// Restored without the file's split: nothing to read.
    done: bool,
    _t: PhantomData<fn() -> T>,
}

impl<T> CsvReader<T> {
    /// Applies the bad-record policy to a malformed row at `line`.
    fn bad_record(&self, line: u64, error: &dyn std::fmt::Display) -> Result<(), TaskError> {
        match self.policy {
            BadRecordPolicy::Skip => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(file = %self.path, line = line, error = %error, "skipping malformed record");
                Ok(())
            }
            BadRecordPolicy::Fail => Err(TaskError::user(
                self.operator.clone(),
                format!(
                    "malformed record in CSV file {} at line {line}: {error}",
                    self.path
                ),
            )),
        }
    }
}

impl<T: DeserializeOwned> SourceReader<T> for CsvReader<T> {
    fn snapshot_splits(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
    ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
        if self.done {
            return Ok(Some(Vec::new()));
        }
        let p = self.reader.position();
        Ok(Some(vec![super::encode_split(&(
            p.byte(),
            p.line(),
            p.record(),
        ))?]))
    }

    fn restore_splits(&mut self, splits: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let Some(position) = super::single_split(splits, &self.path)? else {
            self.done = true;
            return Ok(());
        };
        let (byte, line, record): (u64, u64, u64) = super::decode_split(&position, &self.path)?;
        let mut p = csv::Position::new();
        p.set_byte(byte).set_line(line).set_record(record);
        self.reader
            .seek(p)
            .map_err(|e| TaskError::Io(format!("cannot seek to byte {byte} of {}: {e}", self.path)))
    }

    fn poll(&mut self, out: &mut dyn Output<T>, max: usize) -> Result<SourceStep, TaskError> {
        if self.done {
            return Ok(SourceStep::Finished);
        }
        for _ in 0..max {
            match self.reader.read_record(&mut self.row) {
                Ok(false) => return Ok(SourceStep::Finished),
                Ok(true) => {
                    let line = self.row.position().map_or(0, |p| p.line());
                    match self.row.deserialize::<T>(self.headers.as_ref()) {
                        Ok(v) => out.emit(v, NO_TIMESTAMP)?,
                        Err(e) => self.bad_record(line, &e)?,
                    }
                }
                Err(e) => {
                    let line = match e.kind() {
                        csv::ErrorKind::Io(_) | csv::ErrorKind::Seek => {
                            return Err(TaskError::Io(format!(
                                "cannot read CSV file {}: {e}",
                                self.path
                            )));
                        }
                        _ => e.position().map_or(0, |p| p.line()),
                    };
                    self.bad_record(line, &e)?;
                }
            }
        }
        Ok(SourceStep::More)
    }
}
