//! Back-pressure: a slow sink behind a keyed exchange across two TaskManagers slows its
//! sources to its own rate, and the buffers in use never exceed the configured pools (the
//! producers' output pools, the consumers' credits, the TaskManagers' network pools).
//! Observed through the TaskManagers' task metrics while the job runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use weir_api::metrics::MetricRegistry;
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::{
    GeneratorSource, LocalMiniCluster, StreamExecutionEnvironment, TaskError, Timestamp,
};

/// Sleeps 1 ms after every 200 records: about 200,000 records/s per subtask.
struct SlowSink;
struct SlowWriter(u64);

impl SinkFunction<(u32, [u8; 32], [u8; 32], [u8; 32])> for SlowSink {
    fn create_writer(
        &self,
        _ctx: &SinkContext,
    ) -> Result<Box<dyn SinkWriter<(u32, [u8; 32], [u8; 32], [u8; 32])>>, TaskError> {
        Ok(Box::new(SlowWriter(0)))
    }
}

impl SinkWriter<(u32, [u8; 32], [u8; 32], [u8; 32])> for SlowWriter {
    fn write(
        &mut self,
        _v: (u32, [u8; 32], [u8; 32], [u8; 32]),
        _ts: Timestamp,
    ) -> Result<(), TaskError> {
        self.0 += 1;
        if self.0.is_multiple_of(200) {
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    source_out: u64,
    sink_in: u64,
    source_back_pressured_ms: u64,
    sink_max_queued: u64,
    sink_capacity: u64,
    source_max_out_buffers: u64,
    source_out_pool: u64,
}

fn sample(cluster_metrics: &[Arc<MetricRegistry>]) -> Sample {
    let mut s = Sample::default();
    for reg in cluster_metrics {
        for (_, name, m) in reg.snapshot() {
            if name.starts_with("Source") {
                s.source_out += m.records_out;
                s.source_back_pressured_ms += m.back_pressured_ms;
                assert!(
                    m.max_output_buffers_in_use <= m.output_pool_size,
                    "a source used {} output buffers of a pool of {}",
                    m.max_output_buffers_in_use,
                    m.output_pool_size
                );
                s.source_max_out_buffers += m.max_output_buffers_in_use;
                s.source_out_pool += m.output_pool_size;
            } else if name.contains("Slow Sink") {
                s.sink_in += m.records_in;
                s.sink_max_queued = s.sink_max_queued.max(m.max_input_buffers_queued);
                s.sink_capacity += m.input_buffers_capacity;
            }
        }
    }
    s
}

#[test]
fn a_slow_sink_over_tcp_slows_its_sources_and_queues_stay_within_capacity() {
    const N: u64 = 200_000;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2);
    env.from_generator(GeneratorSource::new(Some(N), |i| {
        ((i % 10_000) as u32, [1u8; 32], [2u8; 32], [3u8; 32])
    }))
    .key_by(|r: &(u32, [u8; 32], [u8; 32], [u8; 32])| r.0)
    .add_sink(SlowSink)
    .name("Slow Sink");
    let graph = env.job_graph("back-pressure").unwrap();
    let cluster = LocalMiniCluster::start(2, 1).unwrap();
    let registries = cluster.metrics();
    let pools = Arc::new(cluster);
    let pools2 = pools.clone();
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let sampler = std::thread::spawn(move || {
        let mut samples = Vec::new();
        // Bounded: at most 60 s of samples, every 20 ms.
        for _ in 0..3000 {
            if done2.load(Ordering::Relaxed) {
                break;
            }
            for (reserved, total) in pools2.network_buffers() {
                assert!(reserved <= total, "{reserved} buffers reserved of {total}");
            }
            samples.push((std::time::Instant::now(), sample(&registries)));
            std::thread::sleep(Duration::from_millis(20));
        }
        (samples, sample(&registries))
    });
    let result = pools.run(graph);
    done.store(true, Ordering::Relaxed);
    let (samples, last) = sampler.join().unwrap();
    result.unwrap();

    assert_eq!(last.source_out, N, "every record left the sources");
    assert_eq!(last.sink_in, N, "every record reached the sink");
    // Two sinks, each with 2 channels × 2 exclusive + 8 floating buffers of credit.
    assert_eq!(last.sink_capacity, 2 * (2 * 2 + 8));
    assert!(
        last.sink_max_queued <= last.sink_capacity,
        "queued {} > capacity {}",
        last.sink_max_queued,
        last.sink_capacity
    );
    // Two sources, each with an output pool of 2 channels × 2 + 8 buffers, all in use at
    // some point: the sources ran out of buffers and waited.
    assert_eq!(last.source_out_pool, 2 * (2 * 2 + 8));
    assert!(last.source_max_out_buffers >= last.source_out_pool / 2);
    // The sink needs over half a second; the sources alone would need a few milliseconds,
    // so they spent most of the run blocked on the exchange.
    assert!(
        last.source_back_pressured_ms >= 200,
        "sources were back-pressured for only {} ms",
        last.source_back_pressured_ms
    );
    // In the middle of the run the sources emit at the sink's rate: the records in flight
    // (emitted but not consumed) stay bounded instead of growing with the input.
    let mid: Vec<_> = samples
        .iter()
        .filter(|(_, s)| s.sink_in > N / 4 && s.sink_in < N * 3 / 4)
        .collect();
    assert!(
        mid.len() >= 3,
        "too few samples in the steady state: {}",
        mid.len()
    );
    let in_flight: Vec<u64> = mid.iter().map(|(_, s)| s.source_out - s.sink_in).collect();
    let most = *in_flight.iter().max().unwrap();
    // A record takes 101 bytes in a buffer (96 bytes of arrays, a u32, a 5-byte frame
    // header); a buffer holds at most 32 KiB + 1 KiB of slack. Records in flight sit in
    // the sources' output buffers or, past the network, in the sinks' input buffers, so
    // they are bounded by those pools.
    let per_buffer = (32 * 1024 + 1024) / 101 + 1;
    let bound = (last.source_out_pool + last.sink_capacity) * per_buffer;
    assert!(
        most <= bound,
        "{most} records in flight, more than {bound} the pools can hold"
    );
    let first = in_flight[0];
    let last_mid = *in_flight.last().unwrap();
    assert!(
        last_mid <= first + first / 2 + 20_000,
        "records in flight grew from {first} to {last_mid}: sources were not slowed"
    );
}
