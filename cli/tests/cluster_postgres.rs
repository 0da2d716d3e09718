//! PostgreSQL exactly-once on the standalone cluster: the `sensor_pipeline` example writes
//! its window results into a table (`--postgres-url`, `--output-table`) through five seeded
//! failures and a TaskManager killed with SIGKILL once the job has checkpointed; the table
//! then holds exactly the rows of the failure-free run, and no prepared transaction is
//! left behind. The server is a real one that this test binary starts
//! (`scripts/postgres.sh`).

mod common;
#[path = "../../connectors/tests/pg/mod.rs"]
mod pg;

use common::Cluster;
use pg::server;

/// The job's arguments: window results into `table`, checkpoints every 200 ms.
fn job_args(c: &Cluster, table: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = [
        "--postgres-url",
        &server().url,
        "--output-table",
        table,
        "--parallelism",
        "2",
        "--records",
        "40000",
        "--checkpoint-interval-ms",
        "200",
        "--checkpoint-dir",
        &format!("file://{}", c.path(&format!("{table}-ck")).display()),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

/// Every row of `table`, ordered by its key.
fn rows(table: &str) -> Vec<Vec<String>> {
    server().query(&format!(
        "SELECT sensor_id, window_start_ms, window_end_ms, count, avg_temperature, \
         max_temperature FROM {table} ORDER BY sensor_id, window_start_ms"
    ))
}

#[test]
fn five_seeded_failures_and_a_killed_taskmanager_leave_exactly_the_failure_free_rows() {
    let mut c = Cluster::start(&[]);
    c.add_taskmanager(2);
    c.add_taskmanager(2);
    let job = c.submit(&job_args(&c, "pg_reference", &[]));
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    let want = rows("pg_reference");
    assert!(want.len() > 100, "{} rows", want.len());

    let failing = [
        "--fail-randomly",
        "11:5",
        "--throttle-records-per-sec",
        "2000",
    ];
    let job = c.submit(&job_args(&c, "pg_killed", &failing));
    c.wait_for_checkpoint(&job);
    c.tms[0].kill9();
    c.add_taskmanager(2);
    let end = c.wait_for_end(&job);
    assert_eq!(end["status"], "FINISHED", "{end}\n{}", c.logs());
    assert!(end["restarts"].as_u64().unwrap() >= 2, "{end}");
    let got = rows("pg_killed");
    assert_eq!(got.len(), want.len(), "every window once");
    assert!(got == want, "the rows differ from the failure-free run");
    let left = server().query(
        "SELECT gid FROM pg_prepared_xacts WHERE position('sensor_window_postgres' in gid) > 0",
    );
    assert!(
        left.is_empty(),
        "prepared transactions left behind: {left:?}"
    );
}
