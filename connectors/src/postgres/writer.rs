//! One subtask's writer: a connection for records, batched and pipelined, and a second one
//! for committing and rolling back prepared transactions (which PostgreSQL refuses inside
//! the transaction the first one has open).
//!
//! Both connections live on this writer's own single-threaded tokio runtime, driven only
//! while the task thread waits on it, so no thread is added per subtask.
//!
//! Invariants: records reach the server only in batches; at least once, a batch is one
//! transaction committed before the barrier passes; exactly once, everything since the
//! last barrier is one transaction, prepared at the barrier, and batches are held back
//! while an earlier prepared transaction (whose row locks a new statement could wait on)
//! is not committed yet; a record whose statement fails is named (or skipped and logged)
//! and the rest of its batch is kept.

use super::connection::{redacted, Connections};
use super::error::{message, PostgresConnectorError};
use super::row::SqlRow;
use super::sink::{OnRecordError, RefusedRecord, SinkSettings};
use super::transactions::{gid, literal, parse_gid, transaction_prefix, PreparedState};
use crate::DeliveryGuarantee;
use std::sync::Arc;
use std::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};
use tracing::{debug, info, warn};
use weir_api::sink::{SinkContext, SinkSideOutputs, SinkWriter};
use weir_runtime::{CheckpointId, TaskError, Timestamp};

/// Exactly once, how many batches may wait in memory for the commit of the previous
/// checkpoint before one is sent anyway.
const HELD_BATCHES: usize = 4;

/// Whether `e` means the connection failed (no answer from the server for the statement).
fn is_connection_error(e: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    e.code().is_none()
        && (e.is_closed()
            || (e.source().is_some_and(|s| s.is::<std::io::Error>())
                // A value too large to send fails encoding with an I/O error too.
                && !e.to_string().starts_with("error serializing")))
}

/// Whether `e` is about the record itself, so that skipping it is right: the server
/// refused its values (SQLSTATE classes 22, data exception, and 23, integrity constraint
/// violation), or a value could not be encoded. Not a lock or statement timeout, a
/// deadlock, a full disk or a lost connection: those would drop a good record.
fn is_record_error(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        Some(code) => matches!(code.code().get(..2), Some("22" | "23")),
        None => !is_connection_error(e),
    }
}

/// Why a batch failed.
enum BatchError {
    /// The statement failed for the row at this index.
    Row(usize, tokio_postgres::Error),
    /// The connection failed.
    Connection(tokio_postgres::Error),
}

/// Writes one subtask's records.
pub(crate) struct PostgresWriter<T, R> {
    settings: Arc<SinkSettings<T, R>>,
    sink: String,
    url: String,
    subtask: u16,
    prefix: String,
    runtime: tokio::runtime::Runtime,
    client: Client,
    committer: Client,
    statement: Statement,
    /// Inserts a refused record into the dead-letter table, if the sink has one.
    dead_letter: Option<Statement>,
    /// Where refused records go with [`OnRecordError::SideOutput`].
    side_outputs: SinkSideOutputs,
    batch: Vec<R>,
    oldest: Option<Instant>,
    /// A transaction is open on `client`.
    open: bool,
    /// Prepared and not yet committed: (checkpoint, global id, transaction id).
    prepared: Vec<(u64, String, i64)>,
}

impl<T, R: SqlRow> PostgresWriter<T, R> {
    /// Connects, runs the setup statements, checks the server and prepares the statement.
    pub(crate) fn open(
        settings: Arc<SinkSettings<T, R>>,
        ctx: &SinkContext,
    ) -> Result<Self, PostgresConnectorError> {
        let url = redacted(&settings.url);
        let sink = ctx.name.clone();
        let Connections {
            runtime,
            client,
            committer,
            statement,
            dead_letter,
        } = Connections::open(&settings, &sink, &url)?;
        info!(sink = %sink, subtask = ctx.subtask, url = %url, guarantee = ?settings.guarantee, "PostgreSQL sink connected");
        Ok(Self {
            prefix: transaction_prefix(ctx.job, &ctx.uid),
            subtask: ctx.subtask,
            batch: Vec::with_capacity(settings.batch_size.min(1 << 16)),
            settings,
            sink,
            url,
            runtime,
            client,
            committer,
            statement,
            dead_letter,
            side_outputs: ctx.side_outputs.clone(),
            oldest: None,
            open: false,
            prepared: Vec::new(),
        })
    }

    fn io(&self, what: &str, e: &tokio_postgres::Error) -> PostgresConnectorError {
        PostgresConnectorError::Io {
            sink: self.sink.clone(),
            url: self.url.clone(),
            what: what.to_string(),
            message: message(e),
        }
    }

    /// Runs `sql` (no parameters) on `client` or, with `committer`, on the second connection.
    fn run(&self, sql: &str, committer: bool) -> Result<(), tokio_postgres::Error> {
        let client = if committer {
            &self.committer
        } else {
            &self.client
        };
        self.runtime.block_on(client.batch_execute(sql))
    }

    /// Sends the batch: one round trip for all its rows; at least once, commits it.
    fn send_batch(&mut self) -> Result<(), PostgresConnectorError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.batch);
        self.oldest = None;
        if !self.open {
            self.run("BEGIN", false).map_err(|e| self.io("BEGIN", &e))?;
            self.open = true;
        }
        let skip = !matches!(self.settings.on_error, OnRecordError::Fail);
        if skip {
            self.run("SAVEPOINT weir_batch", false)
                .map_err(|e| self.io("SAVEPOINT", &e))?;
        }
        match self.execute(&rows) {
            Ok(()) => {}
            Err(BatchError::Connection(e)) => return Err(self.io("sending a batch", &e)),
            Err(BatchError::Row(i, e)) if !skip => {
                let mut message = message(&e);
                if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                    message.push_str(
                        " (exactly-once: its row is locked by the transaction prepared for an \
                         earlier checkpoint, which commits only when that checkpoint completes)",
                    );
                }
                return Err(PostgresConnectorError::Record {
                    sink: self.sink.clone(),
                    url: self.url.clone(),
                    record: format!("{:?}", rows[i]),
                    message,
                });
            }
            Err(BatchError::Row(..)) => self.one_by_one(&rows)?,
        }
        if skip {
            self.run("RELEASE SAVEPOINT weir_batch", false)
                .map_err(|e| self.io("RELEASE SAVEPOINT", &e))?;
        }
        if self.settings.guarantee != DeliveryGuarantee::ExactlyOnce {
            self.run("COMMIT", false)
                .map_err(|e| self.io("committing a batch", &e))?;
            self.open = false;
        }
        self.batch = rows;
        self.batch.clear();
        Ok(())
    }

    /// Whether a full or due batch may go out now. Exactly once, while a prepared
    /// transaction waits for its checkpoint to complete, batches stay in memory (up to
    /// [`HELD_BATCHES`]): a row it wrote stays locked until then, and a statement on that row
    /// would block the task that must commit it.
    fn may_send(&self) -> bool {
        self.settings.guarantee != DeliveryGuarantee::ExactlyOnce
            || self.prepared.is_empty()
            || self.batch.len() >= HELD_BATCHES * self.settings.batch_size
    }

    /// Executes the statement for every row, pipelined.
    fn execute(&self, rows: &[R]) -> Result<(), BatchError> {
        let (client, statement) = (&self.client, &self.statement);
        let results = self.runtime.block_on(async {
            let params: Vec<_> = rows.iter().map(SqlRow::params).collect();
            futures::future::join_all(params.iter().map(|p| client.execute(statement, p))).await
        });
        let mut first = None;
        for (i, r) in results.into_iter().enumerate() {
            let Err(e) = r else { continue };
            match e.code() {
                // Only a consequence of the failure before it.
                Some(code) if *code == SqlState::IN_FAILED_SQL_TRANSACTION => {}
                _ if is_connection_error(&e) => return Err(BatchError::Connection(e)),
                // The server refused the row, or a value could not be encoded.
                _ => return Err(BatchError::Row(i, e)),
            }
            first.get_or_insert(BatchError::Row(i, e));
        }
        first.map_or(Ok(()), Err)
    }

    /// After a failed batch: executes the rows one at a time, each behind a savepoint, and
    /// leaves out those that fail, logged or routed to the dead-letter table.
    fn one_by_one(&self, rows: &[R]) -> Result<(), PostgresConnectorError> {
        self.run("ROLLBACK TO SAVEPOINT weir_batch", false)
            .map_err(|e| self.io("ROLLBACK TO SAVEPOINT", &e))?;
        for row in rows {
            self.run("SAVEPOINT weir_row", false)
                .map_err(|e| self.io("SAVEPOINT", &e))?;
            let params = row.params();
            match self
                .runtime
                .block_on(self.client.execute(&self.statement, &params))
            {
                Ok(_) => self.run("RELEASE SAVEPOINT weir_row", false),
                Err(e) if is_record_error(&e) => {
                    self.run("ROLLBACK TO SAVEPOINT weir_row", false)
                        .map_err(|e| self.io("ROLLBACK TO SAVEPOINT", &e))?;
                    self.refused(row, &e)?;
                    continue;
                }
                Err(e) => Err(e),
            }
            .map_err(|e| self.io("writing a record", &e))?;
        }
        Ok(())
    }

    /// Routes `row`, which the statement failed for with `e`, to the dead-letter table or
    /// the side output, or logs it as left out.
    fn refused(&self, row: &R, e: &tokio_postgres::Error) -> Result<(), PostgresConnectorError> {
        let record = format!("{row:?}");
        let sqlstate = e.code().map(|c| c.code().to_string());
        let error = message(e);
        match (&self.settings.on_error, &self.dead_letter) {
            (OnRecordError::SideOutput(tag), _) => {
                let refused = RefusedRecord {
                    sink: self.sink.clone(),
                    subtask: self.subtask,
                    record,
                    sqlstate,
                    error,
                };
                self.side_outputs
                    .emit(tag, refused, weir_runtime::now_ms())
                    .map_err(PostgresConnectorError::Downstream)
            }
            (_, Some(insert)) => {
                debug!(sink = %self.sink, subtask = self.subtask, record = %record, error = %error, "record routed to the dead-letter table");
                let subtask = i32::from(self.subtask);
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                    [&self.sink, &subtask, &record, &sqlstate, &error];
                self.runtime
                    .block_on(self.client.execute(insert, &params))
                    .map(|_| ())
                    .map_err(|e| self.io("writing to the dead-letter table", &e))
            }
            _ => {
                warn!(sink = %self.sink, subtask = self.subtask, record = %record, error = %error, "record left out: the statement failed for it");
                Ok(())
            }
        }
    }

    /// Commits the prepared transactions of checkpoints up to `checkpoint`.
    fn commit_prepared(&mut self, checkpoint: u64) -> Result<(), PostgresConnectorError> {
        while let Some((_, gid, xid)) = self.prepared.first().filter(|(c, ..)| *c <= checkpoint) {
            match self.run(&format!("COMMIT PREPARED {}", literal(gid)), true) {
                Ok(()) => debug!(sink = %self.sink, gid = %gid, "committed"),
                // Finished by someone else: fine if committed (a restore of this job, or a
                // job started from its savepoint, committed it), not if rolled back.
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_OBJECT) => {
                    self.check_committed(gid, *xid)?
                }
                Err(e) => return Err(self.io(&format!("COMMIT PREPARED {gid}"), &e)),
            }
            self.prepared.remove(0);
        }
        Ok(())
    }

    /// Fails unless the transaction `xid` (prepared as `gid`) committed: one rolled back by
    /// a restore (of this job, this attempt being an older one still alive, or of a job
    /// started from its savepoint) lost its records for this run, which must then fail and
    /// restore to write them again.
    fn check_committed(&self, gid: &str, xid: i64) -> Result<(), PostgresConnectorError> {
        let status: Option<String> = self
            .runtime
            .block_on(self.committer.query_one("SELECT txid_status($1)", &[&xid]))
            .map_err(|e| self.io("reading a transaction's status", &e))?
            .get(0);
        if status.as_deref() == Some("committed") {
            return Ok(());
        }
        Err(PostgresConnectorError::Io {
            sink: self.sink.clone(),
            url: self.url.clone(),
            what: format!("COMMIT PREPARED {gid}"),
            message: format!(
                "the transaction was {} by another attempt's or job's recovery; this run \
                 restores and writes its records again",
                status.as_deref().unwrap_or("forgotten")
            ),
        })
    }

    /// Commits what `state` lists and rolls back its old subtask's later transactions.
    fn recover_state(&self, state: &PreparedState) -> Result<(), PostgresConnectorError> {
        let found = self
            .runtime
            .block_on(self.committer.query(
                "SELECT gid FROM pg_prepared_xacts \
                 WHERE database = current_database() AND left(gid, length($1)) = $1",
                &[&state.prefix],
            ))
            .map_err(|e| self.io("listing prepared transactions", &e))?;
        for row in found {
            let g: String = row.get(0);
            let Some((subtask, checkpoint)) = parse_gid(&state.prefix, &g) else {
                continue;
            };
            if subtask != state.subtask {
                continue;
            }
            let sql = if state.gids.contains(&g) {
                format!("COMMIT PREPARED {}", literal(&g))
            } else if state.prefix == self.prefix || checkpoint > state.checkpoint {
                // Not listed: no completed checkpoint this run restores covers it (a later
                // checkpoint's, or one an older attempt still alive prepared after this state
                // was taken). Another job's earlier ones are left to it; its later ones hold
                // locks nobody would release: rolled back, and that job, should it still
                // run, finds out when it tries to commit them, fails and writes them again.
                format!("ROLLBACK PREPARED {}", literal(&g))
            } else {
                continue;
            };
            match self.run(&sql, true) {
                Ok(()) => info!(sink = %self.sink, statement = %sql, "recovered"),
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_OBJECT) => {}
                Err(e) => return Err(self.io(&sql, &e)),
            }
        }
        Ok(())
    }
}

impl<T, R: SqlRow> SinkWriter<T> for PostgresWriter<T, R> {
    fn write(&mut self, value: T, _timestamp: Timestamp) -> Result<(), TaskError> {
        self.batch.push((self.settings.row)(&value));
        self.oldest.get_or_insert_with(Instant::now);
        if self.batch.len() >= self.settings.batch_size && self.may_send() {
            self.send_batch()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TaskError> {
        let interval = self.settings.batch_interval;
        if !interval.is_zero()
            && self.oldest.is_some_and(|t| t.elapsed() >= interval)
            && self.may_send()
        {
            self.send_batch()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), TaskError> {
        // Exactly once, the final checkpoint prepares and commits what this sends (or, if a
        // prepared transaction is still waiting for its commit, what its barrier sends).
        if self.may_send() {
            self.send_batch()?;
        }
        Ok(())
    }

    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        match self.settings.guarantee {
            DeliveryGuarantee::None => Ok(None),
            DeliveryGuarantee::AtLeastOnce => {
                self.send_batch()?;
                Ok(None)
            }
            DeliveryGuarantee::ExactlyOnce => {
                self.send_batch()?;

                if self.open {
                    let g = gid(&self.prefix, self.subtask, checkpoint);
                    let xid: i64 = self
                        .runtime
                        .block_on(self.client.query_one("SELECT txid_current()", &[]))
                        .map_err(|e| self.io("reading the transaction id", &e))?
                        .get(0);
                    self.run(&format!("PREPARE TRANSACTION {}", literal(&g)), false)
                        .map_err(|e| self.io(&format!("PREPARE TRANSACTION {g}"), &e))?;
                    self.open = false;
                    self.prepared.push((checkpoint, g, xid));
                }
                let state = PreparedState {
                    prefix: self.prefix.clone(),
                    subtask: self.subtask,
                    checkpoint,
                    gids: self.prepared.iter().map(|(_, g, _)| g.clone()).collect(),
                };
                Ok(Some(weir_api::source::encode_split(&state)?))
            }
        }
    }

    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        self.commit_prepared(checkpoint)?;
        if self.batch.len() >= self.settings.batch_size && self.may_send() {
            self.send_batch()?;
        }
        Ok(())
    }

    fn start_without_state(&mut self) -> Result<(), TaskError> {
        if self.settings.guarantee != DeliveryGuarantee::ExactlyOnce {
            return Ok(());
        }
        // Everything this subtask prepared in an earlier attempt: no checkpoint completed.
        Ok(self.recover_state(&PreparedState {
            prefix: self.prefix.clone(),
            subtask: self.subtask,
            checkpoint: 0,
            gids: Vec::new(),
        })?)
    }

    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let mut own = false;
        for bytes in states {
            let state: PreparedState = weir_api::source::decode_split(
                &bytes,
                &format!("PostgreSQL sink '{}'", self.sink),
            )?;
            own |= state.prefix == self.prefix;
            self.recover_state(&state)?;
        }
        if !own {
            // Restored from another job's savepoint, or given no state at a new
            // parallelism: what this job's subtask prepared before is covered by nothing.
            self.start_without_state()?;
        }
        Ok(())
    }
}
