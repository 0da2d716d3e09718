//! Broadcast state (`broadcast_with`, `connect`, `(Keyed)BroadcastProcessFunction`) on the
//! mini-cluster with two TaskManagers: every subtask gets every broadcast record; keyed
//! records read the rules the broadcast side keeps, on both state backends; the broadcast
//! and keyed state are exactly-once through a failure and restore from a savepoint at
//! another parallelism.
//!
//! The keyed job buffers each event in keyed state until the watermark passes it, and only
//! then reads the rules: the rules source is bounded and holds the watermark back until it
//! ended, so every event sees every rule, whatever the order in which the two inputs arrive.

mod common;

use common::{backends, env_on, fail_once_after_checkpoint};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_api::broadcast::{
    BroadcastProcessFunction, BroadcastState, KeyedBroadcastContext, KeyedBroadcastProcessFunction,
    MapStateDescriptor,
};
use weir_api::functions::{Context, FnResult, KeyedContext, RuntimeContext};
use weir_api::sink::FileSink;
use weir_api::time::WatermarkStrategy;
use weir_api::{
    DataStream, GeneratorSource, ListState, SavepointRestoreSettings, StateBackendKind,
    StreamExecutionEnvironment, Timestamp, VoidNamespace,
};

type Rule = (String, Option<i64>); // (kind, threshold; None removes the kind's rule)
type Event = (u8, String, i64, i64); // (key, kind, event time ms, value)
type Checked = (u8, i64, i64, Option<i64>); // key, event time, value, threshold in force

const KINDS: [&str; 3] = ["hot", "cold", "warm"];

fn rules() -> Vec<Rule> {
    let r = |k: &str, t| (k.to_string(), t);
    vec![
        r("hot", Some(50)),
        r("cold", Some(10)),
        r("warm", Some(30)),
        r("warm", None),
        r("hot", Some(80)),
    ]
}

/// The threshold of each kind once every rule of [`rules`] applied.
fn final_threshold(kind: &str) -> Option<i64> {
    match kind {
        "hot" => Some(80),
        "cold" => Some(10),
        _ => None,
    }
}

fn event(i: u64) -> Event {
    let kind = KINDS[(i % 3) as usize].to_string();
    ((i % 7) as u8, kind, i as i64, (i % 100) as i64)
}

fn descriptor() -> MapStateDescriptor<String, i64> {
    MapStateDescriptor::new("thresholds")
}

/// Buffers each event until the watermark passes it, then emits it with the threshold of
/// its kind in force; counts the rules it applied in `applied` (all subtasks together).
#[derive(Clone, Default)]
struct CheckAgainstRules {
    applied: Arc<AtomicU64>,
}

impl KeyedBroadcastProcessFunction<u8, Event, Rule, Checked, String, i64> for CheckAgainstRules {
    type State = ListState<u8, VoidNamespace, Event>;

    fn open(&mut self, ctx: &RuntimeContext<u8>) -> FnResult<Self::State> {
        ctx.list_state("pending")
    }

    fn process_element(
        &mut self,
        e: Event,
        pending: &mut Self::State,
        _rules: &BroadcastState<String, i64>,
        ctx: &mut KeyedContext<'_, u8, Checked>,
    ) -> FnResult {
        ctx.register_event_time_timer(e.2);
        pending.add(e)?;
        Ok(())
    }

    fn process_broadcast_element(
        &mut self,
        (kind, threshold): Rule,
        _pending: &mut Self::State,
        rules: &mut BroadcastState<String, i64>,
        _ctx: &mut KeyedBroadcastContext<'_, u8, Checked>,
    ) -> FnResult {
        match threshold {
            Some(t) => rules.put(kind, t),
            None => {
                rules.remove(&kind);
            }
        }
        self.applied.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timestamp: Timestamp,
        pending: &mut Self::State,
        rules: &BroadcastState<String, i64>,
        ctx: &mut KeyedContext<'_, u8, Checked>,
    ) -> FnResult {
        let (due, later): (Vec<Event>, Vec<Event>) =
            pending.take()?.into_iter().partition(|e| e.2 <= timestamp);
        pending.update(later)?;
        for e in due {
            ctx.collect((e.0, e.2, e.3, rules.get(&e.1).copied()));
        }
        Ok(())
    }
}

/// Rules from one source subtask (`uid`), in order, all at event time 0.
fn rule_stream(env: &StreamExecutionEnvironment, rules: Vec<Rule>, uid: &str) -> DataStream<Rule> {
    env.from_collection(rules)
        .uid(uid)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps().with_timestamp_assigner(|_: &Rule, _| 0),
        )
        .set_parallelism(1)
}

fn by_event_time() -> WatermarkStrategy<Event> {
    WatermarkStrategy::for_bounded_out_of_orderness(Duration::from_millis(20))
        .with_timestamp_assigner(|e: &Event, _| e.2)
}

fn check(events: DataStream<Event>, rules: DataStream<Rule>) -> DataStream<Checked> {
    check_counting(events, rules, CheckAgainstRules::default())
}

fn check_counting(
    events: DataStream<Event>,
    rules: DataStream<Rule>,
    f: CheckAgainstRules,
) -> DataStream<Checked> {
    events
        .key_by(|e: &Event| e.0)
        .connect(&rules.broadcast_with(&descriptor()))
        .process(f)
        .uid("check")
}

fn line(c: &Checked) -> String {
    let threshold = c.3.map_or("-".to_string(), |t| t.to_string());
    format!("{},{},{},{threshold}", c.0, c.1, c.2)
}

fn expected_lines(ids: std::ops::Range<u64>) -> Vec<String> {
    let mut lines: Vec<String> = ids
        .map(|i| {
            let (k, kind, ts, v) = event(i);
            line(&(k, ts, v, final_threshold(&kind)))
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn keyed_records_read_the_rules_the_broadcast_side_keeps_on_both_state_backends() {
    for backend in backends() {
        let env = env_on(backend);
        let events = env
            .from_collection((0..500).map(event).collect::<Vec<_>>())
            .assign_timestamps_and_watermarks(by_event_time());
        let out = check(events, rule_stream(&env, rules(), "rules")).collect();
        env.execute("broadcast-keyed").unwrap();
        let mut got: Vec<String> = out.take().iter().map(line).collect();
        got.sort();
        assert_eq!(got, expected_lines(0..500), "{backend:?}");
    }
}

/// Emits, on the broadcast side, how many rules the subtask holds after each one; on the
/// data side, each value.
#[derive(Clone)]
struct CountRules;

impl BroadcastProcessFunction<u64, Rule, String, String, i64> for CountRules {
    fn process_element(
        &mut self,
        value: u64,
        _rules: &BroadcastState<String, i64>,
        ctx: &mut Context<'_, String>,
    ) -> FnResult {
        ctx.collect(format!("value {value}"));
        Ok(())
    }

    fn process_broadcast_element(
        &mut self,
        (kind, threshold): Rule,
        rules: &mut BroadcastState<String, i64>,
        ctx: &mut Context<'_, String>,
    ) -> FnResult {
        match threshold {
            Some(t) => rules.put(kind, t),
            None => {
                rules.remove(&kind);
            }
        }
        ctx.collect(format!("rules {}", rules.len()));
        Ok(())
    }
}

#[test]
fn every_subtask_of_a_non_keyed_stream_gets_every_broadcast_record() {
    let env = env_on(StateBackendKind::Memory);
    env.set_parallelism(3);
    let values = env.from_sequence(0, 99);
    let out = values
        .connect(&rule_stream(&env, rules(), "rules").broadcast_with(&descriptor()))
        .process(CountRules)
        .collect();
    env.execute("broadcast-non-keyed").unwrap();
    let got = out.take();
    let mut values: Vec<&String> = got.iter().filter(|l| l.starts_with("value")).collect();
    values.sort();
    let mut expected: Vec<String> = (0..100).map(|v| format!("value {v}")).collect();
    expected.sort();
    assert_eq!(values, expected.iter().collect::<Vec<_>>());
    let mut counts: Vec<&String> = got.iter().filter(|l| l.starts_with("rules")).collect();
    counts.sort();
    // Sizes after each rule: 1, 2, 3, 2 (warm removed), 2 (hot replaced), in 3 subtasks.
    let mut expected: Vec<String> = [1, 2, 3, 2, 2]
        .iter()
        .flat_map(|n| std::iter::repeat_n(format!("rules {n}"), 3))
        .collect();
    expected.sort();
    assert_eq!(counts, expected.iter().collect::<Vec<_>>());
}

#[test]
fn broadcast_and_keyed_state_are_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: u64 = 4_000;
    for backend in backends() {
        SEEN.store(0, Ordering::SeqCst);
        FAILED.store(false, Ordering::SeqCst);
        let checkpoints = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let env = env_on(backend);
        common::checkpoint_and_restart(&env, checkpoints.path());
        let events = env
            .from_generator(GeneratorSource::new(Some(N), event).with_rate_limit(4_000))
            .map(fail_once_after_checkpoint(
                &SEEN,
                &FAILED,
                2_001,
                checkpoints.path(),
            ))
            .assign_timestamps_and_watermarks(by_event_time());
        check(events, rule_stream(&env, rules(), "rules"))
            .sink_to_files(FileSink::with_formatter(out.path(), line))
            .uid("files");
        let result = env.execute("broadcast-exactly-once").unwrap();
        common::assert_restored_once(&result, &FAILED, backend);
        let lines = common::committed_lines(out.path());
        assert!(
            lines == expected_lines(0..N),
            "{backend:?}: {} lines",
            lines.len()
        );
    }
}

/// The second run of the savepoint test shifts event time by this much, so its events
/// are told from those the first run left pending.
const RESTORED_BASE: u64 = 1_000_000_000;

/// Events in both runs of the savepoint test together.
const EVENTS: u64 = 20_000;

/// The job both runs of the savepoint test share (the same uids): events from `source`
/// counted in `passed`, the rules, and the check counting the rules it applied.
fn restorable_job(
    env: &StreamExecutionEnvironment,
    source: GeneratorSource<Event>,
    passed: &Arc<AtomicU64>,
    check: CheckAgainstRules,
) -> DataStream<Checked> {
    let passed = passed.clone();
    let events = env
        .from_generator(source)
        .uid("events")
        .map(move |e: Event| {
            passed.fetch_add(1, Ordering::SeqCst);
            e
        })
        .uid("tap")
        .assign_timestamps_and_watermarks(by_event_time())
        .uid("timestamps");
    check_counting(events, rule_stream(env, rules(), "rules"), check)
}

/// Runs the job at parallelism 2 until every subtask applied the rules
/// and some events passed, stops it with a savepoint, and returns the savepoint.
fn savepoint_after_the_rules(checkpoints: &Path, savepoints: &Path) -> String {
    let env = env_on(StateBackendKind::Memory);
    env.enable_checkpointing(
        Duration::from_secs(3600),
        &format!("file://{}", checkpoints.display()),
    );
    let (passed, check) = (Arc::new(AtomicU64::new(0)), CheckAgainstRules::default());
    let applied = check.applied.clone();
    let source = GeneratorSource::new(Some(EVENTS), event).with_rate_limit(2_000);
    let _ = restorable_job(&env, source, &passed, check).collect();
    let client = env.execute_async("broadcast-savepoint").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let rules_everywhere = rules().len() as u64 * 2;
    while passed.load(Ordering::SeqCst) < 500 || applied.load(Ordering::SeqCst) < rules_everywhere {
        assert!(Instant::now() < deadline, "the job did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    let savepoint = client
        .stop_with_savepoint(Some(&savepoints.display().to_string()))
        .unwrap();
    client.wait().unwrap();
    savepoint
}

#[test]
fn broadcast_state_restores_in_every_subtask_from_a_savepoint_at_another_parallelism() {
    let tmp = tempfile::tempdir().unwrap();
    let savepoint = savepoint_after_the_rules(&tmp.path().join("chk"), &tmp.path().join("sp"));
    // The same job at parallelism 3, restored strictly (every state of the savepoint must
    // find its operator, the broadcast state included). The rules source resumes at its
    // end: every threshold comes from the restored broadcast state.
    let env = env_on(StateBackendKind::Memory);
    env.set_parallelism(3);
    env.restore_from_savepoint(SavepointRestoreSettings::new(&savepoint));
    // The restored generator goes on from where the first run stopped, at full speed.
    let source = GeneratorSource::new(Some(EVENTS), |i| event(RESTORED_BASE + i));
    let check = CheckAgainstRules::default();
    let applied = check.applied.clone();
    let out = restorable_job(&env, source, &Arc::default(), check).collect();
    env.execute("broadcast-restored").unwrap();
    assert_eq!(applied.load(Ordering::SeqCst), 0, "no rule was read again");
    let after: Vec<Checked> = out
        .take()
        .into_iter()
        .filter(|c| c.1 >= RESTORED_BASE as i64)
        .collect();
    assert!(!after.is_empty(), "events after the savepoint were checked");
    for c in &after {
        let kind = KINDS[(c.1 % 3) as usize];
        assert_eq!(
            c.3,
            final_threshold(kind),
            "{c:?}: the restored threshold of {kind}"
        );
    }
    let keys: std::collections::BTreeSet<u8> = after.iter().map(|c| c.0).collect();
    assert_eq!(
        keys.len(),
        7,
        "every key, on every subtask that owns one, read the rules"
    );
}

/// Sums each key's values in keyed state; the broadcast record `"report"` emits every key's
/// sum and clears it through `apply_to_keyed_state`, `"count"` the number of keys still
/// holding a sum. Counts the data records it saw in [`SUMMED`].
#[derive(Clone)]
struct SumAndReport;

static SUMMED: AtomicU64 = AtomicU64::new(0);
/// Opened once every data record was summed: the broadcast records wait for it.
static ALL_SUMMED: AtomicBool = AtomicBool::new(false);
const SUM_RECORDS: u64 = 1_000;

impl KeyedBroadcastProcessFunction<u8, u64, String, String, String, i64> for SumAndReport {
    type State = weir_api::ValueState<u8, VoidNamespace, u64>;

    fn open(&mut self, ctx: &RuntimeContext<u8>) -> FnResult<Self::State> {
        ctx.value_state("sum")
    }

    fn process_element(
        &mut self,
        value: u64,
        sum: &mut Self::State,
        _: &BroadcastState<String, i64>,
        _: &mut KeyedContext<'_, u8, String>,
    ) -> FnResult {
        sum.update(sum.value()?.unwrap_or(0) + value)?;
        if SUMMED.fetch_add(1, Ordering::SeqCst) + 1 == SUM_RECORDS {
            ALL_SUMMED.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    fn process_broadcast_element(
        &mut self,
        command: String,
        sum: &mut Self::State,
        _: &mut BroadcastState<String, i64>,
        ctx: &mut KeyedBroadcastContext<'_, u8, String>,
    ) -> FnResult {
        let mut lines = Vec::new();
        let mut keys = 0;
        ctx.apply_to_keyed_state(sum, |key, sum| {
            keys += 1;
            if command == "report" {
                lines.push(format!("{key}={}", sum.value()?.unwrap_or(0)));
                sum.clear()?;
            }
            Ok(())
        })?;
        if command == "count" {
            lines.push(format!("keys={keys}"));
        }
        for l in lines {
            ctx.collect(l);
        }
        Ok(())
    }
}

#[test]
fn the_broadcast_side_reaches_every_keys_state_with_apply_to_keyed_state() {
    let mut expected: Vec<String> = (0..13u64)
        .map(|k| {
            let sum: u64 = (0..SUM_RECORDS).filter(|i| i % 13 == k).sum();
            format!("{k}={sum}")
        })
        .collect();
    // Each of the two subtasks counts its keys after the report cleared them.
    expected.extend(["keys=0".to_string(), "keys=0".to_string()]);
    expected.sort();
    for backend in backends() {
        SUMMED.store(0, Ordering::SeqCst);
        ALL_SUMMED.store(false, Ordering::SeqCst);
        let env = env_on(backend);
        let values = env.from_collection((0..SUM_RECORDS).collect::<Vec<_>>());
        let commands = ["report", "count"].map(|c| (c.to_string(), true)).to_vec();
        let commands = env
            .add_source(common::Gated(commands, &ALL_SUMMED), "commands")
            .set_parallelism(1);
        let out = values
            .key_by(|v: &u64| (v % 13) as u8)
            .connect(&commands.broadcast_with(&descriptor()))
            .process(SumAndReport)
            .set_parallelism(2)
            .collect();
        env.execute("apply-to-keyed-state").unwrap();
        let mut got = out.take();
        got.sort();
        assert_eq!(got, expected, "{backend:?}");
    }
}
