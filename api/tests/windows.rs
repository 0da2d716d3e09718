//! Event time and windows on the mini-cluster with two TaskManagers, against golden outputs.

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
};
use weir_api::{AggregateFunction, OutputTag, StreamExecutionEnvironment};

type Event = (String, i64, i64); // (key, event time ms, value)

fn env(parallelism: u16) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_local_taskmanagers(2)
        .set_auto_watermark_interval(Duration::ZERO);
    env
}

fn ev(k: &str, ts: i64, v: i64) -> Event {
    (k.to_string(), ts, v)
}

fn by_time(max_ooo_ms: u64) -> WatermarkStrategy<Event> {
    WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(max_ooo_ms))
        .with_timestamp_assigner(|e: &Event, _| e.1)
}

#[allow(clippy::ptr_arg)] // the window finisher receives the key type, `&String`
fn sum_window(k: &String, w: &TimeWindow, e: Event) -> (String, i64, i64, i64) {
    (k.clone(), w.start, w.end, e.2)
}

#[test]
fn tumbling_event_time_windows_handle_out_of_order_and_late_events_like_flink() {
    // Watermark = max_ts - 100 - 1, emitted after every record (single source subtask, so
    // the order of watermarks and records is deterministic).
    let input = vec![
        ev("a", 100, 1),
        ev("a", 950, 2),
        ev("b", 500, 10),
        ev("a", 1020, 4),   // wm 919: window [0,1000) still open
        ev("a", 990, 8),    // out of order but not late: joins [0,1000)
        ev("a", 1200, 16),  // wm 1099: fires [0,1000) for a and b
        ev("a", 300, 32),   // late: [0,1000) already fired and no lateness
        ev("b", 1999, 64),  // wm 1898
        ev("a", 2500, 128), // wm 2399: fires [1000,2000)
    ];
    let env = env(2);
    let late = OutputTag::<Event>::new("late");
    let windowed = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(by_time(100))
        .set_parallelism(1) // one watermark generator: the golden order is deterministic
        .key_by(|e: &Event| e.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_millis(1000)))
        .side_output_late_data(&late)
        .reduce_with_window(|a, b| (a.0, a.1.max(b.1), a.2 + b.2), sum_window);
    let late_out = windowed.get_side_output(&late).collect();
    let out = windowed.collect();
    env.execute("tumbling").unwrap();
    let mut got = out.take();
    got.sort();
    let s = |k: &str, a, b, v| (k.to_string(), a, b, v);
    assert_eq!(
        got,
        vec![
            s("a", 0, 1000, 1 + 2 + 8),
            s("a", 1000, 2000, 4 + 16),
            s("a", 2000, 3000, 128),
            s("b", 0, 1000, 10),
            s("b", 1000, 2000, 64),
        ]
    );
    assert_eq!(late_out.take(), vec![ev("a", 300, 32)]);
}

#[test]
fn allowed_lateness_fires_the_window_again_with_the_late_element() {
    let input = vec![
        ev("a", 100, 1),
        ev("a", 1100, 2), // wm 1099: fires [0,1000) = 1
        ev("a", 500, 4),  // within 500 ms lateness: fires [0,1000) again = 5
        ev("a", 1700, 8), // wm 1699: cleanup of [0,1000) at 999 + 500
        ev("a", 600, 16), // too late even with lateness: side output
    ];
    let env = env(1);
    let late = OutputTag::<Event>::new("late");
    let windowed = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(by_time(0))
        .key_by(|e: &Event| e.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_millis(1000)))
        .allowed_lateness(Duration::from_millis(500))
        .side_output_late_data(&late)
        .reduce_with_window(|a, b| (a.0, a.1, a.2 + b.2), sum_window);
    let late_out = windowed.get_side_output(&late).collect();
    let out = windowed.collect();
    env.execute("lateness").unwrap();
    let got: Vec<_> = out.take().into_iter().map(|r| (r.1, r.3)).collect();
    assert_eq!(got, vec![(0, 1), (0, 5), (1000, 10)]);
    assert_eq!(late_out.take(), vec![ev("a", 600, 16)]);
}

#[test]
fn sliding_windows_count_every_element_in_size_over_slide_windows() {
    let input: Vec<Event> = (0..40).map(|i| ev("k", i * 50, 1)).collect(); // ts 0..1950
    let env = env(2);
    let out = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(by_time(0))
        .key_by(|e: &Event| e.0.clone())
        .window(SlidingEventTimeWindows::of(
            Duration::from_millis(1000),
            Duration::from_millis(500),
        ))
        .reduce_with_window(|a, b| (a.0, a.1, a.2 + b.2), sum_window)
        .collect();
    env.execute("sliding").unwrap();
    let mut got: Vec<_> = out.take().into_iter().map(|r| (r.1, r.2, r.3)).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (-500, 500, 10),
            (0, 1000, 20),
            (500, 1500, 20),
            (1000, 2000, 20),
            (1500, 2500, 10)
        ]
    );
}

#[test]
fn session_windows_merge_per_key_until_a_gap() {
    let input = vec![
        ev("a", 0, 1),
        ev("b", 10, 100),
        ev("a", 250, 2),
        ev("a", 100, 4), // bridges nothing new, inside [0, 550)
        ev("a", 900, 8), // gap of 650 > 300 after 250: new session
        ev("a", 1150, 16),
    ];
    let env = env(2);
    let out = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(by_time(1000))
        .key_by(|e: &Event| e.0.clone())
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            300,
        )))
        .reduce_with_window(|a, b| (a.0, a.1, a.2 + b.2), sum_window)
        .collect();
    env.execute("sessions").unwrap();
    let mut got = out.take();
    got.sort();
    let s = |k: &str, a, b, v| (k.to_string(), a, b, v);
    assert_eq!(
        got,
        vec![
            s("a", 0, 550, 7),
            s("a", 900, 1450, 24),
            s("b", 10, 310, 100)
        ]
    );
}

#[test]
fn processing_time_windows_of_a_bounded_input_fire_at_its_end() {
    let env = env(2);
    let out = env
        .from_collection((0..1000u32).map(|i| (i % 10, 1u64)).collect())
        .key_by(|r: &(u32, u64)| r.0)
        .window(TumblingProcessingTimeWindows::of(Duration::from_secs(3600)))
        .reduce(|a, b| (a.0, a.1 + b.1))
        .collect();
    env.execute("processing-time").unwrap();
    let mut got = out.take();
    got.sort();
    assert_eq!(got, (0..10).map(|k| (k, 100)).collect::<Vec<_>>());
}

#[test]
fn event_time_window_without_timestamps_fails_naming_the_operator() {
    let env = env(1);
    let _ = env
        .from_collection(vec![(1u8, 1u8)])
        .key_by(|r: &(u8, u8)| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce(|a, _| a)
        .collect();
    let err = env.execute("no-ts").unwrap_err().to_string();
    assert!(
        err.contains("Window(Reduce)") && err.contains("no event timestamp"),
        "{err}"
    );
}

#[derive(Clone)]
struct Stats;
impl AggregateFunction<Event, (i64, i64, i64), (i64, i64, i64)> for Stats {
    fn create_accumulator(&self) -> (i64, i64, i64) {
        (0, 0, i64::MIN)
    }
    fn add(&self, e: Event, acc: &mut (i64, i64, i64)) {
        acc.0 += 1;
        acc.1 += e.2;
        acc.2 = acc.2.max(e.2);
    }
    fn get_result(&self, acc: &(i64, i64, i64)) -> (i64, i64, i64) {
        *acc
    }
    fn merge(&self, a: (i64, i64, i64), b: (i64, i64, i64)) -> (i64, i64, i64) {
        (a.0 + b.0, a.1 + b.1, a.2.max(b.2))
    }
}

type Row = (String, i64, i64, i64, i64); // key, window start, count, sum, max

fn reference(input: &[Event], size: i64) -> Vec<Row> {
    let mut m: BTreeMap<(String, i64), (i64, i64, i64)> = BTreeMap::new();
    for (k, ts, v) in input {
        let start = ts - ts.rem_euclid(size);
        let e = m.entry((k.clone(), start)).or_insert((0, 0, i64::MIN));
        e.0 += 1;
        e.1 += v;
        e.2 = e.2.max(*v);
    }
    m.into_iter()
        .map(|((k, s), (c, sum, max))| (k, s, c, sum, max))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn keyed_tumbling_aggregation_matches_a_naive_reference(
        input in proptest::collection::vec(("[a-e]", 0i64..5000, -100i64..100), 1..300),
        size in 100i64..2000,
        parallelism in 1u16..=2,
    ) {
        let env = env(parallelism);
        let out = env
            .from_collection(input.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::<Event>::no_watermarks().with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .rebalance()
            .key_by(|e: &Event| e.0.clone())
            .window(TumblingEventTimeWindows::of(Duration::from_millis(size as u64)))
            .aggregate_with_window(Stats, |k: &String, w: &TimeWindow, r: (i64, i64, i64)| {
                (k.clone(), w.start, r.0, r.1, r.2)
            })
            .collect();
        env.execute("proptest").unwrap();
        let mut got = out.take();
        got.sort();
        prop_assert_eq!(got, reference(&input, size));
    }
}

#[test]
fn a_window_first_seen_within_its_lateness_fires_once_per_element() {
    // Size 10, lateness 5, watermark after every record with no bound.
    let input = vec![
        ev("a", 12, 1),  // watermark 11: [0,10) has ended
        ev("a", 5, 2),   // new window [0,10), not late (9 + 5 > 11): fires once, now
        ev("a", 13, 4),  // watermark 12: no second firing of [0,10)
        ev("a", 7, 8),   // still within lateness: fires [0,10) again with both elements
        ev("a", 30, 16), // watermark 29: cleanup; [10,20) fires
    ];
    let env = env(1);
    let out = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(by_time(0))
        .key_by(|e: &Event| e.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
        .allowed_lateness(Duration::from_millis(5))
        .reduce_with_window(|a, b| (a.0, a.1, a.2 + b.2), sum_window)
        .collect();
    env.execute("late-window-once").unwrap();
    let got: Vec<_> = out.take().into_iter().map(|r| (r.1, r.3)).collect();
    assert_eq!(got, vec![(0, 2), (0, 10), (10, 5), (30, 16)]);
}

fn session_reference(input: &[Event], gap: i64) -> Vec<(String, i64, i64, i64)> {
    let mut by_key: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (k, ts, v) in input {
        by_key.entry(k.clone()).or_default().push((*ts, *v));
    }
    let mut out = Vec::new();
    for (k, mut evs) in by_key {
        evs.sort();
        let mut cur: Option<(i64, i64, i64)> = None; // start, end, sum
        for (ts, v) in evs {
            cur = match cur {
                // Windows that touch merge, as Flink's TimeWindow::intersects says.
                Some((s, e, sum)) if ts <= e => Some((s, e.max(ts + gap), sum + v)),
                Some((s, e, sum)) => {
                    out.push((k.clone(), s, e, sum));
                    Some((ts, ts + gap, v))
                }
                None => Some((ts, ts + gap, v)),
            };
        }
        if let Some((s, e, sum)) = cur {
            out.push((k.clone(), s, e, sum));
        }
    }
    out.sort();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn session_windows_match_a_naive_reference(
        input in proptest::collection::vec(("[a-c]", 0i64..3000, -50i64..50), 1..200),
        gap in 1i64..400,
        parallelism in 1u16..=2,
    ) {
        let env = env(parallelism);
        let out = env
            .from_collection(input.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::<Event>::no_watermarks().with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .rebalance()
            .key_by(|e: &Event| e.0.clone())
            .window(EventTimeSessionWindows::with_gap(Duration::from_millis(gap as u64)))
            .reduce_with_window(|a, b| (a.0, a.1, a.2 + b.2), sum_window)
            .collect();
        env.execute("sessions-proptest").unwrap();
        let mut got = out.take();
        got.sort();
        prop_assert_eq!(got, session_reference(&input, gap));
    }
}
