//! The PostgreSQL sink against a real server (Debian's PostgreSQL, started by
//! `scripts/postgres.sh`): exactly-once rows through injected failures and a server
//! restart, with no prepared transaction left behind; a completed checkpoint whose commit
//! was lost committed on restore, later ones rolled back; at-least-once upserts; a record
//! the statement refuses failing the job by name, left out, or routed exactly once to a
//! dead-letter table or to the sink's side output; a missing table, a server
//! without prepared transactions, an unreachable server (its password never shown) and
//! exactly-once without checkpointing refused with clear errors.

#![cfg(feature = "postgres")]

mod pg;

use pg::server;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir_api::sink::{SinkContext, SinkFunction};
use weir_api::OutputTag;
use weir_api::{GeneratorSource, StreamExecutionEnvironment};
use weir_connectors::postgres::{transaction_prefix, OnRecordError, PostgresSink, RefusedRecord};
use weir_connectors::DeliveryGuarantee;
use weir_runtime::JobId;

type Row = (i64, String);

fn insert(table: &str) -> PostgresSink<u64, Row> {
    PostgresSink::new(
        &server().url,
        &format!("INSERT INTO {table} (id, v) VALUES ($1, $2)"),
        |id: &u64| (*id as i64, format!("r-{id}")),
    )
    .setup(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (id bigint NOT NULL, v text NOT NULL CHECK (v <> 'r-13'))"
    ))
    .batch_size(64)
}

fn checkpointed_env(dir: &std::path::Path, attempts: u32) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(
        Duration::from_millis(50),
        &format!("file://{}", dir.display()),
    );
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts,
            delay: Duration::from_millis(50),
        })
    });
    env
}

/// `(rows, distinct ids, smallest id, largest id)` of `table`.
fn summary(table: &str) -> Vec<String> {
    server()
        .query(&format!(
            "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM {table}"
        ))
        .remove(0)
}

/// Prepared transactions of the sink whose uid is `uid` in any job.
fn prepared_of(uid: &str) -> Vec<String> {
    let marker = transaction_prefix(JobId(0), uid);
    let operator = marker.trim_start_matches("weir-0000000000000000");
    server()
        .query(&format!(
            "SELECT gid FROM pg_prepared_xacts WHERE position('{operator}' in gid) > 0"
        ))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// A generated stream of ids `0..n` that fails once at each id of `at` (a bit of
/// `failed` per id, kept over every attempt, so each fails once), throttled so checkpoints
/// complete between the failures.
fn ids_failing_at(
    env: &StreamExecutionEnvironment,
    n: u64,
    at: &'static [u64],
    failed: &'static AtomicUsize,
) -> weir_api::DataStream<u64> {
    env.from_generator(GeneratorSource::new(Some(n), |i| i).with_rate_limit(20_000))
        .map(move |id: u64| {
            if let Some(k) = at.iter().position(|a| *a == id) {
                if failed.fetch_or(1 << k, Ordering::SeqCst) & (1 << k) == 0 {
                    panic!("injected failure {k} at id {id}");
                }
            }
            id
        })
}

#[test]
fn exactly_once_rows_equal_the_input_through_five_failures_and_none_stays_prepared() {
    static FAILED: AtomicUsize = AtomicUsize::new(0);
    const AT: &[u64] = &[700, 1900, 2600, 3800, 5100];
    let dir = tempfile::tempdir().unwrap();
    let env = checkpointed_env(dir.path(), 10);
    ids_failing_at(&env, 6_000, AT, &FAILED)
        .filter(|id| *id != 13)
        .add_sink(insert("eo_rows").delivery_guarantee(DeliveryGuarantee::ExactlyOnce))
        .uid("pg-eo");
    env.execute("postgres-exactly-once").unwrap();
    let all = (1 << AT.len()) - 1;
    assert_eq!(
        FAILED.load(Ordering::SeqCst),
        all,
        "every failure was injected"
    );
    assert_eq!(summary("eo_rows"), ["5999", "5999", "0", "5999"]);
    assert!(
        prepared_of("pg-eo").is_empty(),
        "{:?}",
        prepared_of("pg-eo")
    );
}

#[test]
fn exactly_once_rows_survive_a_server_restart_in_the_middle_of_the_job() {
    static SEEN: AtomicUsize = AtomicUsize::new(0);
    let dir = tempfile::tempdir().unwrap();
    let env = checkpointed_env(dir.path(), 10);
    // A server of its own, restarted (immediate shutdown, as a crash) once half-way.
    let own = Arc::new(pg::start(&[]).unwrap());
    let restart = own.clone();
    env.from_generator(GeneratorSource::new(Some(4_000), |i| i).with_rate_limit(10_000))
        .map(move |id: u64| {
            if id == 2_000 && SEEN.fetch_add(1, Ordering::SeqCst) == 0 {
                restart.command("pause");
                restart.command("resume");
            }
            id
        })
        .filter(|id| *id != 13)
        .add_sink(
            PostgresSink::new(
                &own.url,
                "INSERT INTO restarted (id) VALUES ($1)",
                |id: &u64| (*id as i64,),
            )
            .setup("CREATE TABLE IF NOT EXISTS restarted (id bigint NOT NULL)")
            .delivery_guarantee(DeliveryGuarantee::ExactlyOnce),
        )
        .uid("pg-restart");
    let result = env.execute("postgres-restart").unwrap();
    assert!(
        !result.restored_from.is_empty(),
        "the server's restart failed the job over"
    );
    let rows = own.query("SELECT count(*), count(DISTINCT id) FROM restarted");
    assert_eq!(rows[0], ["3999", "3999"]);
    assert!(own.query("SELECT gid FROM pg_prepared_xacts").is_empty());
    own.command("stop");
}

fn ctx(subtask: u16, uid: &str) -> SinkContext {
    job_ctx(JobId(0x5eed), subtask, uid)
}

fn job_ctx(job: JobId, subtask: u16, uid: &str) -> SinkContext {
    SinkContext {
        name: "pg out".into(),
        subtask,
        parallelism: 1,
        checkpointing: true,
        job,
        uid: uid.into(),
        side_outputs: Default::default(),
    }
}

/// Why `sink` refuses to start a writer (uid `uid`).
fn refusal<R: weir_connectors::postgres::SqlRow>(sink: &PostgresSink<u64, R>, uid: &str) -> String {
    match sink.create_writer(&ctx(0, uid)) {
        Ok(_) => panic!("the writer started"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_completed_checkpoint_whose_commit_was_lost_commits_on_restore_and_later_ones_roll_back() {
    let sink = insert("lost_commit").delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
    let mut w = sink.create_writer(&ctx(0, "lost")).unwrap();
    for id in 0..10 {
        w.write(id, 0).unwrap();
    }
    let state = w.pre_commit(1).unwrap().expect("exactly-once state");
    for id in 10..12 {
        w.write(id, 0).unwrap();
    }
    // Checkpoint 2 is prepared but never completes; the writer dies before any commit.
    w.pre_commit(2).unwrap();
    drop(w);
    let prefix = transaction_prefix(JobId(0x5eed), "lost");
    assert_eq!(
        server().prepared(&prefix),
        [format!("{prefix}0-1"), format!("{prefix}0-2")]
    );
    assert_eq!(
        summary("lost_commit")[0],
        "0",
        "nothing visible before the commit"
    );
    // Restored from checkpoint 1: its rows commit, checkpoint 2's roll back.
    let mut restored = sink.create_writer(&ctx(0, "lost")).unwrap();
    restored.recover(vec![state.clone()]).unwrap();
    assert_eq!(summary("lost_commit"), ["10", "10", "0", "9"]);
    assert!(server().prepared(&prefix).is_empty());
    // Restoring the same checkpoint again commits nothing twice.
    let mut again = sink.create_writer(&ctx(0, "lost")).unwrap();
    again.recover(vec![state]).unwrap();
    assert_eq!(summary("lost_commit")[0], "10");
}

#[test]
fn an_older_attempt_still_alive_cannot_leave_a_transaction_the_restore_does_not_list() {
    let sink = insert("zombie").delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
    let mut current = sink.create_writer(&ctx(0, "zombie")).unwrap();
    let mut zombie = sink.create_writer(&ctx(0, "zombie")).unwrap();
    current.write(1, 0).unwrap();
    let state = current.pre_commit(4).unwrap().unwrap();
    // An attempt that should be gone prepares checkpoint 3's records after checkpoint 4.
    zombie.write(666, 0).unwrap();
    zombie.pre_commit(3).unwrap();
    drop((current, zombie));
    let mut restored = sink.create_writer(&ctx(0, "zombie")).unwrap();
    restored.recover(vec![state]).unwrap();
    assert!(server()
        .prepared(&transaction_prefix(JobId(0x5eed), "zombie"))
        .is_empty());
    assert_eq!(summary("zombie"), ["1", "1", "1", "1"]);
}

#[test]
fn a_job_started_from_a_savepoint_cleans_up_both_jobs_and_the_old_one_fails_loudly() {
    let sink = insert("forked").delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
    let (old, new) = (JobId(0x01d), JobId(0x2e3));
    let mut running = sink.create_writer(&job_ctx(old, 0, "fork")).unwrap();
    running.write(1, 0).unwrap();
    let savepoint = running.pre_commit(1).unwrap().unwrap();
    running.commit(1).unwrap();
    // The old job goes on and prepares checkpoint 2 while a new job starts from the
    // savepoint, whose earlier attempt prepared its own checkpoint 5 and died.
    running.write(2, 0).unwrap();
    running.pre_commit(2).unwrap();
    let mut earlier = sink.create_writer(&job_ctx(new, 0, "fork")).unwrap();
    earlier.write(50, 0).unwrap();
    earlier.pre_commit(5).unwrap();
    drop(earlier);
    let mut forked = sink.create_writer(&job_ctx(new, 0, "fork")).unwrap();
    forked.recover(vec![savepoint]).unwrap();
    // Nothing stays prepared: the new job's own leftovers and the old job's later
    // transaction (whose locks nobody would otherwise release) are rolled back.
    assert!(server()
        .prepared(&transaction_prefix(new, "fork"))
        .is_empty());
    assert!(server()
        .prepared(&transaction_prefix(old, "fork"))
        .is_empty());
    // The old job, still running, finds out at its commit instead of losing the records.
    let err = running.commit(2).unwrap_err().to_string();
    assert!(
        err.contains("aborted by another attempt's or job's recovery"),
        "{err}"
    );
    assert_eq!(summary("forked"), ["1", "1", "1", "1"]);
}

#[test]
fn a_setup_statement_ending_in_a_comment_does_not_hold_its_lock() {
    let sink = insert("commented").setup("SELECT 1 -- the table is made above");
    for subtask in 0..2 {
        let mut w = sink.create_writer(&ctx(subtask, "commented")).unwrap();
        w.write(u64::from(subtask), 0).unwrap();
        w.finish().unwrap();
    }
    assert_eq!(summary("commented")[0], "2");
}

#[test]
fn a_restart_before_any_checkpoint_completed_rolls_back_what_the_earlier_attempt_prepared() {
    let sink = insert("no_checkpoint").delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
    let mut w = sink.create_writer(&ctx(1, "fresh")).unwrap();
    for id in 0..5 {
        w.write(id, 0).unwrap();
    }
    w.pre_commit(1).unwrap();
    drop(w);
    let prefix = transaction_prefix(JobId(0x5eed), "fresh");
    assert_eq!(server().prepared(&prefix), [format!("{prefix}1-1")]);
    let mut again = sink.create_writer(&ctx(1, "fresh")).unwrap();
    again.start_without_state().unwrap();
    assert!(server().prepared(&prefix).is_empty());
    assert_eq!(summary("no_checkpoint")[0], "0");
}

#[test]
fn exactly_once_upserts_of_a_key_in_consecutive_checkpoints_wait_for_the_commit_not_the_lock() {
    let sink = PostgresSink::new(
        &server().url,
        "INSERT INTO eo_upserts (k, n) VALUES ($1, $2) \
         ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n",
        |(k, n): &(String, i64)| (k.clone(), *n),
    )
    .setup("CREATE TABLE IF NOT EXISTS eo_upserts (k text PRIMARY KEY, n bigint NOT NULL)")
    .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
    .batch_size(1);
    let mut w = sink.create_writer(&ctx(0, "eo-upserts")).unwrap();
    w.write(("a".to_string(), 1), 0).unwrap();
    w.pre_commit(1).unwrap();
    // Row `a` is locked by checkpoint 1's prepared transaction: the next write of `a` is
    // held until that commit instead of waiting on the lock inside the task.
    w.write(("a".to_string(), 2), 0).unwrap();
    assert_eq!(server().query("SELECT count(*) FROM eo_upserts")[0], ["0"]);
    w.commit(1).unwrap();
    assert_eq!(server().query("SELECT n FROM eo_upserts")[0], ["1"]);
    w.pre_commit(2).unwrap();
    w.commit(2).unwrap();
    assert_eq!(server().query("SELECT n FROM eo_upserts")[0], ["2"]);
}

#[test]
fn at_least_once_upserts_flush_at_the_barrier_and_repeat_nothing() {
    let sink = PostgresSink::new(
        &server().url,
        "INSERT INTO upserts (k, n) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET n = EXCLUDED.n",
        |(k, n): &(String, i64)| (k.clone(), *n),
    )
    .setup("CREATE TABLE IF NOT EXISTS upserts (k text PRIMARY KEY, n bigint NOT NULL)")
    .batch_interval(Duration::ZERO);
    let mut w = sink.create_writer(&ctx(0, "upserts")).unwrap();
    for n in 0..5 {
        w.write(("a".to_string(), n), 0).unwrap();
    }
    w.write(("b".to_string(), 1), 0).unwrap();
    assert!(
        server().query("SELECT * FROM upserts").is_empty(),
        "batched"
    );
    // The barrier sends and commits the batch; at least once keeps no state.
    assert!(w.pre_commit(1).unwrap().is_none());
    let rows = server().query("SELECT k, n FROM upserts ORDER BY k");
    assert_eq!(rows, [["a", "4"], ["b", "1"]]);
    // Replayed records after a failure update the same rows.
    w.write(("a".to_string(), 4), 0).unwrap();
    w.finish().unwrap();
    assert_eq!(server().query("SELECT count(*) FROM upserts")[0], ["2"]);
}

#[test]
fn a_record_the_statement_refuses_fails_the_job_naming_it_or_is_left_out() {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_collection((10..20).collect::<Vec<u64>>())
        .add_sink(insert("refused"));
    let err = env.execute("postgres-refused").unwrap_err().to_string();
    assert!(err.contains("record (13, \"r-13\")"), "{err}");
    assert!(err.contains("refused_v_check"), "{err}");
    // The same records with the skip policy: all but the refused one arrive.
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(1);
    env.from_collection((10..20).collect::<Vec<u64>>())
        .add_sink(insert("skipped").on_record_error(OnRecordError::Skip));
    env.execute("postgres-skipped").unwrap();
    assert_eq!(summary("skipped"), ["9", "9", "10", "19"]);
    let rows = server().query("SELECT count(*) FROM skipped WHERE id = 13");
    assert_eq!(rows[0], ["0"]);
}

#[test]
fn refused_records_go_to_the_dead_letter_table_exactly_once_through_failures() {
    static FAILED: AtomicUsize = AtomicUsize::new(0);
    const AT: &[u64] = &[150, 600];
    let dir = tempfile::tempdir().unwrap();
    let env = checkpointed_env(dir.path(), 5);
    let dead_letter = OnRecordError::DeadLetter("public.dl_refused".into());
    ids_failing_at(&env, 800, AT, &FAILED)
        .add_sink(
            insert("dl_rows")
                .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
                .on_record_error(dead_letter),
        )
        .uid("pg-dl");
    env.execute("postgres-dead-letter").unwrap();
    assert_eq!(
        FAILED.load(Ordering::SeqCst),
        0b11,
        "both failures were injected"
    );
    // Every record but the refused one in the table, the refused one in the dead-letter
    // table once, although the job restarted twice after it was written.
    assert_eq!(summary("dl_rows"), ["799", "799", "0", "799"]);
    let refused = server().query("SELECT record, sqlstate, error FROM dl_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0][0], "(13, \"r-13\")");
    assert_eq!(refused[0][1], "23514", "a check violation");
    assert!(refused[0][2].contains("dl_rows_v_check"), "{refused:?}");
    assert!(
        prepared_of("pg-dl").is_empty(),
        "{:?}",
        prepared_of("pg-dl")
    );
}

#[test]
fn refused_records_go_to_the_sinks_side_output_exactly_once_through_failures() {
    static FAILED: AtomicUsize = AtomicUsize::new(0);
    const AT: &[u64] = &[150, 600];
    let dir = tempfile::tempdir().unwrap();
    let env = checkpointed_env(dir.path(), 5);
    let tag = OutputTag::<RefusedRecord>::new("refused");
    let rows = ids_failing_at(&env, 800, AT, &FAILED)
        .add_sink(
            insert("so_rows")
                .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
                .on_record_error(OnRecordError::SideOutput(tag.clone())),
        )
        .uid("pg-so");
    // The side output into an exactly-once table of its own.
    rows.get_side_output(&tag).add_sink(
        PostgresSink::new(
            &server().url,
            "INSERT INTO so_refused (record, sqlstate, error) VALUES ($1, $2, $3)",
            |r: &RefusedRecord| (r.record.clone(), r.sqlstate.clone(), r.error.clone()),
        )
        .setup("CREATE TABLE IF NOT EXISTS so_refused (record text, sqlstate text, error text)")
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce),
    );
    env.execute("postgres-side-output").unwrap();
    assert_eq!(
        FAILED.load(Ordering::SeqCst),
        0b11,
        "both failures were injected"
    );
    assert_eq!(summary("so_rows"), ["799", "799", "0", "799"]);
    let refused = server().query("SELECT record, sqlstate, error FROM so_refused");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0][0], "(13, \"r-13\")");
    assert_eq!(refused[0][1], "23514", "a check violation");
    assert!(refused[0][2].contains("so_rows_v_check"), "{refused:?}");
}

#[test]
fn a_dead_letter_table_name_that_is_not_an_identifier_is_refused_naming_it() {
    let sink = insert("never").on_record_error(OnRecordError::DeadLetter("x; DROP TABLE y".into()));
    let err = sink
        .check("pg out", &weir_runtime::JobConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("dead-letter table `x; DROP TABLE y`"), "{err}");
}

#[test]
fn a_table_that_does_not_exist_is_named_when_the_writer_starts() {
    let sink = PostgresSink::new(
        &server().url,
        "INSERT INTO no_such_table (id) VALUES ($1)",
        |id: &u64| (*id as i64,),
    );
    let err = refusal(&sink, "missing");
    assert!(
        err.contains("no_such_table") && err.contains("does not exist"),
        "{err}"
    );
    assert!(err.contains("pg out"), "names the sink: {err}");
}

#[test]
fn exactly_once_is_refused_by_a_server_without_prepared_transactions() {
    let plain = pg::start(&[("WEIR_PG_MAX_PREPARED", "0")]).unwrap();
    let sink = PostgresSink::new(&plain.url, "SELECT $1::bigint", |id: &u64| (*id as i64,))
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce);
    let err = refusal(&sink, "no2pc");
    assert!(err.contains("max_prepared_transactions is 0"), "{err}");
    plain.command("stop");
}

#[test]
fn an_unreachable_server_is_named_without_its_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://weir:hunter2secret@127.0.0.1:{port}/weir?connect_timeout=5");
    let sink = PostgresSink::new(&url, "SELECT $1::bigint", |id: &u64| (*id as i64,));
    let err = refusal(&sink, "away");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("weir:***@"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[test]
fn exactly_once_without_checkpointing_is_refused_when_the_job_is_built() {
    let env = StreamExecutionEnvironment::new();
    env.from_collection(vec![1u64])
        .add_sink(insert("never").delivery_guarantee(DeliveryGuarantee::ExactlyOnce));
    let err = env
        .execute("postgres-no-checkpoints")
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs checkpointing"), "{err}");
}

#[test]
fn a_password_with_an_unencoded_at_sign_is_refused_without_showing_it() {
    let sink = PostgresSink::new(
        "postgres://weir:p@ssw0rd@127.0.0.1:5432/weir",
        "SELECT $1::bigint",
        |id: &u64| (*id as i64,),
    );
    let err = sink
        .check("pg out", &weir_runtime::JobConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("percent-encode"), "{err}");
    assert!(!err.contains("ssw0rd"), "{err}");
}
