//! Custom triggers and evictors on windows (`window(...).trigger(t)`, `.evictor(e)`) on the
//! mini-cluster with two TaskManagers, on both state backends: count triggers with and
//! without purging against a per-key chunking reference, early firings of a continuous
//! event-time trigger, count and time evictors, session windows refused, exactly-once
//! through a failure.

mod common;

use common::{backends, env_on, fail_once};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weir_api::functions::FnResult;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{
    ContinuousEventTimeTrigger, CountEvictor, CountTrigger, EventTimeSessionWindows,
    PurgingTrigger, TimeEvictor, TimeWindow, TumblingEventTimeWindows,
};
use weir_api::{
    DataStream, GeneratorSource, KeyedStream, StateBackendKind, StreamExecutionEnvironment,
};

type Event = (u8, i64); // (key, event time ms); the value is the time
type Fired = (u8, i64, Vec<i64>); // key, window start, the elements' times

/// `input` in event-time order from one source subtask, a watermark after each record.
fn keyed(env: &StreamExecutionEnvironment, mut input: Vec<Event>) -> KeyedStream<u8, Event> {
    input.sort_by_key(|e| e.1);
    env.from_collection(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|e: &Event, _| e.1),
        )
        .set_parallelism(1)
        .key_by(|e: &Event| e.0)
}

fn elements(k: &u8, w: &TimeWindow, es: Vec<Event>, out: &mut Vec<Fired>) -> FnResult {
    out.push((*k, w.start, es.iter().map(|e| e.1).collect()));
    Ok(())
}

fn run(env: &StreamExecutionEnvironment, out: DataStream<Fired>) -> Vec<Fired> {
    let sink = out.collect();
    env.execute("triggers").unwrap();
    let mut got = sink.take();
    got.sort();
    got
}

/// Per key and 1 s window, the elements' times in order.
fn per_window(input: &[Event]) -> BTreeMap<(u8, i64), Vec<i64>> {
    let mut sorted = input.to_vec();
    sorted.sort_by_key(|e| e.1);
    let mut windows: BTreeMap<(u8, i64), Vec<i64>> = BTreeMap::new();
    for (k, ts) in sorted {
        windows.entry((k, ts - ts % 1000)).or_default().push(ts);
    }
    windows
}

fn input() -> Vec<Event> {
    (0..60).map(|i| ((i % 3) as u8, i * 97 % 2900)).collect()
}

#[test]
fn a_purging_count_trigger_fires_every_n_elements_of_a_window_and_drops_the_rest() {
    let mut expected: Vec<Fired> = per_window(&input())
        .into_iter()
        .flat_map(|((k, start), ts)| {
            ts.chunks_exact(3)
                .map(|c| (k, start, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    expected.sort();
    for backend in backends() {
        let env = env_on(backend);
        let out = keyed(&env, input())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .trigger(PurgingTrigger::of(CountTrigger::of(3)))
            .process(elements);
        assert_eq!(run(&env, out), expected, "{backend:?}");
    }
}

#[test]
fn a_count_trigger_without_purging_fires_with_every_element_so_far() {
    let mut expected: Vec<Fired> = per_window(&input())
        .into_iter()
        .flat_map(|((k, start), ts)| {
            (2..=ts.len())
                .step_by(2)
                .map(move |n| (k, start, ts[..n].to_vec()))
        })
        .collect();
    expected.sort();
    let env = env_on(StateBackendKind::Memory);
    let out = keyed(&env, input())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .trigger(CountTrigger::of(2))
        .process(elements);
    assert_eq!(run(&env, out), expected);
}

#[test]
fn a_continuous_event_time_trigger_fires_early_every_interval_and_at_the_end() {
    for backend in backends() {
        let env = env_on(backend);
        let times = [0, 100, 350, 650, 700, 950];
        let out = keyed(&env, times.iter().map(|t| (1, *t)).collect())
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .trigger(ContinuousEventTimeTrigger::of(Duration::from_millis(300)))
            .process(elements);
        let sink = out.collect();
        env.execute("continuous").unwrap();
        // Watermark 349 fires 300, 649 fires 600, 949 fires 900, the end of input fires 999.
        let sizes: Vec<usize> = sink.take().iter().map(|f| f.2.len()).collect();
        assert_eq!(sizes, vec![3, 4, 6, 6], "{backend:?}");
    }
}

#[test]
fn evictors_leave_the_function_the_last_elements_by_count_or_time() {
    let env = env_on(StateBackendKind::Memory);
    let times = vec![(1, 100), (1, 200), (1, 700), (1, 900), (2, 50)];
    let by_count = keyed(&env, times.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .evictor(CountEvictor::of(2))
        .process(elements);
    let by_time = keyed(&env, times)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .evictor(TimeEvictor::of(Duration::from_millis(250)))
        .process(elements);
    let (by_count, by_time) = (by_count.collect(), by_time.collect());
    env.execute("evictors").unwrap();
    let sorted = |mut v: Vec<Fired>| {
        v.sort();
        v
    };
    assert_eq!(
        sorted(by_count.take()),
        vec![(1, 0, vec![700, 900]), (2, 0, vec![50])]
    );
    assert_eq!(
        sorted(by_time.take()),
        vec![(1, 0, vec![700, 900]), (2, 0, vec![50])]
    );
}

#[test]
fn session_windows_with_a_custom_trigger_fail_the_job_when_it_is_built() {
    let env = env_on(StateBackendKind::Memory);
    let _ = keyed(&env, input())
        .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
        .trigger(CountTrigger::of(2))
        .process(elements)
        .collect();
    let err = env.execute("session-trigger").unwrap_err().to_string();
    assert!(
        err.contains("TriggerWindow(Process)") && err.contains("session windows take neither"),
        "{err}"
    );
}

#[test]
fn triggered_windows_are_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: u64 = 6_000;
    let all: Vec<Event> = (0..N as i64).map(|i| ((i % 10) as u8, i)).collect();
    let mut expected: Vec<String> = per_window(&all)
        .into_iter()
        .flat_map(|((k, start), ts)| {
            ts.chunks_exact(4)
                .map(|c| format!("{k},{start},{}", c.iter().sum::<i64>()))
                .collect::<Vec<_>>()
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
                GeneratorSource::new(Some(N), |i| ((i % 10) as u8, i as i64))
                    .with_rate_limit(6_000),
            )
            .set_parallelism(1)
            .map(fail_once(&SEEN, &FAILED, 3_001))
            .set_parallelism(1)
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_monotonous_timestamps()
                    .with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .set_parallelism(1)
            .key_by(|e: &Event| e.0)
            .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
            .trigger(PurgingTrigger::of(CountTrigger::of(4)))
            .process(
                |k: &u8, w: &TimeWindow, es: Vec<Event>, out: &mut Vec<String>| -> FnResult {
                    out.push(format!(
                        "{k},{},{}",
                        w.start,
                        es.iter().map(|e| e.1).sum::<i64>()
                    ));
                    Ok(())
                },
            )
            .uid("triggered");
        let (out, name) = (out.path(), "trigger-exactly-once");
        common::sink_and_check_exactly_once(&env, lines, out, name, &FAILED, backend, &expected);
    }
}
