//! The servers the job's exactly-once sinks write to, when the run restarts them:
//! PostgreSQL (`scripts/postgres.sh`; the sequence lines) and a Kafka broker
//! (`scripts/kafka.sh`; the window lines), each on loopback or, when the run partitions, in
//! the control plane's namespace, so a partitioned TaskManager loses them as it loses the
//! JobManagers.
//!
//! Invariants: a restart keeps the server's data and address (`pause`, then `resume` after
//! the hold); the servers stop when [`Connectors`] drops, also after their namespace went;
//! what the job committed is read back only after it finished: every row of the table
//! (streamed, never whole in memory), and every record of the topic as a `read_committed`
//! consumer; a prepared transaction still open then was left behind.

use crate::network::Network;
use anyhow::{Context, Result};
use futures::TryStreamExt;
use std::time::Duration;
use weir_bench::chaos_job::{RECORDS_TABLE, WINDOWS_TOPIC};
use weir_bench::kafka_topics::{create_topics, read_committed};
use weir_bench::server_script::{self, ScriptServer};
use weir_connectors::postgres::redacted;

/// How long reading the committed output back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// One server: its guard and address (a connection URL, or Kafka's bootstrap address).
struct Server {
    guard: ScriptServer,
    address: String,
}

impl Server {
    /// Starts `scripts/<script>` in the control plane's namespace if the run has one,
    /// with the environment `env` makes of it (the address to serve on, ...), on loopback
    /// if not.
    fn start(
        net: Option<&Network>,
        script: &str,
        owner_env: &str,
        env: impl Fn(&Network) -> Vec<(&'static str, String)>,
    ) -> Result<Self> {
        let (guard, address) = match net {
            Some(net) => {
                let env = env(net);
                let env: Vec<_> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let prefix = net.exec_prefix("control");
                server_script::start_under(&prefix, &env, script, owner_env)?
            }
            None => server_script::start(script, owner_env)?,
        };
        Ok(Self { guard, address })
    }

    /// Stops the server keeping its data and address, and starts it again after `hold`.
    fn restart(&self, hold: Duration) -> Result<()> {
        self.guard.run("pause")?;
        std::thread::sleep(hold);
        self.guard.run("resume")
    }
}

/// PostgreSQL and Kafka, those of them the run asked for.
#[derive(Default)]
pub struct Connectors {
    postgres: Option<Server>,
    kafka: Option<Server>,
}

impl Connectors {
    /// Starts PostgreSQL if `postgres`, and Kafka (with the windows' topic, two
    /// partitions) if `kafka`.
    pub fn start(net: Option<&Network>, postgres: bool, kafka: bool) -> Result<Self> {
        let mut c = Self::default();
        if postgres {
            // Served on the control plane's address, for the run's whole subnet.
            let env = |n: &Network| {
                vec![
                    ("WEIR_PG_HOST", n.control_address()),
                    ("WEIR_PG_CLIENTS", n.cidr()),
                ]
            };
            c.postgres = Some(Server::start(net, "postgres.sh", "WEIR_PG_OWNER_PID", env)?);
        }
        if kafka {
            if net.is_some() {
                // The namespace has no way out to fetch the broker's jars: fill the cache
                // here first.
                server_script::run("kafka.sh", "fetch")?;
            }
            let env = |n: &Network| vec![("WEIR_KAFKA_HOST", n.control_address())];
            let k = Server::start(net, "kafka.sh", "WEIR_KAFKA_OWNER_PID", env)?;
            create_topics(&k.address, &[(WINDOWS_TOPIC, 2)])?;
            c.kafka = Some(k);
        }
        Ok(c)
    }

    /// The job's arguments that route its output to the servers.
    pub fn job_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(pg) = &self.postgres {
            a.extend(["--postgres".to_string(), pg.address.clone()]);
        }
        if let Some(k) = &self.kafka {
            a.extend(["--kafka".to_string(), k.address.clone()]);
        }
        a
    }

    /// Restarts PostgreSQL (`kafka` false) or the Kafka broker after `hold`; false if the
    /// run has none.
    pub fn restart(&self, kafka: bool, hold: Duration) -> Result<bool> {
        let server = if kafka { &self.kafka } else { &self.postgres };
        let Some(server) = server else {
            return Ok(false);
        };
        server.restart(hold)?;
        Ok(true)
    }

    /// Whether every line of the job goes to a server (none to files).
    pub fn take_all_output(&self) -> bool {
        self.postgres.is_some() && self.kafka.is_some()
    }

    /// Passes every committed line of the servers to `each`: the table's rows, then the
    /// topic's records.
    pub fn committed_lines(&self, mut each: impl FnMut(&str) -> Result<()>) -> Result<()> {
        if let Some(pg) = &self.postgres {
            table_lines(&pg.address, |line| {
                each(line).with_context(|| format!("in PostgreSQL table {RECORDS_TABLE}"))
            })?;
        }
        if let Some(k) = &self.kafka {
            read_committed(&k.address, WINDOWS_TOPIC, READ_TIMEOUT, |payload| {
                let line = std::str::from_utf8(payload)
                    .with_context(|| format!("a record of {WINDOWS_TOPIC} is not UTF-8"))?;
                each(line).with_context(|| format!("in Kafka topic {WINDOWS_TOPIC}"))
            })?;
        }
        Ok(())
    }

    /// The prepared transactions left open in PostgreSQL (none once the job finished: its
    /// final checkpoint committed them all), by name; empty without PostgreSQL.
    pub fn prepared_transactions_left(&self) -> Result<Vec<String>> {
        let Some(pg) = &self.postgres else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        query_lines(&pg.address, "SELECT gid FROM pg_prepared_xacts", |gid| {
            names.push(gid.to_string());
            Ok(())
        })?;
        Ok(names)
    }
}

/// Passes every line in the records table of the database at `url` to `each`.
fn table_lines(url: &str, each: impl FnMut(&str) -> Result<()>) -> Result<()> {
    query_lines(url, &format!("SELECT line FROM {RECORDS_TABLE}"), each)
}

/// Runs `query` (one text column) on the database at `url`, passing each row's value to
/// `each` as it streams in, for at most [`READ_TIMEOUT`].
fn query_lines(url: &str, query: &str, mut each: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let server = redacted(url);
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to {server}"))?;
        let connection = tokio::spawn(connection);
        let read = async {
            let params: [&str; 0] = [];
            let rows = client.query_raw(query, params).await?;
            futures::pin_mut!(rows);
            while let Some(row) = rows.try_next().await? {
                each(row.try_get::<_, &str>(0)?)?;
            }
            anyhow::Ok(())
        };
        tokio::time::timeout(READ_TIMEOUT, read)
            .await
            .with_context(|| format!("timed out running \"{query}\" on {server}"))?
            .with_context(|| format!("cannot run \"{query}\" on {server}"))?;
        drop(client);
        let _ = connection.await;
        Ok(())
    })
}
