//! The Kafka source against a real broker: every record of every partition once, offsets
//! in checkpoints (restored at the same and at another parallelism), starting offsets,
//! bad records under both policies, and clear errors for a missing topic or an
//! unreachable broker.

#![cfg(feature = "kafka")]

mod common;

use common::{broker, commit_offset, create_topic, produce};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use weir_api::sink::CollectSink;
use weir_api::source::{BadRecordPolicy, SourceContext, SourceFunction, SourceReader};
use weir_api::{Lifecycle, Output, SourceStep, StreamExecutionEnvironment, TaskError, Timestamp};
use weir_connectors::kafka::{KafkaSource, OffsetReset, StartingOffsets, Utf8};

/// The timestamp of the first record `fill` produces (a timestamp of 0 means "none").
const T0: i64 = 1_700_000_000_000;

/// `n` values `"v-<i>"` spread over `partitions` partitions, with timestamps
/// `T0 + 1000 * i`.
fn fill(topic: &str, partitions: i32, n: usize) -> Vec<String> {
    create_topic(topic, partitions);
    let values: Vec<_> = (0..n)
        .map(|i| {
            (
                i as i32 % partitions,
                Some(T0 + 1000 * i as i64),
                format!("v-{i}").into_bytes(),
            )
        })
        .collect();
    produce(topic, &values);
    let mut all: Vec<String> = (0..n).map(|i| format!("v-{i}")).collect();
    all.sort();
    all
}

fn source(topic: &str) -> KafkaSource<String> {
    KafkaSource::new(&broker().bootstrap, Utf8)
        .topics([topic])
        .bounded()
        .request_timeout(Duration::from_secs(20))
}

/// Collects what a reader emits.
#[derive(Default)]
struct Collected(Vec<(String, Timestamp)>);

impl Lifecycle for Collected {}

impl Output<String> for Collected {
    fn emit(&mut self, value: String, timestamp: Timestamp) -> Result<(), TaskError> {
        self.0.push((value, timestamp));
        Ok(())
    }
}

fn reader(
    source: &KafkaSource<String>,
    subtask: u16,
    parallelism: u16,
) -> Box<dyn SourceReader<String>> {
    let ctx = SourceContext {
        name: "kafka".into(),
        subtask,
        parallelism,
    };
    source.create_reader(&ctx).unwrap()
}

/// Polls until the reader emitted `n` more records (or finished), at most 30 s.
fn poll_n(r: &mut dyn SourceReader<String>, out: &mut Collected, n: usize) -> SourceStep {
    let target = out.0.len() + n;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let want = target.saturating_sub(out.0.len()).clamp(1, 500);
        let step = r.poll(out, want).unwrap();
        if out.0.len() >= target || step == SourceStep::Finished {
            return step;
        }
        assert!(
            Instant::now() < deadline,
            "reader stalled at {} records",
            out.0.len()
        );
        if let SourceStep::Idle(d) = step {
            std::thread::sleep(d);
        }
    }
}

fn sorted(values: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = values.into_iter().collect();
    v.sort();
    v
}

#[test]
fn a_reader_reports_the_records_it_has_yet_to_read_as_pending_records() {
    fill("pending", 2, 1_000);
    // Unbounded: the lag comes from the high watermarks in the client's statistics.
    let unbounded = KafkaSource::new(&broker().bootstrap, Utf8)
        .topics(["pending"])
        .request_timeout(Duration::from_secs(20));
    let mut r = reader(&unbounded, 0, 1);
    assert_eq!(
        r.pending_records(),
        None,
        "nothing is known before the first poll"
    );
    let mut out = Collected::default();
    // One record at a time until the statistics (every second, served by polls) arrived.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        if let Some(p) = r.pending_records() {
            break p;
        }
        assert!(Instant::now() < deadline, "no statistics within 30 s");
        r.poll(&mut out, 1).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        pending,
        1_000 - out.0.len() as u64,
        "lag after {} read",
        out.0.len()
    );
    let rest = 1_000 - out.0.len();
    poll_n(&mut *r, &mut out, rest);
    assert_eq!(r.pending_records(), Some(0));
}

#[test]
fn a_bounded_source_reads_every_record_of_every_partition_exactly_once() {
    let all = fill("every-record", 4, 2_000);
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3);
    let sink = CollectSink::new();
    env.add_source(source("every-record"), "kafka")
        .add_sink(sink.clone());
    env.execute("kafka-every-record").unwrap();
    assert_eq!(sorted(sink.take()), all);
}

#[test]
fn readers_restored_from_checkpointed_offsets_read_the_rest_once_at_the_same_and_another_parallelism(
) {
    let all = fill("offsets-restore", 4, 1_000);
    let src = source("offsets-restore");
    // Two readers read part of their partitions, then a checkpoint is taken.
    let mut first = Collected::default();
    let mut snapshot = Vec::new();
    for subtask in 0..2 {
        let mut r = reader(&src, subtask, 2);
        poll_n(&mut *r, &mut first, 200);
        snapshot.extend(r.snapshot_splits(1).unwrap().unwrap());
    }
    // Restored at parallelism 2 and, separately, at parallelism 3 (union restore: each
    // reader gets every position and keeps its own).
    for parallelism in [2u16, 3] {
        let mut rest = Collected::default();
        for subtask in 0..parallelism {
            let mut r = reader(&src, subtask, parallelism);
            r.restore_splits(snapshot.clone()).unwrap();
            assert_eq!(
                poll_n(&mut *r, &mut rest, usize::MAX / 2),
                SourceStep::Finished
            );
        }
        let read = first.0.iter().chain(&rest.0).map(|(v, _)| v.clone());
        assert_eq!(sorted(read), all, "parallelism {parallelism}");
    }
    // Records carry their Kafka timestamps.
    assert!(first
        .0
        .iter()
        .all(|(v, ts)| format!("v-{}", (ts - T0) / 1000) == *v));
}

#[test]
fn starting_offsets_pick_latest_a_timestamp_or_the_groups_committed_offsets() {
    fill("starting", 1, 100);
    let read = |starting| {
        let src = source("starting")
            .starting_offsets(starting)
            .group_id("starting-group");
        let mut out = Collected::default();
        let mut r = reader(&src, 0, 1);
        assert_eq!(poll_n(&mut *r, &mut out, 1_000), SourceStep::Finished);
        out.0.into_iter().map(|(v, _)| v).collect::<Vec<_>>()
    };
    assert!(read(StartingOffsets::Latest).is_empty());
    let from_ts = read(StartingOffsets::Timestamp(T0 + 90_000));
    assert_eq!(from_ts.first().map(String::as_str), Some("v-90"));
    assert_eq!(from_ts.len(), 10);
    commit_offset("starting-group", "starting", 0, 95);
    let committed = read(StartingOffsets::Committed {
        reset: OffsetReset::Earliest,
    });
    assert_eq!(committed, ["v-95", "v-96", "v-97", "v-98", "v-99"]);
}

#[test]
fn a_record_that_does_not_deserialize_is_skipped_and_counted_or_fails_the_job_naming_where_it_is() {
    create_topic("bad-records", 1);
    produce(
        "bad-records",
        &[
            (0, None, b"ok-1".to_vec()),
            (0, None, vec![0xff, 0xfe]),
            (0, None, b"ok-2".to_vec()),
        ],
    );
    let src = source("bad-records").on_bad_record(BadRecordPolicy::Skip);
    let skipped = src.skipped_counter();
    let env = StreamExecutionEnvironment::new();
    let sink = CollectSink::new();
    env.add_source(src, "kafka").add_sink(sink.clone());
    env.execute("kafka-skip").unwrap();
    assert_eq!(sorted(sink.take()), ["ok-1", "ok-2"]);
    assert_eq!(skipped.load(Ordering::Relaxed), 1);

    let env = StreamExecutionEnvironment::new();
    env.add_source(source("bad-records"), "kafka")
        .add_sink(CollectSink::new());
    let err = env.execute("kafka-fail").unwrap_err().to_string();
    assert!(
        err.contains("topic 'bad-records' partition 0 offset 1") && err.contains("not UTF-8"),
        "{err}"
    );
}

#[test]
fn a_missing_topic_fails_the_job_naming_the_topic() {
    let env = StreamExecutionEnvironment::new();
    env.add_source(source("no-such-topic"), "kafka")
        .add_sink(CollectSink::new());
    let err = env.execute("kafka-missing").unwrap_err().to_string();
    assert!(
        err.contains("Kafka topic 'no-such-topic' does not exist"),
        "{err}"
    );
}

#[test]
fn an_unreachable_broker_is_an_error_naming_the_servers_within_the_request_timeout() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let servers = format!("127.0.0.1:{port}");
    let src = KafkaSource::new(&servers, Utf8)
        .topics(["t"])
        .bounded()
        .request_timeout(Duration::from_secs(2));
    let mut r = reader(&src, 0, 1);
    let started = Instant::now();
    let err = r
        .poll(&mut Collected::default(), 10)
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(err.contains(&servers), "{err}");
}

#[test]
fn after_an_injected_failure_counts_over_a_kafka_source_are_exact() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: usize = 6_000;
    fill("recovering", 4, N);
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(
        Duration::from_millis(50),
        &format!("file://{}", dir.path().display()),
    );
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 2,
            delay: Duration::from_millis(100),
        })
    });
    let sink = CollectSink::new();
    env.add_source(source("recovering"), "kafka")
        .map(|v: String| {
            if SEEN.fetch_add(1, Ordering::SeqCst) + 1 == (N / 2) as u64
                && !FAILED.swap(true, Ordering::SeqCst)
            {
                panic!("injected failure");
            }
            let i: u64 = v[2..].parse().unwrap();
            (i % 10, 1u64)
        })
        .key_by(|r: &(u64, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .add_sink(sink.clone());
    env.execute("kafka-recovering").unwrap();
    assert!(FAILED.load(Ordering::SeqCst), "the failure was injected");
    let mut m = std::collections::HashMap::<u64, u64>::new();
    for (k, c) in sink.take() {
        let e = m.entry(k).or_insert(0);
        *e = (*e).max(c);
    }
    assert_eq!(m.len(), 10);
    assert!(m.values().all(|c| *c == (N / 10) as u64), "{m:?}");
}
