//! What the query tests share: the events (a fixed seed) and the mini-cluster.

// Each test crate uses only some of these.
#![allow(dead_code)]

use std::time::Duration;

use weir_api::{DataStream, Record, StateBackendKind, StreamExecutionEnvironment};
use weir_nexmark::{nexmark_events, Event, NexmarkConfig, NexmarkGenerator};

/// 200 events per second of event time: 100 s of it in 20,000 events, so windows of
/// every query close many times.
pub const CONFIG: NexmarkConfig = NexmarkConfig {
    seed: 42,
    events_per_second: 200,
    base_time: 1_436_918_400_000,
};
/// Events per test run.
pub const EVENTS: u64 = 20_000;

/// Parallelism 2 on two TaskManagers with `backend`, every watermark at once.
pub fn env(backend: StateBackendKind) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2)
        .set_local_taskmanagers(2)
        .set_state_backend(backend)
        .set_auto_watermark_interval(Duration::ZERO);
    env
}

/// The test events, generated directly.
pub fn events() -> Vec<Event> {
    events_of(CONFIG)
}

/// The events of `config`, generated directly.
pub fn events_of(config: NexmarkConfig) -> Vec<Event> {
    let generator = NexmarkGenerator::new(config);
    (0..EVENTS).map(|n| generator.event(n)).collect()
}

/// The rows `query` makes of the test events, on the memory backend.
pub fn run_typed<R: Record + Clone>(query: fn(&DataStream<Event>) -> DataStream<R>) -> Vec<R> {
    run_typed_of(CONFIG, query)
}

/// The rows `query` makes of the events of `config`, on the memory backend.
pub fn run_typed_of<R: Record + Clone>(
    config: NexmarkConfig,
    query: fn(&DataStream<Event>) -> DataStream<R>,
) -> Vec<R> {
    let env = env(StateBackendKind::Memory);
    let rows = query(&nexmark_events(&env, config, EVENTS)).collect();
    env.execute("nexmark").unwrap();
    rows.take()
}

/// Panics unless `rows` equal `expected` (which has rows), naming `query` and the first
/// difference.
pub fn assert_rows(query: &str, rows: Vec<String>, expected: Vec<String>) {
    assert!(!expected.is_empty(), "{query}: the reference has rows");
    assert!(
        rows == expected,
        "{query}: {} rows against {}; first difference: {:?}",
        rows.len(),
        expected.len(),
        rows.iter().zip(&expected).find(|(a, b)| a != b)
    );
}
