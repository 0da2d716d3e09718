//! Interval joins (`interval_join(...).between(lower, upper).process(f)`) on the mini-cluster
//! with two TaskManagers, on both state backends: every pair of a key within the interval,
//! against a nested-loop reference, with inclusive and exclusive bounds; the pair's
//! timestamps; exactly-once through a failure; bad bounds and missing timestamps.

mod common;

use common::{backends, env_on as env, fail_once_after_checkpoint};

use proptest::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weir_api::functions::FnResult;
use weir_api::join::IntervalJoinContext;
use weir_api::time::WatermarkStrategy;
use weir_api::{DataStream, GeneratorSource, StateBackendKind, StreamExecutionEnvironment};

type Event = (u8, i64, u32); // (key, event time ms, id)
type Joined = (u8, u32, u32, i64); // key, left id, right id, pair timestamp

/// `input` in event-time order from one source subtask, so that nothing is late.
fn timed(env: &StreamExecutionEnvironment, mut input: Vec<Event>) -> DataStream<Event> {
    input.sort_by_key(|e| e.1);
    env.from_collection(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &Event, _| e.1),
        )
        .set_parallelism(1)
}

fn joined(l: Event, r: Event, ctx: &mut IntervalJoinContext<'_, Joined>) -> FnResult {
    assert_eq!((ctx.left_timestamp(), ctx.right_timestamp()), (l.1, r.1));
    let ts = ctx.timestamp();
    ctx.collect((l.0, l.2, r.2, ts));
    Ok(())
}

/// Joins `left` and `right` with `between(lower, upper)` and the exclusive flags.
fn interval_join(
    backend: StateBackendKind,
    (left, right): (&[Event], &[Event]),
    (lower, upper): (i64, i64),
    (lower_exclusive, upper_exclusive): (bool, bool),
) -> Vec<Joined> {
    let env = env(backend);
    let l = timed(&env, left.to_vec()).key_by(|e: &Event| e.0);
    let r = timed(&env, right.to_vec()).key_by(|e: &Event| e.0);
    let mut between = l.interval_join(&r).between(lower, upper);
    if lower_exclusive {
        between = between.lower_bound_exclusive();
    }
    if upper_exclusive {
        between = between.upper_bound_exclusive();
    }
    let out = between.process(joined).collect();
    env.execute("interval-join").unwrap();
    let mut got = out.take();
    got.sort();
    got
}

/// Every pair with equal keys and `l.ts + lower <= r.ts <= l.ts + upper` (open where
/// exclusive), stamped with the larger timestamp.
fn reference(
    (left, right): (&[Event], &[Event]),
    (lower, upper): (i64, i64),
    (lower_exclusive, upper_exclusive): (bool, bool),
) -> Vec<Joined> {
    let mut pairs = Vec::new();
    for l in left {
        for r in right.iter().filter(|r| r.0 == l.0) {
            let d = r.1 - l.1;
            let above = if lower_exclusive {
                d > lower
            } else {
                d >= lower
            };
            let below = if upper_exclusive {
                d < upper
            } else {
                d <= upper
            };
            if above && below {
                pairs.push((l.0, l.2, r.2, l.1.max(r.1)));
            }
        }
    }
    pairs.sort();
    pairs
}

fn events(max_len: usize) -> impl Strategy<Value = Vec<Event>> {
    proptest::collection::vec((0u8..3, 0i64..2000), 0..max_len).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, ts))| (k, ts, i as u32))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]
    #[test]
    fn interval_join_emits_every_pair_of_a_key_within_the_interval_once(
        left in events(50),
        right in events(50),
        lower in -400i64..400,
        width in 0i64..500,
        exclusive in (any::<bool>(), any::<bool>()),
    ) {
        let bounds = (lower, lower + width);
        // An interval left empty by its exclusive ends is refused (tested below).
        prop_assume!(width >= i64::from(exclusive.0) + i64::from(exclusive.1));
        let got = interval_join(StateBackendKind::Memory, (&left, &right), bounds, exclusive);
        prop_assert_eq!(got, reference((&left, &right), bounds, exclusive));
    }
}

#[test]
fn interval_join_gives_the_same_pairs_on_both_state_backends_with_exclusive_bounds() {
    // Right records 1 ms before, at, and 1 and 2 ms after each left record.
    let left: Vec<Event> = (0..6)
        .map(|i| (i % 2, 100 * i64::from(i), u32::from(i)))
        .collect();
    let right: Vec<Event> = (0..6)
        .flat_map(|i| [-1, 0, 1, 2].map(|d| (i % 2, 100 * i64::from(i) + d, u32::from(i) * 10)))
        .enumerate()
        .map(|(n, (k, ts, _))| (k, ts, n as u32))
        .collect();
    for exclusive in [(false, false), (true, false), (false, true), (true, true)] {
        let expected = reference((&left, &right), (-1, 1), exclusive);
        for backend in backends() {
            let got = interval_join(backend, (&left, &right), (-1, 1), exclusive);
            assert_eq!(got, expected, "{backend:?} {exclusive:?}");
        }
    }
    assert_eq!(
        reference((&left, &right), (-1, 1), (false, false)).len(),
        18
    );
    assert_eq!(reference((&left, &right), (-1, 1), (true, true)).len(), 6);
}

#[test]
fn an_empty_interval_fails_the_job_when_it_is_built_naming_the_bounds() {
    let env = env(StateBackendKind::Memory);
    let l = timed(&env, vec![(1, 1, 1)]).key_by(|e: &Event| e.0);
    let r = timed(&env, vec![(1, 1, 2)]).key_by(|e: &Event| e.0);
    let _ = l.interval_join(&r).between(5, 1).process(joined).collect();
    let err = env.execute("empty-interval").unwrap_err().to_string();
    assert!(
        err.contains("interval join between(5, 1)") && err.contains("IntervalJoin"),
        "{err}"
    );
}

#[test]
fn records_without_timestamps_fail_the_interval_join_naming_it() {
    let env = env(StateBackendKind::Memory);
    let l = env
        .from_collection(vec![(1u8, 1i64, 1u32)])
        .key_by(|e: &Event| e.0);
    let r = env
        .from_collection(vec![(1u8, 1i64, 2u32)])
        .key_by(|e: &Event| e.0);
    let _ = l.interval_join(&r).between(0, 1).process(joined).collect();
    let err = env.execute("no-timestamps").unwrap_err().to_string();
    assert!(
        err.contains("IntervalJoin") && err.contains("no event timestamp"),
        "{err}"
    );
}

const N: u64 = 12_000;

/// Left and right events, one per millisecond each, of 50 keys, joined within
/// `between(-60, 40)`, a failure at the 3,001st left event, checkpoints every 50 ms;
/// returns the committed output lines, sorted.
fn exactly_once_run(
    backend: StateBackendKind,
    seen: &'static AtomicU64,
    failed: &'static AtomicBool,
) -> Vec<String> {
    let checkpoints = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let env = env(backend);
    common::checkpoint_and_restart(&env, checkpoints.path());
    let side = |id_base: u32| {
        GeneratorSource::new(Some(N), move |i| {
            ((i % 50) as u8, i as i64, id_base + i as u32)
        })
        .with_rate_limit(6_000)
    };
    let strategy = || {
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(20))
            .with_timestamp_assigner(|e: &Event, _| e.1)
    };
    let left = env
        .from_generator(side(0))
        .map(fail_once_after_checkpoint(
            seen,
            failed,
            3_001,
            checkpoints.path(),
        ))
        .assign_timestamps_and_watermarks(strategy())
        .key_by(|e: &Event| e.0);
    let right = env
        .from_generator(side(1_000_000))
        .assign_timestamps_and_watermarks(strategy())
        .key_by(|e: &Event| e.0);
    left.interval_join(&right)
        .between(-60, 40)
        .process(joined)
        .uid("interval-join")
        .sink_to_files(weir_api::sink::FileSink::new(
            out.path(),
            |r: &Joined, line: &mut String| {
                use std::fmt::Write;
                let _ = write!(line, "{},{},{},{}", r.0, r.1, r.2, r.3);
            },
        ))
        .uid("files");
    let result = env.execute("interval-join-exactly-once").unwrap();
    common::assert_restored_once(&result, failed, backend);
    common::committed_lines(out.path())
}

/// Every pair of the exactly-once runs once: left `i` and right `j` of one key with
/// `i - 60 <= j <= i + 40`.
fn exactly_once_reference() -> Vec<String> {
    let mut lines = Vec::new();
    for i in 0..N as i64 {
        for j in (i - 60).max(0)..=(i + 40).min(N as i64 - 1) {
            if i % 50 == j % 50 {
                lines.push(format!("{},{i},{},{}", i % 50, 1_000_000 + j, i.max(j)));
            }
        }
    }
    lines.sort();
    lines
}

#[test]
fn interval_join_output_is_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    let expected = exactly_once_reference();
    assert!(expected.len() > 10_000, "{} pairs", expected.len());
    for backend in backends() {
        SEEN.store(0, Ordering::SeqCst);
        FAILED.store(false, Ordering::SeqCst);
        let lines = exactly_once_run(backend, &SEEN, &FAILED);
        assert!(
            lines == expected,
            "{backend:?}: {} lines differ from the failure-free run's {}",
            lines.len(),
            expected.len()
        );
    }
}

/// Opened by the join function once the operator's watermark passed 9,999.
static GATE: AtomicBool = AtomicBool::new(false);

#[test]
fn late_records_of_either_side_go_to_their_late_data_side_outputs() {
    use weir_api::functions::OutputTag;
    for backend in backends() {
        GATE.store(false, Ordering::SeqCst);
        let env = env(backend);
        let strategy = || {
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &Event, _| e.1)
        };
        let side = |records: Vec<(Event, bool)>, name: &str| {
            env.add_source(common::Gated(records, &GATE), name)
                .set_parallelism(1)
                .assign_timestamps_and_watermarks(strategy())
                .set_parallelism(1)
                .key_by(|e: &Event| e.0)
        };
        // The records after the gate come once the watermark passed 9,999: late on both sides.
        let left = side(
            vec![
                ((1, 10_000, 1), false),
                ((1, 20_000, 2), false),
                ((1, 50, 3), true),
            ],
            "left",
        );
        let right = side(
            vec![
                ((1, 10_000, 11), false),
                ((1, 20_000, 12), false),
                ((1, 60, 13), true),
            ],
            "right",
        );
        let (late_left, late_right) = (
            OutputTag::<Event>::new("late-left"),
            OutputTag::<Event>::new("late-right"),
        );
        let joined = left
            .interval_join(&right)
            .between(0, 0)
            .side_output_left_late_data(&late_left)
            .side_output_right_late_data(&late_right)
            .process(
                |l: Event, r: Event, ctx: &mut IntervalJoinContext<'_, Joined>| -> FnResult {
                    if ctx.current_watermark() >= 9_999 {
                        GATE.store(true, Ordering::SeqCst);
                    }
                    ctx.collect((l.0, l.2, r.2, ctx.timestamp()));
                    Ok(())
                },
            );
        let (late_l, late_r) = (
            joined.get_side_output(&late_left).collect(),
            joined.get_side_output(&late_right).collect(),
        );
        let out = joined.collect();
        env.execute("interval-join-late").unwrap();
        let mut pairs = out.take();
        pairs.sort();
        assert_eq!(
            pairs,
            vec![(1, 1, 11, 10_000), (1, 2, 12, 20_000)],
            "{backend:?}"
        );
        assert_eq!(late_l.take(), vec![(1, 50, 3)], "{backend:?}");
        assert_eq!(late_r.take(), vec![(1, 60, 13)], "{backend:?}");
    }
}
