//! Custom triggers and evictors on windows (`window(...).trigger(t)`, `.evictor(e)`) on the
//! mini-cluster with two TaskManagers, on both state backends: count triggers with and
//! without purging against a per-key chunking reference, early firings of a continuous
//! event-time trigger, count and time evictors, count triggers and evictors on session
//! windows (merging sessions sum their counts), triggers that cannot merge refused on
//! sessions, exactly-once through a failure on tumbling and session windows.

mod common;

use common::{backends, env_on, fail_once_after_checkpoint};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use weir_api::functions::FnResult;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{
    ContinuousEventTimeTrigger, CountEvictor, CountTrigger, EventTimeSessionWindows,
    PurgingTrigger, TimeEvictor, TimeWindow, Trigger, TriggerContext, TriggerResult,
    TumblingEventTimeWindows, WindowAssigner,
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

/// Per window, its elements in chunks of `n` (an incomplete last chunk left out), sorted.
fn chunked(windows: BTreeMap<(u8, i64), Vec<i64>>, n: usize) -> Vec<Fired> {
    let mut chunks: Vec<Fired> = windows
        .into_iter()
        .flat_map(|((k, start), ts)| {
            ts.chunks_exact(n)
                .map(|c| (k, start, c.to_vec()))
                .collect::<Vec<_>>()
        })
        .collect();
    chunks.sort();
    chunks
}

#[test]
fn a_purging_count_trigger_fires_every_n_elements_of_a_window_or_session_and_drops_the_rest() {
    let tumbling = TumblingEventTimeWindows::of(Duration::from_secs(1));
    let sessions = EventTimeSessionWindows::with_gap(Duration::from_secs(1));
    let cases = [
        (tumbling, input(), chunked(per_window(&input()), 3)),
        // Each element of a session extends it: every one merges the session.
        (
            sessions,
            session_input(),
            chunked(per_session(&session_input(), 1_000), 3),
        ),
    ];
    for (assigner, input, expected) in cases {
        assert!(expected.len() > 10, "{expected:?}");
        for backend in backends() {
            let env = env_on(backend);
            let out = keyed(&env, input.clone())
                .window(assigner)
                .trigger(PurgingTrigger::of(CountTrigger::of(3)))
                .process(elements);
            assert_eq!(run(&env, out), expected, "{backend:?} {assigner:?}");
        }
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

/// Per key and session (elements at most `gap` apart), the session's start and its
/// elements' times in order.
fn per_session(input: &[Event], gap: i64) -> BTreeMap<(u8, i64), Vec<i64>> {
    let mut sorted = input.to_vec();
    sorted.sort();
    let mut sessions: BTreeMap<(u8, i64), Vec<i64>> = BTreeMap::new();
    let mut open: Option<(u8, i64, i64)> = None; // key, start, last element
    for (k, ts) in sorted {
        let start = match open {
            Some((key, start, last)) if key == k && ts <= last + gap => start,
            _ => ts,
        };
        open = Some((k, start, ts));
        sessions.entry((k, start)).or_default().push(ts);
    }
    sessions
}

fn session_input() -> Vec<Event> {
    // Per key, runs of elements 130 ms apart, broken by gaps of more than a second.
    (0..90)
        .map(|i| ((i % 3) as u8, i * 130 + (i / 20) * 1_500))
        .collect()
}

#[test]
fn session_windows_with_an_evictor_fire_at_their_end_with_what_it_leaves() {
    let mut expected: Vec<Fired> = per_session(&session_input(), 1_000)
        .into_iter()
        .map(|((k, start), ts)| (k, start, ts[ts.len().saturating_sub(2)..].to_vec()))
        .collect();
    expected.sort();
    for backend in backends() {
        let env = env_on(backend);
        let out = keyed(&env, session_input())
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
            .evictor(CountEvictor::of(2))
            .process(elements);
        assert_eq!(run(&env, out), expected, "{backend:?}");
    }
}

#[test]
fn sessions_bridged_by_an_out_of_order_element_merge_their_contents_and_their_counts() {
    // Key 1 opens sessions [0, 1000) and [1500, 2500); 800 arrives last (not late: the
    // watermark lags 5 s) and bridges them.
    // Each session counted one element: the merged one counts three and fires.
    for backend in backends() {
        let env = env_on(backend);
        let out = env
            .from_collection(vec![(1u8, 0i64), (1, 1_500), (2, 100), (1, 800)])
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(5))
                    .with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .set_parallelism(1)
            .key_by(|e: &Event| e.0)
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
            .trigger(CountTrigger::of(3))
            .process(
                |k: &u8, w: &TimeWindow, es: Vec<Event>, out: &mut Vec<Fired>| {
                    let mut times: Vec<i64> = es.iter().map(|e| e.1).collect();
                    times.sort();
                    out.push((*k, w.end, times));
                    Ok(())
                },
            );
        assert_eq!(
            run(&env, out),
            vec![(1, 2_500, vec![0, 800, 1_500])],
            "{backend:?}"
        );
    }
}

/// The windows whose event-time timers fired on [`EndTrigger`].
static END_TIMERS: std::sync::Mutex<Vec<(i64, i64)>> = std::sync::Mutex::new(Vec::new());

/// Fires a window at its end, as `EventTimeTrigger`, and records every event-time timer
/// it is called for.
#[derive(Clone)]
struct EndTrigger;

impl Trigger<Event> for EndTrigger {
    type State = ();

    fn on_element(
        &mut self,
        _: &Event,
        _: i64,
        w: &TimeWindow,
        _: &mut (),
        ctx: &mut TriggerContext,
    ) -> TriggerResult {
        ctx.register_event_time_timer(w.max_timestamp());
        TriggerResult::Continue
    }

    fn on_event_time(
        &mut self,
        time: i64,
        w: &TimeWindow,
        _: &mut (),
        _: &mut TriggerContext,
    ) -> TriggerResult {
        END_TIMERS.lock().unwrap().push((w.start, w.end));
        if time == w.max_timestamp() {
            TriggerResult::Fire
        } else {
            TriggerResult::Continue
        }
    }

    fn on_processing_time(
        &mut self,
        _: i64,
        _: &TimeWindow,
        _: &mut (),
        _: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    fn clear(&mut self, w: &TimeWindow, _: &mut (), ctx: &mut TriggerContext) {
        ctx.delete_event_time_timer(w.max_timestamp());
    }

    fn can_merge(&self) -> bool {
        true
    }

    fn on_merge(&mut self, w: &TimeWindow, _: &[()], _: &mut (), ctx: &mut TriggerContext) {
        ctx.register_event_time_timer(w.max_timestamp());
    }
}

#[test]
fn merged_away_sessions_leave_no_timer_and_late_elements_go_to_the_side_output() {
    use weir_api::functions::OutputTag;
    for backend in backends() {
        END_TIMERS.lock().unwrap().clear();
        let env = env_on(backend);
        let late = OutputTag::<Event>::new("late");
        // Key 1: 800 bridges [0, 1000) and [1500, 2500) within the watermark's 2 s lag;
        // 4000 moves the watermark to 1999, 4500 to 2499 (the merged session fires and is
        // cleaned up), and 1200's session is then late: it goes to the side output.
        let input = vec![
            (1u8, 0i64),
            (1, 1_500),
            (1, 800),
            (1, 4_000),
            (1, 4_500),
            (1, 1_200),
        ];
        let fired = env
            .from_collection(input)
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_secs(2))
                    .with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .set_parallelism(1)
            .key_by(|e: &Event| e.0)
            .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
            .trigger(EndTrigger)
            .side_output_late_data(&late)
            .process(
                |k: &u8, w: &TimeWindow, es: Vec<Event>, out: &mut Vec<Fired>| {
                    let mut times: Vec<i64> = es.iter().map(|e| e.1).collect();
                    times.sort();
                    out.push((*k, w.end, times));
                    Ok(())
                },
            );
        let late_sink = fired.get_side_output(&late).collect();
        let got = run(&env, fired);
        assert_eq!(
            got,
            vec![
                (1, 2_500, vec![0, 800, 1_500]),
                (1, 5_500, vec![4_000, 4_500])
            ],
            "{backend:?}"
        );
        assert_eq!(late_sink.take(), vec![(1, 1_200)], "{backend:?}");
        let mut timers = END_TIMERS.lock().unwrap().clone();
        timers.sort();
        assert_eq!(timers, vec![(0, 2_500), (4_000, 5_500)], "{backend:?}");
    }
}

/// A trigger that does not say it can merge.
#[derive(Clone)]
struct EveryElement;

impl Trigger<Event> for EveryElement {
    type State = ();

    fn on_element(
        &mut self,
        _: &Event,
        _: i64,
        _: &TimeWindow,
        _: &mut (),
        _: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Fire
    }

    fn on_event_time(
        &mut self,
        _: i64,
        _: &TimeWindow,
        _: &mut (),
        _: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }

    fn on_processing_time(
        &mut self,
        _: i64,
        _: &TimeWindow,
        _: &mut (),
        _: &mut TriggerContext,
    ) -> TriggerResult {
        TriggerResult::Continue
    }
}

#[test]
fn session_windows_with_a_trigger_that_cannot_merge_fail_the_job_when_it_is_built() {
    let env = env_on(StateBackendKind::Memory);
    let _ = keyed(&env, input())
        .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
        .trigger(EveryElement)
        .process(elements)
        .collect();
    let err = env.execute("session-trigger").unwrap_err().to_string();
    assert!(
        err.contains("TriggerWindow(Process)") && err.contains("cannot merge"),
        "{err}"
    );
}

#[test]
fn triggered_tumbling_and_session_windows_are_exactly_once_through_a_failure() {
    let tumbling = TumblingEventTimeWindows::of(Duration::from_secs(1));
    let sessions = EventTimeSessionWindows::with_gap(Duration::from_secs(1));
    for (assigner, gaps) in [(tumbling, false), (sessions, true)] {
        let all: Vec<Event> = (0..6_000).map(|i| event_at(i, gaps)).collect();
        let windows = if gaps {
            per_session(&all, 1_000)
        } else {
            per_window(&all)
        };
        let mut expected: Vec<String> = windows
            .into_iter()
            .flat_map(|((k, start), ts)| {
                ts.chunks_exact(4)
                    .map(|c| format!("{k},{start},{}", c.iter().sum::<i64>()))
                    .collect::<Vec<_>>()
            })
            .collect();
        expected.sort();
        exactly_once_through_a_failure(assigner, gaps, &expected);
    }
}

/// Event `i` of the failure test: ten keys, one event per ms; with `gaps`, the events pause
/// for 2 s after every 1,000.
fn event_at(i: u64, gaps: bool) -> Event {
    let pause = if gaps { (i / 1_000) * 2_000 } else { 0 };
    ((i % 10) as u8, (i + pause) as i64)
}

/// Runs 6,000 events through windows of `assigner` under a purging count trigger, with one
/// injected failure, and checks the committed results are `expected`.
fn exactly_once_through_a_failure(assigner: WindowAssigner, gaps: bool, expected: &[String]) {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: u64 = 6_000;
    for backend in backends() {
        SEEN.store(0, Ordering::SeqCst);
        FAILED.store(false, Ordering::SeqCst);
        let checkpoints = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let env = env_on(backend);
        common::checkpoint_and_restart(&env, checkpoints.path());
        let lines = env
            .from_generator(
                GeneratorSource::new(Some(N), move |i| event_at(i, gaps)).with_rate_limit(6_000),
            )
            .set_parallelism(1)
            .map(fail_once_after_checkpoint(
                &SEEN,
                &FAILED,
                3_001,
                checkpoints.path(),
            ))
            .set_parallelism(1)
            .assign_timestamps_and_watermarks(
                WatermarkStrategy::for_monotonous_timestamps()
                    .with_timestamp_assigner(|e: &Event, _| e.1),
            )
            .set_parallelism(1)
            .key_by(|e: &Event| e.0)
            .window(assigner)
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
        let run = (backend, assigner);
        common::sink_and_check_exactly_once(&env, lines, out, name, &FAILED, run, expected);
    }
}
