//! Window joins and co-groups (`join`, `co_group`) on the mini-cluster with two
//! TaskManagers, on both state backends: every pair of a key in a shared window, against
//! references computed here by nested loops; one-sided keys in co-groups; session and
//! processing-time windows; exactly-once through a failure; a failing function.

mod common;

use common::{backends, env_on as env, fail_once_after_checkpoint};

use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weir_api::functions::FnResult;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{
    EventTimeSessionWindows, SlidingEventTimeWindows, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
};
use weir_api::{DataStream, GeneratorSource, StateBackendKind, StreamExecutionEnvironment};

type Order = (u8, i64, i64); // (key, event time ms, amount)
type Payment = (u8, i64, String); // (key, event time ms, method)
type Pair = (u8, i64, i64, i64, String); // key, order time, amount, payment time, method

/// `input` in event-time order from one source subtask, so that nothing is late.
fn timed<T: weir_api::Record + Clone + Sync>(
    env: &StreamExecutionEnvironment,
    mut input: Vec<T>,
    ts: fn(&T) -> i64,
) -> DataStream<T> {
    input.sort_by_key(ts);
    env.from_collection(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(move |t: &T, _| ts(t)),
        )
        .set_parallelism(1)
}

fn pair(o: Order, p: Payment) -> Pair {
    (o.0, o.1, o.2, p.1, p.2)
}

/// Joins `orders` and `payments` on their key in tumbling windows of `size` ms.
fn tumbling_join(
    backend: StateBackendKind,
    orders: &[Order],
    payments: &[Payment],
    size: u64,
) -> Vec<Pair> {
    let env = env(backend);
    let o = timed(&env, orders.to_vec(), |o: &Order| o.1);
    let p = timed(&env, payments.to_vec(), |p: &Payment| p.1);
    let out = o
        .join(&p)
        .r#where(|o: &Order| o.0)
        .equal_to(|p: &Payment| p.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(size)))
        .apply(pair)
        .collect();
    env.execute("tumbling-join").unwrap();
    let mut got = out.take();
    got.sort();
    got
}

/// Every (order, payment) pair with equal keys whose times share a window of `windows`.
fn reference_join(
    orders: &[Order],
    payments: &[Payment],
    windows: impl Fn(i64) -> Vec<i64>,
) -> Vec<Pair> {
    let mut pairs = Vec::new();
    for o in orders {
        for p in payments.iter().filter(|p| p.0 == o.0) {
            let shared = windows(o.1)
                .iter()
                .filter(|w| windows(p.1).contains(w))
                .count();
            pairs.extend(std::iter::repeat_n(pair(*o, p.clone()), shared));
        }
    }
    pairs.sort();
    pairs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]
    #[test]
    fn window_join_emits_every_pair_of_a_key_within_the_same_tumbling_window(
        orders in proptest::collection::vec((0u8..4, 0i64..3000, -50i64..50), 0..60),
        payments in proptest::collection::vec((0u8..4, 0i64..3000, "[a-c]"), 0..60),
    ) {
        let got = tumbling_join(StateBackendKind::Memory, &orders, &payments, 500);
        let expected = reference_join(&orders, &payments, |t| vec![t - t % 500]);
        prop_assert_eq!(got, expected);
    }
}

fn fixed_orders() -> Vec<Order> {
    vec![
        (1, 100, 10),
        (1, 900, 20),
        (2, 950, 30),
        (1, 1500, 40),
        (3, 1700, 50),
        (2, 2999, 60),
    ]
}

fn fixed_payments() -> Vec<Payment> {
    let p = |k, t, m: &str| (k, t, m.to_string());
    vec![
        p(1, 50, "card"),
        p(1, 1999, "cash"),
        p(2, 2000, "card"),
        p(2, 2500, "iou"),
        p(4, 10, "x"),
    ]
}

#[test]
fn window_join_gives_the_same_pairs_on_both_state_backends() {
    let expected = reference_join(&fixed_orders(), &fixed_payments(), |t| vec![t - t % 1000]);
    assert_eq!(expected.len(), 5, "the fixture joins in several windows");
    for backend in backends() {
        let got = tumbling_join(backend, &fixed_orders(), &fixed_payments(), 1000);
        assert_eq!(got, expected, "{backend:?}");
    }
}

#[test]
fn sliding_window_join_emits_a_pair_once_per_window_both_records_share() {
    for backend in backends() {
        let env = env(backend);
        let o = timed(&env, fixed_orders(), |o: &Order| o.1);
        let p = timed(&env, fixed_payments(), |p: &Payment| p.1);
        let out = o
            .join(&p)
            .r#where(|o: &Order| o.0)
            .equal_to(|p: &Payment| p.0)
            .window(SlidingEventTimeWindows::of(
                Duration::from_millis(1000),
                Duration::from_millis(500),
            ))
            .apply(pair)
            .collect();
        env.execute("sliding-join").unwrap();
        let mut got = out.take();
        got.sort();
        // Windows of 1000 ms every 500 ms: [s, s + 1000) for s = t - t % 500 and s - 500.
        let windows = |t: i64| vec![t - t % 500, t - t % 500 - 500];
        assert_eq!(
            got,
            reference_join(&fixed_orders(), &fixed_payments(), windows),
            "{backend:?}"
        );
    }
}

type Summary = (u8, usize, i64, Vec<String>); // key, orders, their amount, payment methods

fn summarize(orders: Vec<Order>, payments: Vec<Payment>, out: &mut Vec<Summary>) -> FnResult {
    let key = orders
        .first()
        .map(|o| o.0)
        .or(payments.first().map(|p| p.0));
    // Records of one side may take either of two tagging subtasks: their order varies.
    let mut methods: Vec<String> = payments.into_iter().map(|p| p.2).collect();
    methods.sort();
    out.push((
        key.unwrap(),
        orders.len(),
        orders.iter().map(|o| o.2).sum(),
        methods,
    ));
    Ok(())
}

#[test]
fn co_group_sees_keys_that_only_one_side_has_in_a_window() {
    for backend in backends() {
        let env = env(backend);
        let o = timed(&env, fixed_orders(), |o: &Order| o.1);
        let p = timed(&env, fixed_payments(), |p: &Payment| p.1);
        let out = o
            .co_group(&p)
            .r#where(|o: &Order| o.0)
            .equal_to(|p: &Payment| p.0)
            .window(TumblingEventTimeWindows::of(Duration::from_millis(1000)))
            .apply(summarize)
            .collect();
        env.execute("co-group").unwrap();
        let mut got = out.take();
        got.sort();
        let s = |k, n, a, m: &[&str]| (k, n, a, m.iter().map(|m| m.to_string()).collect());
        let mut expected: Vec<Summary> = vec![
            s(1, 2, 30, &["card"]), // [0, 1000)
            s(2, 1, 30, &[]),
            s(4, 0, 0, &["x"]),
            s(1, 1, 40, &["cash"]), // [1000, 2000)
            s(3, 1, 50, &[]),
            s(2, 1, 60, &["card", "iou"]), // [2000, 3000)
        ];
        expected.sort();
        assert_eq!(got, expected, "{backend:?}");
    }
}

#[test]
fn session_window_co_group_merges_both_sides_of_a_key_until_a_gap() {
    let env = env(StateBackendKind::Memory);
    // Key 1: 0, 300 (payment), 500 and, after a gap of 1000, 1600: two sessions.
    let o = timed(
        &env,
        vec![(1, 0, 1), (1, 500, 2), (1, 1600, 4)],
        |o: &Order| o.1,
    );
    let p = timed(&env, vec![(1, 300, "card".to_string())], |p: &Payment| p.1);
    let out = o
        .co_group(&p)
        .r#where(|o: &Order| o.0)
        .equal_to(|p: &Payment| p.0)
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(
            1000,
        )))
        .apply(summarize)
        .collect();
    env.execute("session-co-group").unwrap();
    let mut got = out.take();
    got.sort();
    assert_eq!(
        got,
        vec![(1, 1, 4, vec![]), (1, 2, 3, vec!["card".to_string()])]
    );
}

#[test]
fn processing_time_window_join_of_bounded_inputs_fires_at_their_end() {
    let env = env(StateBackendKind::Memory);
    let o = env.from_collection(fixed_orders());
    let p = env.from_collection(fixed_payments());
    // One window far wider than the run: every record falls into it.
    let thousand_years = Duration::from_secs(1000 * 365 * 24 * 3600);
    let out = o
        .join(&p)
        .r#where(|o: &Order| o.0)
        .equal_to(|p: &Payment| p.0)
        .window(TumblingProcessingTimeWindows::of(thousand_years))
        .apply(pair)
        .collect();
    env.execute("processing-time-join").unwrap();
    let mut got = out.take();
    got.sort();
    assert_eq!(
        got,
        reference_join(&fixed_orders(), &fixed_payments(), |_| vec![0])
    );
}

#[test]
fn a_failing_flat_join_function_fails_the_job_naming_the_operator_and_the_error() {
    let env = env(StateBackendKind::Memory);
    let o = timed(&env, fixed_orders(), |o: &Order| o.1);
    let p = timed(&env, fixed_payments(), |p: &Payment| p.1);
    let _ = o
        .join(&p)
        .r#where(|o: &Order| o.0)
        .equal_to(|p: &Payment| p.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(1000)))
        .flat_apply(|o: Order, _p: Payment, _out: &mut Vec<u8>| -> FnResult {
            Err(format!("no price for order at {}", o.1).into())
        })
        .collect();
    let err = env.execute("failing-join").unwrap_err().to_string();
    assert!(
        err.contains("Window(Join)") && err.contains("no price for order"),
        "{err}"
    );
}

const N: u64 = 6_000;

/// Orders and payments, one per millisecond each, of 50 keys, joined in 100 ms windows
/// with a failure at the 3,001st order and checkpoints every 50 ms; returns the committed
/// output lines, sorted.
fn exactly_once_run(
    backend: StateBackendKind,
    seen: &'static AtomicU64,
    failed: &'static AtomicBool,
) -> Vec<String> {
    let checkpoints = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let env = env(backend);
    common::checkpoint_and_restart(&env, checkpoints.path());
    let strategy = |ts: fn(&(u8, i64, i64)) -> i64| {
        WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(20))
            .with_timestamp_assigner(move |e: &(u8, i64, i64), _| ts(e))
    };
    let orders = env
        .from_generator(
            GeneratorSource::new(Some(N), |i| ((i % 50) as u8, i as i64, i as i64))
                .with_rate_limit(6_000),
        )
        .map(fail_once_after_checkpoint(
            seen,
            failed,
            3_001,
            checkpoints.path(),
        ))
        .assign_timestamps_and_watermarks(strategy(|e| e.1));
    let payments = env
        .from_generator(
            GeneratorSource::new(Some(N), |i| ((i % 50) as u8, i as i64, -(i as i64)))
                .with_rate_limit(6_000),
        )
        .assign_timestamps_and_watermarks(strategy(|e| e.1));
    orders
        .join(&payments)
        .r#where(|o: &Order| o.0)
        .equal_to(|p: &(u8, i64, i64)| p.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .apply(|o: Order, p: (u8, i64, i64)| (o.0, o.2, p.2))
        .uid("join")
        .sink_to_files(weir_api::sink::FileSink::new(
            out.path(),
            |r: &(u8, i64, i64), line: &mut String| {
                use std::fmt::Write;
                let _ = write!(line, "{},{},{}", r.0, r.1, r.2);
            },
        ))
        .uid("files");
    let result = env.execute("join-exactly-once").unwrap();
    common::assert_restored_once(&result, failed, backend);
    common::committed_lines(out.path())
}

/// Every pair of the exactly-once runs once: order `i` and payment `j` of one key within
/// one 100 ms window.
fn exactly_once_reference() -> Vec<String> {
    let mut by_window: BTreeMap<(u64, u64), Vec<u64>> = BTreeMap::new();
    for i in 0..N {
        by_window.entry((i % 50, i / 100)).or_default().push(i);
    }
    let mut lines = Vec::new();
    for ((key, _), ids) in by_window {
        for i in &ids {
            for j in &ids {
                lines.push(format!("{key},{i},{}", -(*j as i64)));
            }
        }
    }
    lines.sort();
    lines
}

#[test]
fn window_join_output_is_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    let expected = exactly_once_reference();
    assert_eq!(
        expected.len(),
        12_000,
        "two orders and two payments per key and window"
    );
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
