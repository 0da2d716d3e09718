//! Aggregating event-time windows through the pre-aggregation buffer
//! (`execution.window.pre-aggregation.max-entries`) on the mini-cluster, on both state
//! backends: the results and late elements equal those of the operator that reads and
//! writes the backend per record, whatever the buffer's size, and stay exactly-once across
//! failures while spilled accumulators are in checkpoints.

mod common;

use common::{backends, fail_once_after_checkpoint};

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows};
use weir_api::{
    AggregateFunction, GeneratorSource, OutputTag, StateBackendKind, StreamExecutionEnvironment,
};

type Event = (u8, i64, i64); // (key, event time ms, value)
type Row = (u8, i64, i64, i64, i64); // key, window start, count, sum, max

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
    fn merge(&self, _: (i64, i64, i64), _: (i64, i64, i64)) -> (i64, i64, i64) {
        unreachable!("windows that do not merge never merge accumulators")
    }
}

fn row(k: &u8, w: &TimeWindow, (c, s, m): (i64, i64, i64)) -> Row {
    (*k, w.start, c, s, m)
}

/// Runs windows of `size` (sliding by `slide`, if given) over `input`, with a watermark
/// `ooo` ms behind after every record, and returns the sorted results and late elements.
fn run(
    input: &[Event],
    (size, slide, ooo): (u64, Option<u64>, u64),
    backend: StateBackendKind,
    entries: usize,
) -> (Vec<Row>, Vec<Event>) {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_local_taskmanagers(2)
        .set_auto_watermark_interval(Duration::ZERO)
        .set_state_backend(backend)
        .configure(|s| s.job.window_pre_aggregation_entries = entries);
    let late = OutputTag::<Event>::new("late");
    let keyed = env
        .from_collection(input.to_vec())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(ooo))
                .with_timestamp_assigner(|e: &Event, _| e.1),
        )
        .set_parallelism(1) // one watermark generator: which elements are late is fixed
        .key_by(|e: &Event| e.0);
    let size = Duration::from_millis(size);
    let windowed = match slide {
        None => keyed.window(TumblingEventTimeWindows::of(size)),
        Some(s) => keyed.window(SlidingEventTimeWindows::of(size, Duration::from_millis(s))),
    }
    .side_output_late_data(&late)
    .aggregate_with_window(Stats, row);
    let late_out = windowed.get_side_output(&late).collect();
    let out = windowed.collect();
    env.execute("pre-aggregation").unwrap();
    let (mut rows, mut late) = (out.take(), late_out.take());
    rows.sort();
    late.sort();
    (rows, late)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]
    #[test]
    fn pre_aggregated_windows_equal_the_per_record_operator_at_any_buffer_size(
        input in proptest::collection::vec((0u8..6, 0i64..3000, -100i64..100), 1..250),
        size in 50u64..600,
        slide in proptest::option::of(20u64..300),
        ooo in 0u64..200,
        entries in prop_oneof![Just(1usize), Just(3), 4usize..40, Just(100_000)],
    ) {
        let slide = slide.filter(|s| *s < size);
        for backend in backends() {
            let direct = run(&input, (size, slide, ooo), backend, 0);
            let buffered = run(&input, (size, slide, ooo), backend, entries);
            prop_assert_eq!(&buffered, &direct, "{:?} with {} entries", backend, entries);
        }
    }
}

#[test]
fn a_window_aggregation_without_the_buffer_matches_a_naive_reference() {
    let input: Vec<Event> = (0..400).map(|i| ((i % 7) as u8, i * 5, i % 13)).collect();
    let mut want: BTreeMap<(u8, i64), (i64, i64, i64)> = BTreeMap::new();
    for (k, ts, v) in &input {
        let e = want.entry((*k, ts - ts % 100)).or_insert((0, 0, i64::MIN));
        *e = (e.0 + 1, e.1 + v, e.2.max(*v));
    }
    let want: Vec<Row> = want
        .into_iter()
        .map(|((k, s), (c, sum, m))| (k, s, c, sum, m))
        .collect();
    for backend in backends() {
        for entries in [0, 5, 100_000] {
            let (rows, late) = run(&input, (100, None, 0), backend, entries);
            assert_eq!(rows, want, "{backend:?} with {entries} entries");
            assert!(late.is_empty());
        }
    }
}

#[test]
fn windows_fire_in_the_order_of_their_ends_whether_spilled_or_buffered() {
    // A two-slot buffer: the second record fills it, so window [10, 20) is spilled (with
    // its timers); [0, 10) then stays buffered. The final watermark fires both, and the
    // earlier window comes first, as Flink's timers order them.
    let input: Vec<Event> = vec![(1, 15, 1), (2, 16, 2), (1, 5, 4)];
    for backend in backends() {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(1)
            .set_state_backend(backend)
            .configure(|s| s.job.window_pre_aggregation_entries = 2);
        let out = env
            .from_collection(input.clone())
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::<Event>::no_watermarks()
                    .with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .key_by(|e: &Event| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(10)))
            .aggregate_with_window(Stats, row)
            .collect();
        env.execute("window-order").unwrap();
        let starts: Vec<i64> = out.take().iter().map(|r| r.1).collect();
        assert_eq!(starts, vec![0, 10, 10], "{backend:?}");
    }
}

/// 24,000 events of 40 keys over 100 ms windows, a failure at `fail_at`, checkpoints every
/// 50 ms; returns the committed output lines, sorted.
fn exactly_once_run(
    backend: StateBackendKind,
    entries: usize,
    (seen, failed): (&'static AtomicU64, &'static AtomicBool),
    fail_at: u64,
) -> Vec<String> {
    const N: u64 = 24_000;
    let checkpoints = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_local_taskmanagers(2)
        .set_state_backend(backend)
        .configure(|s| s.job.window_pre_aggregation_entries = entries);
    common::checkpoint_and_restart(&env, checkpoints.path());
    let source = GeneratorSource::new(Some(N), |i| ((i % 40) as u8, (i / 4) as i64, 1i64))
        .with_rate_limit(12_000);
    env.from_generator(source)
        .map(fail_once_after_checkpoint(
            seen,
            failed,
            fail_at,
            checkpoints.path(),
        ))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(20))
                .with_timestamp_assigner(|e: &Event, _| e.1),
        )
        .key_by(|e: &Event| e.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .aggregate_with_window(Stats, row)
        .uid("windows")
        .sink_to_files(weir_api::sink::FileSink::new(
            out.path(),
            |r: &Row, line: &mut String| {
                use std::fmt::Write;
                let _ = write!(line, "{},{},{}", r.0, r.1, r.2);
            },
        ))
        .uid("files");
    env.execute("pre-aggregation-exactly-once").unwrap();
    assert!(failed.load(Ordering::SeqCst), "the failure was injected");
    common::committed_lines(out.path())
}

/// Every (key, window) of the exactly-once runs once, with its true count.
fn exactly_once_reference() -> Vec<String> {
    // Each subtask of the source generates its share; every record counts once in total.
    let mut counts: BTreeMap<(u8, i64), i64> = BTreeMap::new();
    for i in 0..24_000u64 {
        let ts = (i / 4) as i64;
        *counts.entry(((i % 40) as u8, ts - ts % 100)).or_default() += 1;
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|((k, s), c)| format!("{k},{s},{c}"))
        .collect();
    lines.sort();
    lines
}

macro_rules! exactly_once_test {
    ($name:ident, $entries:expr, $fail_at:expr) => {
        #[test]
        fn $name() {
            static SEEN: AtomicU64 = AtomicU64::new(0);
            static FAILED: AtomicBool = AtomicBool::new(false);
            for backend in backends() {
                SEEN.store(0, Ordering::SeqCst);
                FAILED.store(false, Ordering::SeqCst);
                let lines = exactly_once_run(backend, $entries, (&SEEN, &FAILED), $fail_at);
                assert!(
                    lines == exactly_once_reference(),
                    "{backend:?}: {} lines differ from the failure-free run",
                    lines.len()
                );
            }
        }
    };
}

exactly_once_test!(
    spilled_accumulators_restore_exactly_once_after_a_failure,
    7,
    13_001
);
exactly_once_test!(
    accumulators_spilled_at_barriers_restore_exactly_once_after_a_failure,
    100_000,
    9_001
);
