//! Keyed state, timers, side outputs and connected streams on the mini-cluster.

use std::collections::BTreeMap;
use std::time::Duration;
use weir_api::time::WatermarkStrategy;
use weir_api::window::{TimeWindow, TumblingEventTimeWindows};
use weir_api::{
    AggregateFunction, Context, FnResult, KeyedContext, KeyedProcessFunction, MapState, OutputTag,
    ProcessFunction, RuntimeContext, StreamExecutionEnvironment, ValueState,
};

fn env(parallelism: u16) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_local_taskmanagers(2)
        .set_auto_watermark_interval(Duration::ZERO);
    env
}

#[test]
fn keyed_reduce_emits_a_running_result_per_key_across_taskmanagers() {
    let env = env(2);
    let out = env
        .from_collection((0..10_000u32).map(|i| (i % 100, 1u64)).collect())
        .rebalance()
        .key_by(|r: &(u32, u64)| r.0)
        .reduce(|a, b| (a.0, a.1 + b.1))
        .collect();
    env.execute("keyed-reduce").unwrap();
    let got = out.take();
    assert_eq!(got.len(), 10_000);
    let mut finals: BTreeMap<u32, u64> = BTreeMap::new();
    for (k, c) in got {
        let e = finals.entry(k).or_default();
        *e = (*e).max(c);
    }
    assert_eq!(finals.len(), 100);
    assert!(finals.values().all(|c| *c == 100));
}

#[derive(Clone)]
struct Avg;
impl AggregateFunction<(String, f64), (u64, f64), f64> for Avg {
    fn create_accumulator(&self) -> (u64, f64) {
        (0, 0.0)
    }
    fn add(&self, v: (String, f64), acc: &mut (u64, f64)) {
        acc.0 += 1;
        acc.1 += v.1;
    }
    fn get_result(&self, acc: &(u64, f64)) -> f64 {
        acc.1 / acc.0 as f64
    }
    fn merge(&self, a: (u64, f64), b: (u64, f64)) -> (u64, f64) {
        (a.0 + b.0, a.1 + b.1)
    }
}

#[test]
fn keyed_aggregate_emits_the_running_aggregate() {
    let env = env(1);
    let input = vec![
        ("x".to_string(), 1.0),
        ("x".to_string(), 3.0),
        ("y".to_string(), 10.0),
    ];
    let out = env
        .from_collection(input)
        .key_by(|r: &(String, f64)| r.0.clone())
        .aggregate(Avg)
        .collect();
    env.execute("keyed-aggregate").unwrap();
    assert_eq!(out.take(), vec![1.0, 2.0, 10.0]);
}

/// Emits, per key, the number of records seen when an event-time timer fires 100 ms after
/// the key's first record; duplicates of a key's first value go to a side output.
#[derive(Clone)]
struct CountThenReport;

struct Handles {
    count: ValueState<String, weir_api::VoidNamespace, u64>,
    seen: MapState<String, weir_api::VoidNamespace, i64, ()>,
}

fn dup_tag() -> OutputTag<(String, i64)> {
    OutputTag::new("duplicates")
}

impl KeyedProcessFunction<String, (String, i64), (String, u64, i64)> for CountThenReport {
    type State = Handles;
    fn open(&mut self, ctx: &RuntimeContext<String>) -> FnResult<Handles> {
        Ok(Handles {
            count: ctx.value_state("count")?,
            seen: ctx.map_state("seen")?,
        })
    }
    fn process_element(
        &mut self,
        value: (String, i64),
        state: &mut Handles,
        ctx: &mut KeyedContext<'_, String, (String, u64, i64)>,
    ) -> FnResult {
        let (count, seen) = (&state.count, &state.seen);
        if seen.contains(&value.1)? {
            ctx.output(&dup_tag(), value);
            return Ok(());
        }
        seen.put(value.1, ())?;
        let n = count.modify(|c| {
            let n = c.unwrap_or(0) + 1;
            *c = Some(n);
            n
        })?;
        if n == 1 {
            ctx.register_event_time_timer(ctx.timestamp().expect("timestamped") + 100);
        }
        Ok(())
    }
    fn on_timer(
        &mut self,
        ts: i64,
        state: &mut Handles,
        ctx: &mut KeyedContext<'_, String, (String, u64, i64)>,
    ) -> FnResult {
        let count = &state.count;
        let n = count.value()?.unwrap_or(0);
        count.clear()?;
        ctx.collect((ctx.current_key().clone(), n, ts));
        Ok(())
    }
}

#[test]
fn keyed_process_function_keeps_state_per_key_fires_event_timers_and_emits_side_outputs() {
    let env = env(2);
    let input = vec![
        ("a".to_string(), 0),
        ("b".to_string(), 10),
        ("a".to_string(), 50),
        ("a".to_string(), 50),
        ("a".to_string(), 120),
        ("b".to_string(), 400),
    ];
    let processed = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|r: &(String, i64), _| r.1),
        )
        .set_parallelism(1) // one watermark generator, emitting after every record
        .key_by(|r: &(String, i64)| r.0.clone())
        .process(CountThenReport);
    let dups = processed.get_side_output(&dup_tag()).collect();
    let out = processed.collect();
    env.execute("keyed-process").unwrap();
    let mut got = out.take();
    got.sort();
    // Each watermark follows its record in order on every channel: a@120 is counted before
    // watermark 119 fires a's timer at 100 (count 3: 0, 50, 120); the same watermark fires
    // b's timer at 110 (count 1), and b@400 starts a new count reported at 500.
    assert_eq!(
        got,
        vec![
            ("a".to_string(), 3, 100),
            ("b".to_string(), 1, 110),
            ("b".to_string(), 1, 500)
        ]
    );
    assert_eq!(dups.take(), vec![("a".to_string(), 50)]);
}

#[derive(Clone)]
struct Splitter;
impl ProcessFunction<i32, i32> for Splitter {
    fn process_element(&mut self, v: i32, ctx: &mut Context<'_, i32>) -> FnResult {
        if v < 0 {
            ctx.output(&OutputTag::<String>::new("negative"), format!("neg:{v}"));
        } else {
            ctx.collect(v * 10);
        }
        Ok(())
    }
}

#[test]
fn process_function_splits_into_main_and_side_output_of_another_type() {
    let env = env(2);
    let main = env
        .from_collection(vec![1, -2, 3, -4])
        .rebalance()
        .process(Splitter);
    let neg = main
        .get_side_output(&OutputTag::<String>::new("negative"))
        .collect();
    let pos = main.collect();
    env.execute("side-outputs").unwrap();
    let mut p = pos.take();
    p.sort();
    let mut n = neg.take();
    n.sort();
    assert_eq!(p, vec![10, 30]);
    assert_eq!(n, vec!["neg:-2".to_string(), "neg:-4".to_string()]);
}

#[test]
fn a_failing_process_function_fails_the_job_with_its_error() {
    #[derive(Clone)]
    struct Fails;
    impl ProcessFunction<i32, i32> for Fails {
        fn process_element(&mut self, v: i32, _ctx: &mut Context<'_, i32>) -> FnResult {
            if v == 3 {
                return Err(format!("cannot handle {v}").into());
            }
            Ok(())
        }
    }
    let env = env(1);
    let _ = env
        .from_collection(vec![1, 2, 3])
        .process(Fails)
        .name("picky")
        .collect();
    let err = env.execute("fails").unwrap_err().to_string();
    assert!(
        err.contains("picky") && err.contains("cannot handle 3"),
        "{err}"
    );
}

#[test]
fn connected_streams_co_map_merges_two_types_with_skewed_inputs() {
    let env = env(2);
    let numbers = env.from_collection((0..5000u32).collect()).rebalance();
    let words = env.from_collection(vec!["x".to_string(), "yy".to_string()]);
    let out = numbers
        .connect(&words)
        .map(|n: u32| n as usize, |w: String| 100_000 + w.len())
        .collect();
    env.execute("connect").unwrap();
    let mut got = out.take();
    got.sort();
    let mut want: Vec<usize> = (0..5000).collect();
    want.extend([100_001, 100_002]);
    assert_eq!(got, want);
}

#[test]
fn an_idle_input_does_not_hold_back_event_time_windows() {
    // Two sources feed one window through a union: one emits timestamped records, the other
    // is a socket-free generator that stays silent (an empty collection would end, so use a
    // source that only idles) and is marked idle after 50 ms.
    use weir_api::source::{SourceContext, SourceFunction, SourceReader};
    use weir_api::{SourceStep, TaskError};
    struct Silent;
    struct SilentReader(std::time::Instant);
    impl SourceFunction<(String, i64)> for Silent {
        fn create_reader(
            &self,
            _c: &SourceContext,
        ) -> Result<Box<dyn SourceReader<(String, i64)>>, TaskError> {
            Ok(Box::new(SilentReader(std::time::Instant::now())))
        }
    }
    impl SourceReader<(String, i64)> for SilentReader {
        fn poll(
            &mut self,
            _o: &mut dyn weir_api::Output<(String, i64)>,
            _m: usize,
        ) -> Result<SourceStep, TaskError> {
            // Ends after 3 s: long after the window below must have fired through idleness.
            if self.0.elapsed() > Duration::from_secs(3) {
                return Ok(SourceStep::Finished);
            }
            Ok(SourceStep::Idle(Duration::from_millis(10)))
        }
        fn snapshot_splits(
            &mut self,
            _checkpoint: weir_runtime::CheckpointId,
        ) -> Result<Option<Vec<Vec<u8>>>, TaskError> {
            Ok(None)
        }
        fn restore_splits(&mut self, _p: Vec<Vec<u8>>) -> Result<(), TaskError> {
            Ok(())
        }
    }
    let env = env(1);
    let strategy = || {
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|r: &(String, i64), _| r.1)
            .with_idleness(Duration::from_millis(50))
    };
    let silent = env
        .add_source(Silent, "silent")
        .assign_timestamps_and_watermarks(strategy());
    let fired_at = std::sync::Arc::new(std::sync::Mutex::new(None));
    let f2 = fired_at.clone();
    let start = std::time::Instant::now();
    let _ = env
        .from_collection(vec![("k".to_string(), 10), ("k".to_string(), 2000)])
        .assign_timestamps_and_watermarks(strategy())
        .union(&[&silent])
        .key_by(|r: &(String, i64)| r.0.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
        .reduce_with_window(|a, _| a, |_k: &String, w: &TimeWindow, _v| w.start)
        .map(move |w| {
            let mut f = f2.lock().unwrap();
            if f.is_none() {
                *f = Some(start.elapsed());
            }
            w
        })
        .collect();
    env.execute("idleness").unwrap();
    let first = fired_at.lock().unwrap().expect("a window fired");
    assert!(
        first < Duration::from_secs(3),
        "window [0,1000) waited for the idle source: {first:?}"
    );
}

/// Registers a processing-time timer `delay_ms` ahead, once per key until it fires.
fn arm_once<O>(
    armed: &ValueState<u64, weir_api::VoidNamespace, bool>,
    ctx: &mut KeyedContext<'_, u64, O>,
    delay_ms: i64,
) -> FnResult {
    if armed.value()?.is_none() {
        armed.update(true)?;
        let now = ctx.current_processing_time();
        ctx.register_processing_time_timer(now + delay_ms);
    }
    Ok(())
}

#[derive(Clone)]
struct Heartbeat;

impl KeyedProcessFunction<u64, u64, u64> for Heartbeat {
    type State = ValueState<u64, weir_api::VoidNamespace, bool>;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        ctx.value_state("armed")
    }
    fn process_element(
        &mut self,
        _v: u64,
        armed: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, u64>,
    ) -> FnResult {
        arm_once(armed, ctx, 20)
    }
    fn on_timer(
        &mut self,
        _ts: i64,
        armed: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, u64>,
    ) -> FnResult {
        armed.clear()?;
        ctx.collect(*ctx.current_key());
        Ok(())
    }
}

#[test]
fn keyed_processing_time_timers_fire_while_the_job_runs() {
    // 300 records at 1,000 records/s: the job runs for at least ~300 ms, so timers set 20 ms
    // after each key's first record are due long before the input ends.
    let env = env(1);
    let out = env
        .from_generator(weir_api::GeneratorSource::new(Some(300), |i| i % 2).with_rate_limit(1000))
        .key_by(|k: &u64| *k)
        .process(Heartbeat)
        .collect();
    env.execute("processing-time-timers").unwrap();
    let mut fired = out.take();
    fired.sort();
    fired.dedup();
    assert_eq!(fired, vec![0, 1]);
}

#[test]
fn two_streams_reading_the_same_side_output_both_get_every_record() {
    let env = env(1);
    let tag = OutputTag::<String>::new("negative");
    let main = env.from_collection(vec![1, -2, 3, -4]).process(Splitter);
    let a = main.get_side_output(&tag).collect();
    let b = main.get_side_output(&tag).collect();
    let _ = main.collect();
    env.execute("side-output-twice").unwrap();
    assert_eq!(a.take().len(), 2);
    assert_eq!(b.take().len(), 2);
}

#[test]
fn a_side_output_of_an_operator_that_emits_none_is_rejected_at_build_time() {
    let env = env(1);
    let mapped = env.from_collection(vec![1u8]).map(|x| x).name("plain-map");
    let _ = mapped.get_side_output(&OutputTag::<u8>::new("t")).collect();
    let _ = mapped.collect();
    let err = env.execute("bad-side-output").unwrap_err().to_string();
    assert!(
        err.contains("plain-map") && err.contains("emits no side outputs"),
        "{err}"
    );
}

#[derive(Clone)]
struct Chain;

impl KeyedProcessFunction<u8, (u8, i64), i64> for Chain {
    type State = ();
    fn open(&mut self, _ctx: &RuntimeContext<u8>) -> FnResult<()> {
        Ok(())
    }
    fn process_element(
        &mut self,
        v: (u8, i64),
        _s: &mut (),
        ctx: &mut KeyedContext<'_, u8, i64>,
    ) -> FnResult {
        ctx.register_event_time_timer(v.1);
        Ok(())
    }
    fn on_timer(&mut self, ts: i64, _s: &mut (), ctx: &mut KeyedContext<'_, u8, i64>) -> FnResult {
        ctx.collect(ts);
        if ts < 30 {
            // Due at once: must fire before the watermark that fired this one moves on.
            ctx.register_event_time_timer(ts + 10);
        }
        Ok(())
    }
}

#[test]
fn timers_registered_while_timers_fire_fire_before_the_watermark_moves_on() {
    let env = env(1);
    let out = env
        .from_collection(vec![(1u8, 10i64)])
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::<(u8, i64)>::no_watermarks()
                .with_timestamp_assigner(|r: &(u8, i64), _| r.1),
        )
        .key_by(|r: &(u8, i64)| r.0)
        .process(Chain)
        .collect();
    env.execute("chained-timers").unwrap();
    // The final watermark fires 10, which registers 20, which registers 30: all before the end.
    assert_eq!(out.take(), vec![10, 20, 30]);
}

#[derive(Clone)]
struct StampCheck;

impl KeyedProcessFunction<u64, u64, Option<i64>> for StampCheck {
    type State = ValueState<u64, weir_api::VoidNamespace, bool>;
    fn open(&mut self, ctx: &RuntimeContext<u64>) -> FnResult<Self::State> {
        ctx.value_state("armed")
    }
    fn process_element(
        &mut self,
        _v: u64,
        armed: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, Option<i64>>,
    ) -> FnResult {
        arm_once(armed, ctx, 10)
    }
    fn on_timer(
        &mut self,
        _ts: i64,
        _s: &mut Self::State,
        ctx: &mut KeyedContext<'_, u64, Option<i64>>,
    ) -> FnResult {
        ctx.collect(ctx.timestamp());
        Ok(())
    }
}

#[test]
fn output_of_processing_time_timers_carries_no_event_timestamp() {
    let env = env(1);
    let out = env
        .from_generator(weir_api::GeneratorSource::new(Some(200), |i| i % 2).with_rate_limit(1000))
        .key_by(|k: &u64| *k)
        .process(StampCheck)
        .collect();
    env.execute("processing-time-stamps").unwrap();
    let got = out.take();
    assert!(!got.is_empty());
    assert!(got.iter().all(Option::is_none), "{got:?}");
}

#[derive(Clone)]
struct PanicsAfterCollect;
impl ProcessFunction<i32, i32> for PanicsAfterCollect {
    fn process_element(&mut self, v: i32, ctx: &mut Context<'_, i32>) -> FnResult {
        ctx.collect(v);
        if v == 2 {
            panic!("after collecting {v}");
        }
        Ok(())
    }
}

#[test]
fn a_panic_after_emitting_is_attributed_to_the_emitting_operator() {
    let env = env(1);
    let _ = env
        .from_collection(vec![1, 2, 3])
        .process(PanicsAfterCollect)
        .name("emits-then-panics")
        .collect();
    let err = env.execute("attribution").unwrap_err().to_string();
    assert!(
        err.contains("emits-then-panics") && err.contains("after collecting 2"),
        "{err}"
    );
}
