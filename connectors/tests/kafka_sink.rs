//! The Kafka sink against a real broker: exactly-once output across an injected failure
//! (a `read_committed` consumer sees every record once; a fenced writer's flushed records
//! stay visible to `read_uncommitted` consumers only, as aborted duplicates), commits recovered from the checkpoint's copy when a
//! failure came between a checkpoint's completion and its commit, a fenced older writer
//! that cannot commit, the transaction-timeout checks at submission, and a missing output
//! topic.

#![cfg(feature = "kafka")]

mod common;

use common::{broker, create_topic, produce, read_all};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weir_api::sink::{SinkContext, SinkFunction};
use weir_api::{GeneratorSource, StreamExecutionEnvironment};
use weir_connectors::kafka::{DeliveryGuarantee, KafkaSink, KafkaSource, Utf8};

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn exactly_once(topic: &str, prefix: &str) -> KafkaSink<String> {
    KafkaSink::new(&broker().bootstrap, topic, Utf8)
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix(prefix)
        .request_timeout(Duration::from_secs(30))
}

fn checkpointed_env(dir: &std::path::Path, interval_ms: u64) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(
        Duration::from_millis(interval_ms),
        &format!("file://{}", dir.display()),
    );
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(100),
        })
    });
    env
}

#[test]
fn an_exactly_once_sink_shows_each_record_once_to_read_committed_consumers_across_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: usize = 4_000;
    create_topic("eo-in", 4);
    create_topic("eo-out", 3);
    let input: Vec<_> = (0..N)
        .map(|i| (i as i32 % 4, None, format!("r-{i}").into_bytes()))
        .collect();
    produce("eo-in", &input);
    let dir = tempfile::tempdir().unwrap();
    let env = checkpointed_env(dir.path(), 100);
    let source = KafkaSource::new(&broker().bootstrap, Utf8)
        .topics(["eo-in"])
        .bounded();
    env.add_source(source, "in")
        .flat_map(|v: String| {
            // Half-way, the record goes out (into the open transaction) and then the
            // task fails in the same call, so that transaction must be aborted.
            let fail = SEEN.fetch_add(1, Ordering::SeqCst) + 1 == (N / 2) as u64
                && !FAILED.swap(true, Ordering::SeqCst);
            std::iter::once(v).chain(std::iter::from_fn(move || {
                assert!(!fail, "injected failure");
                None
            }))
        })
        .add_sink(exactly_once("eo-out", "eo-test"));
    env.execute("kafka-exactly-once").unwrap();
    assert!(FAILED.load(Ordering::SeqCst), "the failure was injected");
    let expected = sorted((0..N).map(|i| format!("r-{i}")).collect());
    assert_eq!(sorted(read_all("eo-out", "read_committed")), expected);
    let uncommitted = read_all("eo-out", "read_uncommitted");
    assert!(
        uncommitted.len() >= N,
        "{} records read uncommitted",
        uncommitted.len()
    );
}

fn ctx(subtask: u16) -> SinkContext {
    SinkContext {
        name: "out".into(),
        subtask,
        parallelism: 1,
        checkpointing: true,
        job: weir_runtime::JobId(1),
        uid: "out".into(),
        side_outputs: Default::default(),
    }
}

#[test]
fn records_of_a_completed_checkpoint_whose_commit_was_lost_are_committed_once_on_restore() {
    create_topic("lost-commit", 1);
    let sink = exactly_once("lost-commit", "lost-commit");
    // A writer writes, its checkpoint completes, and it dies before committing.
    let mut w = sink.create_writer(&ctx(0)).unwrap();
    for i in 0..10 {
        w.write(format!("a-{i}"), 0).unwrap();
    }
    let state = w.pre_commit(1).unwrap().expect("exactly-once state");
    drop(w);
    assert!(read_all("lost-commit", "read_committed").is_empty());
    // The restored writer commits the checkpoint's records from its copy.
    let mut restored = sink.create_writer(&ctx(0)).unwrap();
    restored.recover(vec![state.clone()]).unwrap();
    let expected: Vec<String> = sorted((0..10).map(|i| format!("a-{i}")).collect());
    assert_eq!(sorted(read_all("lost-commit", "read_committed")), expected);
    // Restoring the same checkpoint again finds its marker and commits nothing twice.
    let mut again = sink.create_writer(&ctx(0)).unwrap();
    again.recover(vec![state]).unwrap();
    again.finish().unwrap();
    assert_eq!(sorted(read_all("lost-commit", "read_committed")), expected);
}

#[test]
fn an_older_writer_fenced_by_a_restore_cannot_commit_when_it_resumes() {
    create_topic("zombie", 1);
    let sink = exactly_once("zombie", "zombie");
    let mut zombie = sink.create_writer(&ctx(0)).unwrap();
    for i in 0..5 {
        zombie.write(format!("z-{i}"), 0).unwrap();
    }
    let state = zombie.pre_commit(1).unwrap().unwrap();
    // A new attempt restores checkpoint 1 while the old writer is frozen.
    let mut fresh = sink.create_writer(&ctx(0)).unwrap();
    fresh.recover(vec![state]).unwrap();
    // The old writer wakes up and tries to commit checkpoint 1: it is fenced.
    let err = zombie
        .commit(1)
        .expect_err("a fenced writer must not commit");
    assert!(err.to_string().contains("sink 'out'"), "{err}");
    let expected: Vec<String> = sorted((0..5).map(|i| format!("z-{i}")).collect());
    assert_eq!(sorted(read_all("zombie", "read_committed")), expected);
    // The old writer's records reached the broker (flushed at its barrier) in the
    // transaction the restore aborted: read_uncommitted sees them beside the recommitted
    // ones. The transactions, not luck, keep read_committed exact.
    let twice: Vec<String> = sorted(
        expected
            .iter()
            .flat_map(|v| [v.clone(), v.clone()])
            .collect(),
    );
    assert_eq!(sorted(read_all("zombie", "read_uncommitted")), twice);
}

#[test]
fn a_transaction_timeout_shorter_than_the_checkpoint_interval_or_above_the_brokers_limit_is_refused(
) {
    create_topic("timeouts", 1);
    let job = |sink: KafkaSink<String>| {
        let dir = tempfile::tempdir().unwrap();
        let env = checkpointed_env(dir.path(), 120_000);
        env.from_generator(GeneratorSource::new(Some(1), |i| format!("{i}")))
            .add_sink(sink);
        env.execute("kafka-timeouts").unwrap_err().to_string()
    };
    let short = job(exactly_once("timeouts", "t").transaction_timeout(Duration::from_secs(60)));
    assert!(
        short.contains("transaction.timeout.ms (60000)") && short.contains("(120100 ms)"),
        "{short}"
    );
    let long = job(exactly_once("timeouts", "t").transaction_timeout(Duration::from_secs(1_800)));
    assert!(
        long.contains("transaction.timeout.ms (1800000)")
            && long.contains("transaction.max.timeout.ms (900000)"),
        "{long}"
    );
    let unnamed = job(KafkaSink::new(&broker().bootstrap, "timeouts", Utf8)
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce));
    assert!(unnamed.contains("transactional_id_prefix"), "{unnamed}");
}

#[test]
fn an_at_least_once_sink_loses_nothing_across_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: u64 = 3_000;
    create_topic("alo-out", 2);
    let dir = tempfile::tempdir().unwrap();
    let env = checkpointed_env(dir.path(), 50);
    env.from_generator(GeneratorSource::new(Some(N), |i| format!("g-{i}")).with_rate_limit(6_000))
        .map(|v: String| {
            if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == N / 2
                && !FAILED.swap(true, Ordering::SeqCst)
            {
                panic!("injected failure");
            }
            v
        })
        .add_sink(KafkaSink::new(&broker().bootstrap, "alo-out", Utf8));
    env.execute("kafka-at-least-once").unwrap();
    assert!(FAILED.load(Ordering::SeqCst));
    let mut got = read_all("alo-out", "read_committed");
    got.sort();
    got.dedup();
    assert_eq!(got, sorted((0..N).map(|i| format!("g-{i}")).collect()));
}

#[test]
fn a_sink_to_a_missing_topic_fails_the_job_naming_the_topic() {
    // The broker does not create topics on first use; librdkafka would hold the records
    // until `message.timeout.ms` (5 min) instead of failing.
    for guarantee in [
        DeliveryGuarantee::AtLeastOnce,
        DeliveryGuarantee::ExactlyOnce,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let env = checkpointed_env(dir.path(), 100);
        env.from_generator(GeneratorSource::new(Some(10), |i| format!("m-{i}")))
            .add_sink(
                KafkaSink::new(&broker().bootstrap, "no-such-output", Utf8)
                    .delivery_guarantee(guarantee)
                    .transactional_id_prefix("missing-out"),
            );
        let err = env.execute("kafka-missing-output").unwrap_err().to_string();
        assert!(
            err.contains("Kafka topic 'no-such-output' does not exist"),
            "{guarantee:?}: {err}"
        );
    }
}
