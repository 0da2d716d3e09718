//! Count windows (`count_window`, `count_window_sliding`) on the mini-cluster with two
//! TaskManagers, on both state backends: tumbling and sliding windows against a reference
//! that chunks each key's records in order; incomplete windows do not fire; exactly-once
//! through a failure.

mod common;

use common::{backends, env_on, fail_once_after_checkpoint};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use weir_api::functions::FnResult;
use weir_api::{
    AggregateFunction, DataStream, GeneratorSource, StateBackendKind, StreamExecutionEnvironment,
};

type Reading = (u8, i64); // (key, value)

/// `input` from one source subtask, so each key's records arrive in input order.
fn ordered(env: &StreamExecutionEnvironment, input: Vec<Reading>) -> DataStream<Reading> {
    env.from_collection(input).set_parallelism(1)
}

/// Each key's values in input order.
fn per_key(input: &[Reading]) -> BTreeMap<u8, Vec<i64>> {
    let mut keys: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    for (k, v) in input {
        keys.entry(*k).or_default().push(*v);
    }
    keys
}

/// The windows `count_window_sliding(size, slide)` fires: per key, after every `slide`th
/// record, its last `size` records.
fn reference_windows(input: &[Reading], size: usize, slide: usize) -> Vec<(u8, Vec<i64>)> {
    let mut windows = Vec::new();
    for (k, values) in per_key(input) {
        for n in (slide..=values.len()).step_by(slide) {
            windows.push((k, values[n.saturating_sub(size)..n].to_vec()));
        }
    }
    windows.sort();
    windows
}

fn windows_of(
    backend: StateBackendKind,
    input: &[Reading],
    (size, slide): (u64, u64),
) -> Vec<(u8, Vec<i64>)> {
    let env = env_on(backend);
    let out = ordered(&env, input.to_vec())
        .key_by(|r: &Reading| r.0)
        .count_window_sliding(size, slide)
        .process(
            |k: &u8, rs: Vec<Reading>, out: &mut Vec<(u8, Vec<i64>)>| -> FnResult {
                out.push((*k, rs.into_iter().map(|r| r.1).collect()));
                Ok(())
            },
        )
        .collect();
    env.execute("count-windows").unwrap();
    let mut got = out.take();
    got.sort();
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, .. ProptestConfig::default() })]
    #[test]
    fn count_windows_fire_every_slide_records_over_the_last_size_records_of_a_key(
        input in proptest::collection::vec((0u8..4, -100i64..100), 0..80),
        size in 1u64..6,
        slide in 1u64..6,
    ) {
        let got = windows_of(StateBackendKind::Memory, &input, (size, slide));
        prop_assert_eq!(got, reference_windows(&input, size as usize, slide as usize));
    }
}

#[test]
fn sliding_count_windows_give_the_same_windows_on_both_state_backends() {
    let input: Vec<Reading> = (0..40).map(|i| ((i % 3) as u8, i)).collect();
    for backend in backends() {
        assert_eq!(
            windows_of(backend, &input, (4, 3)),
            reference_windows(&input, 4, 3),
            "{backend:?}"
        );
    }
}

#[derive(Clone)]
struct MinMax;

impl AggregateFunction<Reading, Option<(i64, i64)>, (i64, i64)> for MinMax {
    fn create_accumulator(&self) -> Option<(i64, i64)> {
        None
    }
    fn add(&self, r: Reading, acc: &mut Option<(i64, i64)>) {
        *acc = Some(acc.map_or((r.1, r.1), |(lo, hi)| (lo.min(r.1), hi.max(r.1))));
    }
    fn get_result(&self, acc: &Option<(i64, i64)>) -> (i64, i64) {
        acc.expect("a fired count window holds records")
    }
    fn merge(&self, _: Option<(i64, i64)>, _: Option<(i64, i64)>) -> Option<(i64, i64)> {
        unreachable!("count windows never merge")
    }
}

#[test]
fn tumbling_count_windows_aggregate_and_reduce_every_complete_window_only() {
    // Key 0 gets 7 records: two windows of 3 fire, the seventh record never does.
    let input: Vec<Reading> = (0..14).map(|i| ((i % 2) as u8, i * 10)).collect();
    for backend in backends() {
        let env = env_on(backend);
        let keyed = ordered(&env, input.clone()).key_by(|r: &Reading| r.0);
        let ranges = keyed.count_window(3).aggregate(MinMax).collect();
        let sums = keyed
            .count_window(3)
            .reduce(|a, b| (a.0, a.1 + b.1))
            .collect();
        env.execute("tumbling-count").unwrap();
        let mut ranges = ranges.take();
        ranges.sort();
        assert_eq!(
            ranges,
            vec![(0, 40), (10, 50), (60, 100), (70, 110)],
            "{backend:?}"
        );
        let mut sums = sums.take();
        sums.sort();
        assert_eq!(
            sums,
            vec![(0, 60), (0, 240), (1, 90), (1, 270)],
            "{backend:?}"
        );
    }
}

#[test]
fn count_window_output_is_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: u64 = 6_000;
    let input: Vec<Reading> = (0..N as i64).map(|i| ((i % 20) as u8, i)).collect();
    let mut expected: Vec<String> = reference_windows(&input, 5, 2)
        .into_iter()
        .map(|(k, w)| {
            format!(
                "{k},{}",
                w.iter().map(i64::to_string).collect::<Vec<_>>().join(" ")
            )
        })
        .collect();
    expected.sort();
    for backend in backends() {
        SEEN.store(0, Ordering::SeqCst);
        FAILED.store(false, Ordering::SeqCst);
        let checkpoints = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let env = env_on(backend);
        common::checkpoint_and_restart(&env, checkpoints.path());
        let lines = env
            .from_generator(
                GeneratorSource::new(Some(N), |i| ((i % 20) as u8, i as i64))
                    .with_rate_limit(6_000),
            )
            .set_parallelism(1)
            .map(fail_once_after_checkpoint(
                &SEEN,
                &FAILED,
                3_001,
                checkpoints.path(),
            ))
            .set_parallelism(1)
            .key_by(|r: &Reading| r.0)
            .count_window_sliding(5, 2)
            .process(
                |k: &u8, rs: Vec<Reading>, out: &mut Vec<String>| -> FnResult {
                    let values: Vec<String> = rs.iter().map(|r| r.1.to_string()).collect();
                    out.push(format!("{k},{}", values.join(" ")));
                    Ok(())
                },
            )
            .uid("count-windows");
        let (out, name) = (out.path(), "count-exactly-once");
        common::sink_and_check_exactly_once(&env, lines, out, name, &FAILED, backend, &expected);
    }
}
