//! A real PostgreSQL server for the tests of one test binary, started through
//! `scripts/postgres.sh` on loopback with its own port and directory, and stopped by the
//! script's watcher when the test process exits (even when a test fails); plus helpers to
//! query it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A server started for this test binary.
pub struct Server {
    /// Its connection URL, `postgres://weir@127.0.0.1:PORT/weir`.
    pub url: String,
    /// Its run directory.
    pub dir: PathBuf,
}

/// Returns this test binary's server, starting it on first use.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| start(&[]).unwrap_or_else(|e| panic!("{e}")))
}

/// Starts another server with the environment `env` for the script.
pub fn start(env: &[(&str, &str)]) -> Result<Server, String> {
    let out = script("start", None)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run scripts/postgres.sh: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "scripts/postgres.sh start failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dir="))
        .ok_or_else(|| format!("no dir= line in:\n{stdout}"))?;
    Ok(Server {
        url: stdout.lines().last().unwrap_or_default().trim().to_string(),
        dir: PathBuf::from(dir),
    })
}

fn script(command: &str, dir: Option<&PathBuf>) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/postgres.sh"
    ))
    .arg(command)
    .args(dir)
    .env("WEIR_PG_OWNER_PID", std::process::id().to_string());
    cmd
}

impl Server {
    /// Runs `scripts/postgres.sh <command>` on this server and checks it succeeded.
    pub fn command(&self, command: &str) {
        let out = script(command, Some(&self.dir))
            .output()
            .expect("run scripts/postgres.sh");
        assert!(
            out.status.success(),
            "scripts/postgres.sh {command} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `sql` (one or more statements) and returns every row they return, as text.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test server");
            tokio::spawn(connection);
            let mut rows = Vec::new();
            for m in client.simple_query(sql).await.expect(sql) {
                match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => rows.push(
                        (0..r.len())
                            .map(|i| r.get(i).unwrap_or("NULL").to_string())
                            .collect(),
                    ),
                    tokio_postgres::SimpleQueryMessage::CommandComplete(_) => {}
                    _ => {}
                }
            }
            rows
        })
    }

    /// The prepared transactions whose global id starts with `prefix`.
    pub fn prepared(&self, prefix: &str) -> Vec<String> {
        self.query(&format!(
            "SELECT gid FROM pg_prepared_xacts WHERE left(gid, {}) = '{prefix}' ORDER BY gid",
            prefix.len()
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
    }
}
