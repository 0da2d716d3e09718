//! PostgreSQL: a sink, as Flink's `JdbcSink` (at least once) and its XA sink (exactly once).
//!
//! - [`PostgresSink`] runs one insert or upsert statement per record, its parameters made
//!   from the record by a user function ([`SqlRow`]), batched: a batch goes to the server
//!   in one round trip (pipelined) when it is full, when its interval passed, at every
//!   checkpoint barrier and at the end of input.
//! - At least once (the default), each batch commits on its own and the barrier waits for
//!   it; exactly once, each subtask's writes since the last barrier are one transaction,
//!   prepared at the barrier (`PREPARE TRANSACTION`) and committed when the checkpoint
//!   completes (`COMMIT PREPARED`); see `transactions.rs`.
//! - The connection URL may carry a password: errors and logs name the server by
//!   [`redacted`] URL only.

mod connection;
mod error;
mod row;
mod sink;
mod transactions;
mod writer;

pub use connection::redacted;
pub use error::PostgresConnectorError;
pub use row::SqlRow;
pub use sink::{
    is_table_name, OnRecordError, PostgresSink, RefusedRecord, DEFAULT_BATCH_INTERVAL,
    DEFAULT_BATCH_SIZE,
};
pub use transactions::transaction_prefix;
