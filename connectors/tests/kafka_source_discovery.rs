//! The Kafka source's unbounded mode against a real broker: topics matched by a pattern,
//! partitions and topics created while it runs found at the discovery interval (and read
//! from their earliest offset), and per-partition watermarks that an idle partition stops
//! holding back.

#![cfg(feature = "kafka")]

mod common;

use common::{add_partitions, broker, create_topic, produce};
use std::time::{Duration, Instant};
use weir_api::source::{SourceContext, SourceFunction, SourceReader};
use weir_api::time::WatermarkStrategy;
use weir_api::{Lifecycle, Output, SourceStep, TaskError, Timestamp};
use weir_connectors::kafka::{KafkaSource, Utf8};

/// What a reader emitted: records, watermarks and idleness changes, in order.
#[derive(Default)]
struct Recorded {
    records: Vec<String>,
    watermarks: Vec<Timestamp>,
    idle: Vec<bool>,
}

impl Lifecycle for Recorded {
    fn watermark(&mut self, watermark: Timestamp) -> Result<(), TaskError> {
        self.watermarks.push(watermark);
        Ok(())
    }
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        self.idle.push(idle);
        Ok(())
    }
}

impl Output<String> for Recorded {
    fn emit(&mut self, value: String, _: Timestamp) -> Result<(), TaskError> {
        self.records.push(value);
        Ok(())
    }
}

fn reader(source: &KafkaSource<String>) -> Box<dyn SourceReader<String>> {
    let ctx = SourceContext {
        name: "kafka".into(),
        subtask: 0,
        parallelism: 1,
    };
    source.create_reader(&ctx).unwrap()
}

/// Polls until `done` holds of what was recorded, at most 60 s.
fn poll_until(
    r: &mut dyn SourceReader<String>,
    out: &mut Recorded,
    done: impl Fn(&Recorded) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(out) {
        assert!(
            Instant::now() < deadline,
            "stalled with {} records",
            out.records.len()
        );
        if let SourceStep::Idle(d) = r.poll(out, 100).unwrap() {
            std::thread::sleep(d);
        }
    }
}

fn values(
    topic: &str,
    partition: i32,
    range: std::ops::Range<usize>,
) -> Vec<(i32, Option<i64>, Vec<u8>)> {
    range
        .map(|i| (partition, None, format!("{topic}-{i}").into_bytes()))
        .collect()
}

#[test]
fn partitions_and_matching_topics_created_while_the_source_runs_are_found_and_read_from_the_start()
{
    create_topic("disc-a", 1);
    produce("disc-a", &values("disc-a", 0, 0..5));
    let source = KafkaSource::new(&broker().bootstrap, Utf8)
        .topic_pattern("disc-.*")
        .unwrap()
        .partition_discovery_interval(Some(Duration::from_millis(200)));
    let mut r = reader(&source);
    let mut out = Recorded::default();
    poll_until(&mut *r, &mut out, |o| o.records.len() == 5);
    // A new partition of the topic, and a new topic matching the pattern.
    add_partitions("disc-a", 2);
    produce("disc-a", &values("disc-a", 1, 5..8));
    create_topic("disc-b", 1);
    produce("disc-b", &values("disc-b", 0, 0..4));
    poll_until(&mut *r, &mut out, |o| o.records.len() == 12);
    let mut got = out.records.clone();
    got.sort();
    let mut want: Vec<String> = (0..8).map(|i| format!("disc-a-{i}")).collect();
    want.extend((0..4).map(|i| format!("disc-b-{i}")));
    want.sort();
    assert_eq!(got, want);
    // A topic that does not match is never read.
    create_topic("other-c", 1);
    produce("other-c", &values("other-c", 0, 0..3));
    std::thread::sleep(Duration::from_millis(600));
    for _ in 0..20 {
        let _ = r.poll(&mut out, 100).unwrap();
    }
    assert_eq!(out.records.len(), 12);
}

#[test]
fn the_watermark_is_the_minimum_over_partitions_until_an_idle_partition_stops_holding_it_back() {
    create_topic("wm", 2);
    // Partition 0 runs far ahead of partition 1 in event time.
    let mut rows = Vec::new();
    for i in 0..10i64 {
        rows.push((
            0,
            Some(1_700_000_100_000 + i * 1000),
            format!("p0-{i}").into_bytes(),
        ));
    }
    rows.push((1, Some(1_700_000_000_000), b"p1-0".to_vec()));
    produce("wm", &rows);
    let strategy = WatermarkStrategy::<String>::for_bounded_out_of_orderness(Duration::ZERO)
        .with_idleness(Duration::from_millis(500));
    let source = KafkaSource::new(&broker().bootstrap, Utf8)
        .topics(["wm"])
        .partition_discovery_interval(None)
        .with_watermarks(strategy);
    let mut r = reader(&source);
    let mut out = Recorded::default();
    poll_until(&mut *r, &mut out, |o| o.records.len() == 11);
    // Partition 1 holds the watermark at its own reading, not partition 0's.
    let held = *out.watermarks.last().expect("a watermark");
    assert_eq!(held, 1_700_000_000_000 - 1);
    // Once both are idle, the stream is marked idle.
    poll_until(&mut *r, &mut out, |o| o.idle == [true]);
    // A record on partition 0 makes the stream active again, and partition 1, still idle,
    // no longer holds the watermark back.
    produce("wm", &[(0, Some(1_700_000_200_000), b"p0-late".to_vec())]);
    poll_until(&mut *r, &mut out, |o| o.records.len() == 12);
    poll_until(&mut *r, &mut out, |o| {
        o.watermarks.last() == Some(&(1_700_000_200_000 - 1))
    });
    assert_eq!(out.idle, [true, false]);
    assert!(
        out.watermarks.windows(2).all(|w| w[0] < w[1]),
        "{:?}",
        out.watermarks
    );
}
