//! A writer's connections: opened, set up and checked before any record.
//!
//! Invariants: the connection URL is shown only as [`redacted`] (rebuilt from the parsed
//! settings, so no password survives whatever its spelling); setup statements run one
//! writer at a time; a failure the server reports about the statement or the table is a
//! configuration error (no restart heals it), while a failure to reach or talk to the
//! server is an I/O error (a restart may).

use super::error::{message, PostgresConnectorError};
use super::sink::{OnRecordError, SinkSettings};
use crate::DeliveryGuarantee;
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::{Client, NoTls, Statement};
use tracing::debug;

/// The advisory lock the writers of every sink take while they run setup statements.
const SETUP_LOCK: i64 = 0x7765_6972_7365_7475;
/// Exactly once, how long a statement waits for a row lock (held by a prepared
/// transaction) before it fails instead of blocking the task.
const LOCK_TIMEOUT: &str = "60s";
/// How soon a connection whose server stopped answering is found dead (TCP keepalive
/// after this much silence, then unacknowledged data for as long).
const DEAD_PEER: Duration = Duration::from_secs(30);

/// The server and database of `url`, for logs and errors: `postgres://USER[:***]@HOST:PORT/DB`
/// rebuilt from the parsed settings, so no password is shown whatever its spelling.
pub fn redacted(url: &str) -> String {
    let Ok(c) = tokio_postgres::Config::from_str(url) else {
        return "an unparsable connection URL".into();
    };
    if has_at_sign(&c) {
        // Part of a password that was taken for the user or host.
        return "postgres://***".into();
    }
    let user = c.get_user().unwrap_or("");
    let password = if c.get_password().is_some() {
        ":***"
    } else {
        ""
    };
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(name) => name.clone(),
                Host::Unix(path) => path.display().to_string(),
            };
            match c.get_ports().get(i).or(c.get_ports().first()) {
                Some(port) => format!("{host}:{port}"),
                None => host,
            }
        })
        .collect();
    format!(
        "postgres://{user}{password}@{}/{}",
        hosts.join(","),
        c.get_dbname().unwrap_or(user)
    )
}

/// Whether the parsed user holds `@`, `/`, `?` or `=`, or a host an `@`: a URL's
/// credentials end at its first `@`, so an unencoded `@` in a password (or in a query
/// parameter) puts part of it into the user or host.
pub(crate) fn has_at_sign(c: &tokio_postgres::Config) -> bool {
    c.get_user()
        .is_some_and(|u| u.contains(['@', '/', '?', '=']))
        || c.get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Tcp(name) if name.contains('@')))
}

/// A writer's runtime, its two connections and its prepared statement.
pub(crate) struct Connections {
    pub(crate) runtime: tokio::runtime::Runtime,
    /// Writes the records.
    pub(crate) client: Client,
    /// Commits and rolls back prepared transactions.
    pub(crate) committer: Client,
    pub(crate) statement: Statement,
    /// Inserts a refused record into the dead-letter table, if the sink has one.
    pub(crate) dead_letter: Option<Statement>,
}

impl Connections {
    /// Connects twice, runs the setup statements, checks what exactly once needs and
    /// prepares the sink's statement.
    pub(crate) fn open<T, R>(
        settings: &SinkSettings<T, R>,
        sink: &str,
        url: &str,
    ) -> Result<Self, PostgresConnectorError> {
        let failed = |what: String, e: &tokio_postgres::Error| classify(sink, url, what, e);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PostgresConnectorError::Connect {
                sink: sink.to_string(),
                url: url.to_string(),
                message: format!("cannot start its runtime: {e}"),
            })?;
        let client = connect(&runtime, settings, sink, url)?;
        let committer = connect(&runtime, settings, sink, url)?;
        for s in &settings.setup {
            // On lines of their own, so a statement ending in a `--` comment cannot
            // swallow the COMMIT.
            let script =
                format!("BEGIN;\nSELECT pg_advisory_xact_lock({SETUP_LOCK});\n{s}\n;\nCOMMIT");
            if let Err(e) = runtime.block_on(client.batch_execute(&script)) {
                let _ = runtime.block_on(client.batch_execute("ROLLBACK"));
                return Err(failed(format!("setup statement `{s}` failed"), &e));
            }
        }
        if settings.guarantee == DeliveryGuarantee::ExactlyOnce {
            check_prepared_transactions(&runtime, &client, sink, url)?;
            runtime
                .block_on(client.batch_execute(&format!("SET lock_timeout = '{LOCK_TIMEOUT}'")))
                .map_err(|e| failed("cannot set lock_timeout".into(), &e))?;
        }
        let statement = runtime
            .block_on(client.prepare(&settings.statement))
            .map_err(|e| {
                failed(
                    format!("cannot prepare the statement `{}`", settings.statement),
                    &e,
                )
            })?;
        let dead_letter = match &settings.on_error {
            OnRecordError::DeadLetter(table) => {
                Some(dead_letter(&runtime, &client, table).map_err(|(what, e)| failed(what, &e))?)
            }
            _ => None,
        };
        Ok(Self {
            runtime,
            client,
            committer,
            statement,
            dead_letter,
        })
    }
}

/// Creates the dead-letter table `table` if missing (under the setup lock) and prepares
/// the insert of a refused record.
fn dead_letter(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    table: &str,
) -> Result<Statement, (String, tokio_postgres::Error)> {
    let create = format!(
        "BEGIN;\nSELECT pg_advisory_xact_lock({SETUP_LOCK});\n\
         CREATE TABLE IF NOT EXISTS {table} (sink text NOT NULL, subtask integer NOT NULL, \
         record text NOT NULL, sqlstate text, error text NOT NULL, \
         refused_at timestamptz NOT NULL DEFAULT now());\nCOMMIT"
    );
    if let Err(e) = runtime.block_on(client.batch_execute(&create)) {
        let _ = runtime.block_on(client.batch_execute("ROLLBACK"));
        return Err((format!("cannot create the dead-letter table {table}"), e));
    }
    let insert = format!(
        "INSERT INTO {table} (sink, subtask, record, sqlstate, error) VALUES ($1, $2, $3, $4, $5)"
    );
    runtime.block_on(client.prepare(&insert)).map_err(|e| {
        (
            format!("cannot prepare the insert into the dead-letter table {table}"),
            e,
        )
    })
}

/// A setup failure: one the server reports about the statement, table or permissions a
/// configuration error; a connection, transaction-rollback, resource, operator or system
/// failure (SQLSTATE classes 08, 40, 53, 55, 57, 58), or none from the server, an I/O error.
fn classify(
    sink: &str,
    url: &str,
    what: String,
    e: &tokio_postgres::Error,
) -> PostgresConnectorError {
    let class = e.code().map(|c| c.code().get(..2).unwrap_or(""));
    if class.is_some_and(|c| !matches!(c, "08" | "40" | "53" | "55" | "57" | "58")) {
        PostgresConnectorError::Setup {
            sink: sink.to_string(),
            url: url.to_string(),
            message: format!("{what}: {}", message(e)),
        }
    } else {
        PostgresConnectorError::Io {
            sink: sink.to_string(),
            url: url.to_string(),
            what,
            message: message(e),
        }
    }
}

/// Connects to the sink's server; the connection is driven on `runtime`. A server that
/// stops answering is found dead by TCP keepalives and the user timeout instead of after
/// hours.
fn connect<T, R>(
    runtime: &tokio::runtime::Runtime,
    settings: &SinkSettings<T, R>,
    sink: &str,
    url: &str,
) -> Result<Client, PostgresConnectorError> {
    let mut config = settings.config.clone();
    if !settings.url.contains("keepalives") {
        config
            .keepalives_idle(DEAD_PEER)
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(DEAD_PEER);
    }
    let (client, connection) =
        runtime
            .block_on(config.connect(NoTls))
            .map_err(|e| PostgresConnectorError::Connect {
                sink: sink.to_string(),
                url: url.to_string(),
                message: message(&e),
            })?;
    let url = url.to_string();
    runtime.spawn(async move {
        if let Err(e) = connection.await {
            debug!(url = %url, error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Exactly once needs `max_prepared_transactions` above 0.
fn check_prepared_transactions(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    sink: &str,
    url: &str,
) -> Result<(), PostgresConnectorError> {
    let row = runtime
        .block_on(client.query_one("SHOW max_prepared_transactions", &[]))
        .map_err(|e| {
            classify(
                sink,
                url,
                "cannot read max_prepared_transactions".into(),
                &e,
            )
        })?;
    let value: String = row.get(0);
    match value.parse::<u32>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(PostgresConnectorError::Setup {
            sink: sink.to_string(),
            url: url.to_string(),
            message: format!(
                "max_prepared_transactions is {value}: exactly-once needs prepared \
                 transactions, one per subtask of every exactly-once sink using the server \
                 and more while checkpoints fail; set it in postgresql.conf with headroom \
                 and restart the server, or choose at-least-once"
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redacted_url_shows_server_user_and_database_but_no_password() {
        for (url, shown) in [
            ("postgres://u:pa/ss@h:5433/db", "postgres://u:***@h:5433/db"),
            (
                "host=h port=6 user=u password='a secret' dbname=d",
                "postgres://u:***@h:6/d",
            ),
            ("host=h user=u password = secret", "postgres://u:***@h/u"),
            (
                "postgres://weir@127.0.0.1:5/weir",
                "postgres://weir@127.0.0.1:5/weir",
            ),
        ] {
            assert_eq!(redacted(url), shown, "{url}");
        }
        assert!(!redacted("postgres://u:pa@@/x").contains("pa"));
        assert!(!redacted("postgres://u:p@ss@h/db").contains("ss"));
        let odd = redacted("postgres://h/db?password=a@b");
        assert!(!odd.contains("password=a") && !odd.contains("a@b"), "{odd}");
    }
}
