//! `PostgresSink`: the builder, and the checks made when the job is built.
//!
//! Checked before anything runs: an exactly-once sink needs checkpointing (its
//! transactions commit when checkpoints complete), and the URL must parse. Checked when
//! each writer starts: the server answers, the statement prepares (so a missing table is
//! named at once), and, for exactly once, `max_prepared_transactions` is above 0.

use super::error::PostgresConnectorError;
use super::row::SqlRow;
use super::writer::PostgresWriter;
use crate::DeliveryGuarantee;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::OutputTag;
use weir_runtime::{JobConfig, TaskError};

/// Records per batch unless set (Flink's `JdbcExecutionOptions` default).
pub const DEFAULT_BATCH_SIZE: usize = 5000;
/// How long a record may wait in a batch unless set.
pub const DEFAULT_BATCH_INTERVAL: Duration = Duration::from_secs(1);

/// What the sink does when its statement fails for one record (the server refuses its
/// values: SQLSTATE classes 22 and 23, or a value that cannot be encoded).
#[derive(Clone, Default)]
pub enum OnRecordError {
    /// Fail the job with an error naming the record (the default); it restarts per its
    /// restart strategy, and fails again if the record fails again.
    #[default]
    Fail,
    /// Leave the record out, logged as a warning with its parameters and the server's
    /// error, and write the rest of its batch.
    Skip,
    /// Route the record to this dead-letter table (created if missing, an identifier
    /// optionally qualified by its schema) with the server's error, and write the rest of
    /// its batch. The dead-letter row is written in the same transaction as the batch, so
    /// it is committed exactly when the batch is: exactly once with an exactly-once sink.
    /// Columns: `sink text, subtask integer, record text, sqlstate text, error text,
    /// refused_at timestamptz`.
    DeadLetter(String),
    /// Emit the record, with the server's error, to this side output of the sink, read with
    /// `add_sink(...).get_side_output(&tag)`, and write the rest of its batch. A refused
    /// record is emitted when its batch is sent, before the barrier of the checkpoint that
    /// commits the batch, so the side output is exactly once with an exactly-once sink;
    /// its timestamp is the processing time it was refused at. Exactly once, the last batch
    /// may be sent with the final checkpoint, after the end of input went downstream: read
    /// the side output without event-time windows, or expect those records late.
    SideOutput(OutputTag<RefusedRecord>),
}

impl std::fmt::Debug for OnRecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fail => f.write_str("Fail"),
            Self::Skip => f.write_str("Skip"),
            Self::DeadLetter(table) => write!(f, "DeadLetter({table:?})"),
            Self::SideOutput(tag) => write!(f, "SideOutput({:?})", tag.id()),
        }
    }
}

/// A record the sink's statement refused, as its side output carries it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefusedRecord {
    /// The sink's name.
    pub sink: String,
    /// The subtask that wrote it.
    pub subtask: u16,
    /// The record's statement parameters, as text.
    pub record: String,
    /// The server's SQLSTATE, if it gave one (none: a value that could not be encoded).
    pub sqlstate: Option<String>,
    /// The server's error.
    pub error: String,
}

/// Whether `table` is a table name that needs no quoting: an identifier (letters, digits
/// and `_`, not starting with a digit, at most 63 bytes), optionally qualified by a schema
/// (`a_b` or `s.a_b`), so it can go into SQL as written.
pub fn is_table_name(table: &str) -> bool {
    let ident = |p: &str| {
        let mut chars = p.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
            && p.len() <= 63
    };
    let parts: Vec<&str> = table.split('.').collect();
    parts.len() <= 2 && parts.iter().all(|p| ident(p))
}

/// The settings every writer of one sink shares.
pub(crate) struct SinkSettings<T, R> {
    pub(crate) url: String,
    pub(crate) config: tokio_postgres::Config,
    pub(crate) statement: String,
    pub(crate) row: Arc<dyn Fn(&T) -> R + Send + Sync>,
    pub(crate) setup: Vec<String>,
    pub(crate) guarantee: DeliveryGuarantee,
    pub(crate) batch_size: usize,
    pub(crate) batch_interval: Duration,
    pub(crate) on_error: OnRecordError,
}

/// Writes records into a PostgreSQL table with one insert or upsert statement.
///
/// ```no_run
/// use weir_connectors::postgres::PostgresSink;
/// use weir_connectors::DeliveryGuarantee;
/// let sink = PostgresSink::new(
///     "postgres://weir@127.0.0.1:5432/weir",
///     "INSERT INTO readings (sensor, value) VALUES ($1, $2) \
///      ON CONFLICT (sensor) DO UPDATE SET value = EXCLUDED.value",
///     |r: &(String, f64)| (r.0.clone(), r.1),
/// )
/// .setup("CREATE TABLE IF NOT EXISTS readings (sensor text PRIMARY KEY, value float8)")
/// .delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
/// # let _ = sink;
/// ```
pub struct PostgresSink<T, R> {
    settings: Arc<SinkSettings<T, R>>,
    invalid: Option<String>,
}

impl<T, R: SqlRow> PostgresSink<T, R> {
    /// A sink running `statement` (with parameters `$1, $2, …`) for every record, on the
    /// server and database of the connection URL `url`
    /// (`postgres://USER[:PASSWORD]@HOST:PORT/DB`, or PostgreSQL's `key=value` form), with
    /// the parameters `row` makes from the record.
    pub fn new(url: &str, statement: &str, row: impl Fn(&T) -> R + Send + Sync + 'static) -> Self {
        let (config, invalid) = match tokio_postgres::Config::from_str(url) {
            Ok(c) if super::connection::has_at_sign(&c) => (
                tokio_postgres::Config::new(),
                Some(
                    "the connection URL's user or host holds an `@`: percent-encode an `@` in \
                     the user or password as %40"
                        .to_string(),
                ),
            ),
            Ok(mut c) => {
                if c.get_connect_timeout().is_none() {
                    c.connect_timeout(Duration::from_secs(10));
                }
                (c, None)
            }
            Err(e) => (
                tokio_postgres::Config::new(),
                Some(format!("invalid connection URL: {e}")),
            ),
        };
        Self {
            settings: Arc::new(SinkSettings {
                url: url.to_string(),
                config,
                statement: statement.to_string(),
                row: Arc::new(row),
                setup: Vec::new(),
                guarantee: DeliveryGuarantee::default(),
                batch_size: DEFAULT_BATCH_SIZE,
                batch_interval: DEFAULT_BATCH_INTERVAL,
                on_error: OnRecordError::default(),
            }),
            invalid,
        }
    }

    /// Runs `statement` once when each writer starts, before any record (such as
    /// `CREATE TABLE IF NOT EXISTS …`); the writers of one sink run it one at a time.
    pub fn setup(mut self, statement: &str) -> Self {
        self.settings_mut().setup.push(statement.to_string());
        self
    }

    /// At least once (the default), exactly once, or none (batches are not flushed at
    /// checkpoint barriers).
    pub fn delivery_guarantee(mut self, guarantee: DeliveryGuarantee) -> Self {
        self.settings_mut().guarantee = guarantee;
        self
    }

    /// Records per batch (default [`DEFAULT_BATCH_SIZE`]); at least 1.
    pub fn batch_size(mut self, records: usize) -> Self {
        if records == 0 {
            self.invalid = Some("batch size must be at least 1".into());
        }
        self.settings_mut().batch_size = records.max(1);
        self
    }

    /// How long a record may wait in a batch (default [`DEFAULT_BATCH_INTERVAL`]; checked
    /// at every buffer timeout); zero sends batches only when full, at barriers and at the
    /// end, as Flink's `batchIntervalMs` of 0.
    pub fn batch_interval(mut self, interval: Duration) -> Self {
        self.settings_mut().batch_interval = interval;
        self
    }

    /// What to do when the statement fails for one record (default: fail the job).
    pub fn on_record_error(mut self, policy: OnRecordError) -> Self {
        if let OnRecordError::DeadLetter(table) = &policy {
            if !is_table_name(table) {
                self.invalid = Some(format!(
                    "dead-letter table `{table}` is not a table name (letters, digits and `_`, \
                     optionally `schema.table`)"
                ));
            }
        }
        self.settings_mut().on_error = policy;
        self
    }
}

impl<T: 'static, R: SqlRow> SinkFunction<T> for PostgresSink<T, R> {
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        Ok(Box::new(PostgresWriter::open(self.settings.clone(), ctx)?))
    }

    fn check(&self, name: &str, job: &JobConfig) -> Result<(), TaskError> {
        if let Some(problem) = &self.invalid {
            return Err(PostgresConnectorError::Config(format!("'{name}': {problem}")).into());
        }
        if self.settings.guarantee == DeliveryGuarantee::ExactlyOnce && job.checkpointing.is_none()
        {
            return Err(PostgresConnectorError::Config(format!(
                "'{name}' is exactly-once, which needs checkpointing: its transactions commit \
                 when checkpoints complete (enable checkpointing, or choose at-least-once)"
            ))
            .into());
        }
        Ok(())
    }
}

impl<T, R> PostgresSink<T, R> {
    /// The settings, while the builder still holds them alone (writers share them only
    /// once the job runs).
    fn settings_mut(&mut self) -> &mut SinkSettings<T, R> {
        Arc::get_mut(&mut self.settings).expect("only the builder holds the settings")
    }
}

#[cfg(test)]
mod tests {
    use super::is_table_name;

    #[test]
    fn a_table_name_is_an_identifier_optionally_qualified_by_a_schema() {
        for ok in ["refused", "_t1", "public.refused_rows"] {
            assert!(is_table_name(ok), "{ok}");
        }
        for bad in ["", "1t", "a.b.c", "a;b", "a b", "\"quoted\"", "a.", ".a"] {
            assert!(!is_table_name(bad), "{bad}");
        }
    }
}
