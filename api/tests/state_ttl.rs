//! State time-to-live in a job on the mini-cluster with two TaskManagers, on both state
//! backends: a keyed function counting each key's events since its state last expired
//! (a TTL value state) and the events of the last ten time units (a TTL list state);
//! the output is checked against a reference, exactly-once through a failure, with
//! expired entries also removed before every full snapshot.
//!
//! The clock is the time of the record being processed (set by the function before it
//! touches state), so which entry has expired is exact and the same in every run.

mod common;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use common::{backends, env_on, fail_once_after_checkpoint};
use weir_api::functions::{FnResult, KeyedContext, KeyedProcessFunction, RuntimeContext};
use weir_api::{GeneratorSource, StateTtlConfig, TtlListState, TtlTimeProvider, TtlValueState};

type Event = (u8, i64); // (key, time)

const TTL: i64 = 10;

thread_local! {
    /// The time of the record the function is processing on this thread.
    static NOW: Cell<i64> = const { Cell::new(0) };
}

/// The time of the record being processed.
struct RecordClock;

impl TtlTimeProvider for RecordClock {
    fn current_timestamp(&self) -> i64 {
        NOW.with(Cell::get)
    }
}

/// Event `i`: time `i / 4` (so time never goes back), one of 16 keys drawn by a
/// SplitMix64 hash of `i`, so a key's gaps vary and some exceed the time to live.
fn event(i: u64) -> Event {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((((z ^ (z >> 31)) % 16) as u8), (i / 4) as i64)
}

#[derive(Clone)]
struct Sessions {
    ttl: StateTtlConfig,
}

impl KeyedProcessFunction<u8, Event, String> for Sessions {
    type State = (TtlValueState<u8, u64>, TtlListState<u8, i64>);
    fn open(&mut self, ctx: &RuntimeContext<u8>) -> FnResult<Self::State> {
        Ok((
            ctx.ttl_value_state("count", &self.ttl)?,
            ctx.ttl_list_state("recent", &self.ttl)?,
        ))
    }
    fn process_element(
        &mut self,
        (key, t): Event,
        (count, recent): &mut Self::State,
        ctx: &mut KeyedContext<'_, u8, String>,
    ) -> FnResult {
        NOW.with(|now| now.set(t));
        let n = count.value()?.unwrap_or(0) + 1;
        count.update(n)?;
        recent.add(t)?;
        let live = recent.get()?.len();
        ctx.collect(format!("{key},{t},{n},{live}"));
        Ok(())
    }
}

/// What [`Sessions`] emits for `events`, computed with plain maps.
fn reference(events: impl Iterator<Item = Event>) -> Vec<String> {
    let mut last: HashMap<u8, (i64, u64)> = HashMap::new();
    let mut times: HashMap<u8, Vec<i64>> = HashMap::new();
    let mut out = Vec::new();
    for (key, t) in events {
        let n = match last.get(&key) {
            Some(&(at, n)) if at + TTL > t => n + 1,
            _ => 1,
        };
        last.insert(key, (t, n));
        let recent = times.entry(key).or_default();
        recent.push(t);
        recent.retain(|&at| at + TTL > t);
        out.push(format!("{key},{t},{n},{}", recent.len()));
    }
    out.sort();
    out
}

#[test]
fn ttl_state_expires_per_key_exactly_once_through_a_failure() {
    static SEEN: AtomicU64 = AtomicU64::new(0);
    static FAILED: AtomicBool = AtomicBool::new(false);
    const N: u64 = 4_000;
    let expected = reference((0..N).map(event));
    let fresh = expected
        .iter()
        .filter(|l| l.split(',').nth(2) == Some("1"))
        .count();
    assert!(fresh > 300, "state expires often: {fresh} fresh counts");
    let ttl = StateTtlConfig::new_builder(Duration::from_millis(TTL as u64))
        .set_ttl_time_provider(Arc::new(RecordClock))
        .cleanup_full_snapshot()
        .build();
    for backend in backends() {
        SEEN.store(0, std::sync::atomic::Ordering::SeqCst);
        FAILED.store(false, std::sync::atomic::Ordering::SeqCst);
        let checkpoints = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let env = env_on(backend);
        common::checkpoint_and_restart(&env, checkpoints.path());
        let lines = env
            .from_generator(GeneratorSource::new(Some(N), event).with_rate_limit(4_000))
            .set_parallelism(1)
            .map(fail_once_after_checkpoint(
                &SEEN,
                &FAILED,
                2_001,
                checkpoints.path(),
            ))
            .set_parallelism(1)
            .key_by(|e: &Event| e.0)
            .process(Sessions { ttl: ttl.clone() })
            .uid("sessions");
        let (out, name) = (out.path(), "ttl-exactly-once");
        common::sink_and_check_exactly_once(&env, lines, out, name, &FAILED, backend, &expected);
    }
}
