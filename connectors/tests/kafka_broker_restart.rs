//! The broker stopped and started again while an exactly-once job runs: the job fails
//! over (its restarts restore checkpoints) and finishes with every record committed once.
//! This binary has a broker of its own, as it stops it.

#![cfg(feature = "kafka")]

mod common;

use common::{broker, broker_command, create_topic, produce, read_all};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use weir_api::StreamExecutionEnvironment;
use weir_connectors::kafka::{DeliveryGuarantee, KafkaSink, KafkaSource, Utf8};

/// Records that passed the job's pacing map, across restarts.
static SEEN: AtomicU64 = AtomicU64::new(0);

#[test]
fn a_broker_restart_mid_run_fails_the_job_over_and_it_finishes_exactly_once() {
    const N: u64 = 3_000;
    create_topic("restart-in", 2);
    create_topic("restart-out", 1);
    let input: Vec<_> = (0..N)
        .map(|i| (i as i32 % 2, None, format!("r-{i}").into_bytes()))
        .collect();
    produce("restart-in", &input);
    let dir = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.enable_checkpointing(
        Duration::from_millis(200),
        &format!("file://{}", dir.path().display()),
    );
    env.configure(|s| {
        s.job.restart_strategy = Some(weir_api::RestartStrategy::FixedDelay {
            attempts: 200,
            delay: Duration::from_millis(500),
        })
    });
    let started = Instant::now();
    let source = KafkaSource::new(&broker().bootstrap, Utf8)
        .topics(["restart-in"])
        .bounded()
        .request_timeout(Duration::from_secs(3));
    let sink = KafkaSink::new(&broker().bootstrap, "restart-out", Utf8)
        .delivery_guarantee(DeliveryGuarantee::ExactlyOnce)
        .transactional_id_prefix("restart")
        .request_timeout(Duration::from_secs(3))
        .transaction_timeout(Duration::from_secs(60));
    env.add_source(source, "in")
        .map(move |v: String| {
            // About 1,000 records a second, so the run outlasts the broker's pause.
            let n = SEEN.fetch_add(1, Ordering::SeqCst) + 1;
            let due = started + Duration::from_millis(n);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            v
        })
        .add_sink(sink);
    let client = env.execute_async("kafka-broker-restart").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while SEEN.load(Ordering::SeqCst) < N / 4 {
        assert!(Instant::now() < deadline, "the job did not get going");
        std::thread::sleep(Duration::from_millis(20));
    }
    broker_command("pause");
    // Down for longer than the clients' request timeouts, so the job fails.
    std::thread::sleep(Duration::from_secs(8));
    broker_command("resume");
    let result = client.wait().unwrap();
    assert!(
        !result.restored_from.is_empty(),
        "the job failed over while the broker was down"
    );
    let mut got = read_all("restart-out", "read_committed");
    got.sort();
    let mut want: Vec<String> = (0..N).map(|i| format!("r-{i}")).collect();
    want.sort();
    assert_eq!(got.len(), want.len(), "every record committed once");
    assert!(got == want, "the committed records differ from the input");
}
