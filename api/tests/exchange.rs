//! Exchanges across two TaskManagers: skewed inputs lose and duplicate nothing (count and
//! checksum), and watermarks stay in order with the records of their channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::time::WatermarkStrategy;
use weir_api::{
    Context, FnResult, GeneratorSource, KeyedContext, KeyedProcessFunction, ProcessFunction,
    RuntimeContext, StreamExecutionEnvironment, TaskError, Timestamp,
};

/// Counts records and sums a mixed hash of each, order-independently.
#[derive(Clone, Default)]
struct Checksum {
    count: Arc<AtomicU64>,
    sum: Arc<AtomicU64>,
}

fn mix(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 31)
}

impl SinkFunction<u64> for Checksum {
    fn create_writer(&self, _ctx: &SinkContext) -> Result<Box<dyn SinkWriter<u64>>, TaskError> {
        Ok(Box::new(ChecksumWriter {
            total: self.clone(),
            count: 0,
            sum: 0,
        }))
    }
}

struct ChecksumWriter {
    total: Checksum,
    count: u64,
    sum: u64,
}

impl SinkWriter<u64> for ChecksumWriter {
    fn write(&mut self, v: u64, _ts: Timestamp) -> Result<(), TaskError> {
        self.count += 1;
        self.sum = self.sum.wrapping_add(mix(v));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), TaskError> {
        self.total.count.fetch_add(self.count, Ordering::Relaxed);
        self.total.sum.fetch_add(self.sum, Ordering::Relaxed);
        Ok(())
    }
}

fn expected(values: impl Iterator<Item = u64>) -> (u64, u64) {
    values.fold((0, 0), |(c, s), v| (c + 1, s.wrapping_add(mix(v))))
}

fn env() -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_local_taskmanagers(2);
    env
}

#[test]
fn a_union_of_a_large_a_tiny_and_a_slow_input_through_a_keyed_exchange_keeps_every_record() {
    let env = env();
    let large = env.from_generator(GeneratorSource::new(Some(300_000), |i| i));
    let tiny = env.from_collection((1_000_000..1_000_010u64).collect());
    let slow = env
        .from_generator(GeneratorSource::new(Some(200), |i| 2_000_000 + i).with_rate_limit(2_000));
    let sink = Checksum::default();
    large
        .union(&[&tiny, &slow])
        .key_by(|v: &u64| v % 1000)
        .add_sink(sink.clone());
    env.execute("skewed-union").unwrap();
    let want = expected(
        (0..300_000)
            .chain(1_000_000..1_000_010)
            .chain(2_000_000..2_000_200),
    );
    assert_eq!(
        (
            sink.count.load(Ordering::Relaxed),
            sink.sum.load(Ordering::Relaxed)
        ),
        want
    );
}

#[derive(Clone)]
struct Tag;

impl weir_api::CoProcessFunction<u64, String, u64> for Tag {
    fn process_element1(&mut self, v: u64, ctx: &mut Context<'_, u64>) -> FnResult {
        ctx.collect(v);
        Ok(())
    }
    fn process_element2(&mut self, v: String, ctx: &mut Context<'_, u64>) -> FnResult {
        ctx.collect(v.len() as u64 + 10_000_000);
        Ok(())
    }
}

#[test]
fn connected_inputs_of_very_different_sizes_then_a_keyed_exchange_keep_every_record() {
    let env = env();
    let big = env
        .from_generator(GeneratorSource::new(Some(200_000), |i| i))
        .key_by(|v: &u64| *v)
        .process(PassThrough);
    let small = env.from_collection(vec!["a".to_string(), "bb".to_string(), "ccc".to_string()]);
    let sink = Checksum::default();
    big.connect(&small)
        .process(Tag)
        .key_by(|v: &u64| v % 97)
        .add_sink(sink.clone());
    env.execute("skewed-connect").unwrap();
    let want = expected((0..200_000).chain([10_000_001, 10_000_002, 10_000_003]));
    assert_eq!(
        (
            sink.count.load(Ordering::Relaxed),
            sink.sum.load(Ordering::Relaxed)
        ),
        want
    );
}

#[derive(Clone)]
struct PassThrough;

impl KeyedProcessFunction<u64, u64, u64> for PassThrough {
    type State = ();
    fn open(&mut self, _ctx: &RuntimeContext<u64>) -> FnResult<()> {
        Ok(())
    }
    fn process_element(
        &mut self,
        v: u64,
        _s: &mut (),
        ctx: &mut KeyedContext<'_, u64, u64>,
    ) -> FnResult {
        ctx.collect(v);
        Ok(())
    }
}

/// Counts records that arrive with a timestamp at or below the operator's watermark.
#[derive(Clone)]
struct BehindWatermark(Arc<AtomicU64>, Arc<AtomicU64>);

impl ProcessFunction<u64, u64> for BehindWatermark {
    fn process_element(&mut self, v: u64, ctx: &mut Context<'_, u64>) -> FnResult {
        self.1.fetch_add(1, Ordering::Relaxed);
        if ctx.timestamp().expect("timestamped") <= ctx.current_watermark() {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        ctx.collect(v);
        Ok(())
    }
}

#[test]
fn watermarks_stay_in_order_with_records_across_the_network() {
    // Each source subtask emits increasing timestamps and a watermark after every record;
    // if any channel delivered a watermark ahead of an earlier record, that record would
    // arrive at or behind the combined watermark.
    let env = env();
    env.set_auto_watermark_interval(Duration::ZERO)
        .set_buffer_timeout(Duration::from_millis(1));
    let behind = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(AtomicU64::new(0));
    env.from_generator(GeneratorSource::new(Some(100_000), |i| i))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|v: &u64, _| *v as i64),
        )
        .rebalance()
        .process(BehindWatermark(behind.clone(), seen.clone()))
        .add_sink(weir_api::sink::DiscardingSink);
    env.execute("watermark-order").unwrap();
    assert_eq!(seen.load(Ordering::Relaxed), 100_000);
    assert_eq!(behind.load(Ordering::Relaxed), 0);
}

/// A digest of a byte record that depends on every byte and on the length.
fn digest(v: &[u8]) -> u64 {
    v.iter()
        .fold(mix(v.len() as u64), |h, b| mix(h ^ u64::from(*b)))
}

fn big_record(i: u64) -> Vec<u8> {
    let len = if i.is_multiple_of(3) {
        (i * 7919 % 20_000) as usize
    } else {
        (i % 50) as usize
    };
    (0..len).map(|j| ((i as usize + j) % 251) as u8).collect()
}

#[test]
fn records_larger_than_a_buffer_span_several_buffers_and_arrive_whole() {
    const N: u64 = 3_000;
    let env = env();
    // 4 KiB buffers: records of up to 20,000 bytes span up to five of them, locally and
    // across the TCP connection between the two TaskManagers.
    env.configure(|s| s.job.buffer_size = 4096);
    let sink = Checksum::default();
    env.from_generator(GeneratorSource::new(Some(N), big_record))
        .rebalance()
        .map(|v: Vec<u8>| digest(&v))
        .add_sink(sink.clone());
    env.execute("spanning-records").unwrap();
    let want = expected((0..N).map(|i| digest(&big_record(i))));
    assert_eq!(
        (
            sink.count.load(Ordering::Relaxed),
            sink.sum.load(Ordering::Relaxed)
        ),
        want
    );
}

#[test]
fn a_taskmanager_without_enough_network_buffers_fails_the_job_naming_the_setting() {
    let env = env();
    // Each task needs 2 channels × 2 exclusive + 8 floating = 12 buffers per pool.
    env.configure(|s| s.taskmanager.network_buffers = 10);
    env.from_generator(GeneratorSource::new(Some(1_000), |i| i))
        .key_by(|v: &u64| *v)
        .add_sink(Checksum::default());
    let err = env.execute("starved").unwrap_err().to_string();
    assert!(
        err.contains("insufficient network buffers")
            && err.contains("12 required")
            && err.contains("taskmanager.network.pool-size"),
        "{err}"
    );
}
