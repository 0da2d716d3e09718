//! Why a PostgreSQL sink failed, naming the server (by redacted URL), the table or
//! statement, and the record concerned; never a password.

use thiserror::Error;
use weir_runtime::TaskError;

/// A PostgreSQL connector error.
#[derive(Debug, Error)]
pub enum PostgresConnectorError {
    /// A builder was given an invalid setting.
    #[error("PostgreSQL sink: {0}")]
    Config(String),
    /// The server cannot be reached or refused the connection.
    #[error("PostgreSQL sink '{sink}' cannot connect to {url}: {message}")]
    Connect {
        /// The sink.
        sink: String,
        /// The server, password removed.
        url: String,
        /// Why.
        message: String,
    },
    /// The server cannot run what the sink needs (a missing table, no prepared
    /// transactions, a statement it refuses).
    #[error("PostgreSQL sink '{sink}' at {url}: {message}")]
    Setup {
        /// The sink.
        sink: String,
        /// The server, password removed.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The statement failed for one record.
    #[error(
        "PostgreSQL sink '{sink}' at {url}: the statement failed for record {record}: {message}"
    )]
    Record {
        /// The sink.
        sink: String,
        /// The server, password removed.
        url: String,
        /// The record's parameters.
        record: String,
        /// The server's error.
        message: String,
    },
    /// Talking to the server failed (the connection broke, a commit failed).
    #[error("PostgreSQL sink '{sink}' at {url}: {what}: {message}")]
    Io {
        /// The sink.
        sink: String,
        /// The server, password removed.
        url: String,
        /// What was being done.
        what: String,
        /// The error.
        message: String,
    },
    /// Emitting a refused record to the sink's side output failed downstream.
    #[error("{0}")]
    Downstream(TaskError),
}

impl From<PostgresConnectorError> for TaskError {
    fn from(e: PostgresConnectorError) -> Self {
        match e {
            PostgresConnectorError::Downstream(downstream) => downstream,
            PostgresConnectorError::Config(_) | PostgresConnectorError::Setup { .. } => {
                TaskError::Configuration(e.to_string())
            }
            PostgresConnectorError::Record { ref sink, .. } => TaskError::User {
                operator: sink.clone(),
                message: e.to_string(),
            },
            PostgresConnectorError::Connect { .. } | PostgresConnectorError::Io { .. } => {
                TaskError::Io(e.to_string())
            }
        }
    }
}

/// The message of a server or client error: the server's own text (with its detail and
/// hint) where there is one.
pub(crate) fn message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut m = db.message().to_string();
            if let Some(d) = db.detail() {
                m.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                m.push_str(&format!("; hint: {h}"));
            }
            m
        }
        None => {
            // The client's own errors leave their cause to `source()`.
            let mut m = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                m.push_str(&format!(": {c}"));
                cause = c.source();
            }
            m
        }
    }
}
