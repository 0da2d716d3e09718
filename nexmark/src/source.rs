//! The Nexmark source: the generator's events as a stream with event time.
//!
//! Invariants:
//! - Events `0..events` are each emitted exactly once, also through failures: the source
//!   is a bounded [`GeneratorSource`] over event numbers, whose position per split is
//!   checkpointed, so a restore regenerates exactly the events after it.
//! - Subtask `i` of `p` emits events `i, i + p, ...` (interleaved splits), so every
//!   subtask's events are in event-time order and all subtasks advance together; the
//!   watermark trails each subtask's latest event by 4 s, as in Flink's Nexmark tables.

use std::sync::Arc;
use std::time::Duration;

use weir_api::source::GeneratorSource;
use weir_api::time::WatermarkStrategy;
use weir_api::{DataStream, StreamExecutionEnvironment};

use crate::generator::{NexmarkConfig, NexmarkGenerator};
use crate::model::Event;

/// How far the watermark trails the latest event time.
pub const WATERMARK_DELAY: Duration = Duration::from_secs(4);

/// Events `0..events` of the generator of `config`, with event time, as fast as the job
/// takes them.
pub fn nexmark_events(
    env: &StreamExecutionEnvironment,
    config: NexmarkConfig,
    events: u64,
) -> DataStream<Event> {
    nexmark_events_at(env, config, events, 0)
}

/// Events `0..events` of the generator of `config`, with event time, at most
/// `events_per_sec` per second of wall-clock time in total (`0`: no limit).
pub fn nexmark_events_at(
    env: &StreamExecutionEnvironment,
    config: NexmarkConfig,
    events: u64,
    events_per_sec: u64,
) -> DataStream<Event> {
    let generator = Arc::new(NexmarkGenerator::new(config));
    let source = GeneratorSource::new(Some(events), move |n| generator.event(n))
        .with_interleaved_splits()
        .with_rate_limit(events_per_sec);
    env.from_generator(source)
        .name("nexmark-source")
        .uid("nexmark-source")
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(WATERMARK_DELAY)
                .with_timestamp_assigner(|e: &Event, _| e.date_time()),
        )
}
