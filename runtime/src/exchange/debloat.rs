//! Buffer debloating (`taskmanager.network.memory.buffer-debloat.*`, as Flink's): each input
//! gate sizes the buffers its producers fill, so that what the gate may hold drains in about
//! the target time at the rate the task reads it.
//!
//! Every buffer the task reads adds its bytes to its gate. Every period, each gate's
//! throughput over the busy part of the period (time the task waited on an empty queue is
//! left out) updates a moving average over about `samples` periods, and the gate's buffer
//! size becomes `throughput × target / buffers the gate may hold`, between
//! [`MIN_BUFFER_SIZE`] and the job's buffer size. The producers of the gate's channels are
//! told a new size (see [`super::CreditSink::resize_buffers`]) only when it differs from the
//! last one told by more than the threshold, or reaches the full size again; a producer
//! flushes each buffer once it holds that many bytes.
//!
//! Invariants: a size is never below [`MIN_BUFFER_SIZE`] nor above the job's buffer size; a
//! gate from which nothing was read during a period keeps its size (an idle or blocked
//! task does not shrink its buffers to nothing).

use crate::config::BufferDebloatConfig;
use std::time::{Duration, Instant};

/// The smallest buffer size debloating sets (Flink's `taskmanager.memory.min-segment-size`).
pub const MIN_BUFFER_SIZE: usize = 256;

/// The buffer size of one input gate.
#[derive(Debug)]
pub struct BufferDebloater {
    target: Duration,
    /// Buffers the gate may hold.
    buffers: usize,
    /// The job's buffer size.
    max: usize,
    threshold_percent: usize,
    /// Weight of the newest sample in the moving average.
    alpha: f64,
    /// Bytes read since the last sample.
    bytes: u64,
    /// Moving average of the throughput, bytes per second.
    throughput: Option<f64>,
    /// The size last told to the producers.
    announced: usize,
}

impl BufferDebloater {
    /// Sizes the buffers of a gate that may hold `buffers` buffers of at most `max` bytes.
    pub fn new(config: &BufferDebloatConfig, buffers: usize, max: usize) -> Self {
        Self {
            target: config.target,
            buffers: buffers.max(1),
            max,
            threshold_percent: config.threshold_percent as usize,
            alpha: 2.0 / (config.samples.max(1) as f64 + 1.0),
            bytes: 0,
            throughput: None,
            announced: max,
        }
    }

    /// The task read `bytes` bytes of the gate.
    #[inline]
    pub fn consumed(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }

    /// Ends a period in which the task was busy (not waiting on an empty queue) for
    /// `busy`: returns the size to tell the producers, if it changed enough.
    pub fn sample(&mut self, busy: Duration) -> Option<usize> {
        let bytes = std::mem::take(&mut self.bytes);
        if bytes == 0 || busy.is_zero() {
            return None;
        }
        let now = bytes as f64 / busy.as_secs_f64();
        let average = match self.throughput {
            Some(t) => t + self.alpha * (now - t),
            None => now,
        };
        self.throughput = Some(average);
        let wanted = average * self.target.as_secs_f64() / self.buffers as f64;
        let size = (wanted as usize).clamp(MIN_BUFFER_SIZE.min(self.max), self.max);
        let changed = size.abs_diff(self.announced) * 100 > self.announced * self.threshold_percent;
        if size == self.announced || !(changed || size == self.max) {
            return None;
        }
        self.announced = size;
        Some(size)
    }

    /// Returns the size last told to the producers.
    pub fn size(&self) -> usize {
        self.announced
    }
}

/// The debloaters of a task's input gates and the period they sample.
#[derive(Debug)]
pub struct InputDebloat {
    gates: Vec<BufferDebloater>,
    period: Duration,
    since: Instant,
    /// Time waited on an empty queue since the last sample.
    idle: Duration,
}

impl InputDebloat {
    /// Sizes the buffers of gates that may hold `buffers[g]` buffers of at most `max`
    /// bytes.
    pub fn new(config: &BufferDebloatConfig, buffers: &[usize], max: usize) -> Self {
        Self {
            gates: buffers
                .iter()
                .map(|&b| BufferDebloater::new(config, b, max))
                .collect(),
            period: config.period,
            since: Instant::now(),
            idle: Duration::ZERO,
        }
    }

    /// The task read `bytes` bytes of gate `gate`.
    #[inline]
    pub fn consumed(&mut self, gate: usize, bytes: usize) {
        self.gates[gate].consumed(bytes);
    }

    /// The task waited `idle` on an empty queue.
    pub fn idle(&mut self, idle: Duration) {
        self.idle += idle;
    }

    /// Once a period passed: returns the gates whose producers are to be told a new
    /// buffer size, with the size.
    pub fn sample(&mut self) -> Vec<(usize, usize)> {
        let elapsed = self.since.elapsed();
        if elapsed < self.period {
            return Vec::new();
        }
        let busy = elapsed.saturating_sub(std::mem::take(&mut self.idle));
        self.since = Instant::now();
        self.gates
            .iter_mut()
            .enumerate()
            .filter_map(|(g, d)| d.sample(busy).map(|size| (g, size)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BufferDebloatConfig {
        BufferDebloatConfig {
            target: Duration::from_secs(1),
            period: Duration::from_millis(200),
            samples: 1,
            threshold_percent: 25,
        }
    }

    #[test]
    fn the_size_lets_what_the_gate_holds_drain_in_the_target_time() {
        // 10 buffers of at most 32 KiB; 100 KB/s read: 100 KB in flight, 10 KB a buffer.
        let mut d = BufferDebloater::new(&config(), 10, 32 * 1024);
        d.consumed(20_000);
        assert_eq!(d.sample(Duration::from_millis(200)), Some(10_000));
        // A change within the threshold is not told.
        d.consumed(22_000);
        assert_eq!(d.sample(Duration::from_millis(200)), None);
        assert_eq!(d.size(), 10_000);
        // Faster than the buffers hold: the full size.
        d.consumed(10_000_000);
        assert_eq!(d.sample(Duration::from_millis(200)), Some(32 * 1024));
        // Slower than the smallest buffers allow: the smallest.
        d.consumed(10);
        assert_eq!(d.sample(Duration::from_millis(200)), Some(MIN_BUFFER_SIZE));
    }

    #[test]
    fn a_period_without_reads_keeps_the_size_and_idle_time_is_left_out() {
        let mut d = BufferDebloater::new(&config(), 10, 32 * 1024);
        assert_eq!(d.sample(Duration::from_millis(200)), None);
        assert_eq!(d.size(), 32 * 1024);
        let mut input = InputDebloat::new(
            &BufferDebloatConfig {
                period: Duration::ZERO,
                ..config()
            },
            &[10],
            1 << 20,
        );
        input.consumed(0, 2_000);
        std::thread::sleep(Duration::from_millis(20));
        // Nearly all of the period was idle: the throughput is far above 2 KB over 20 ms.
        input.idle(Duration::from_millis(19));
        let told = input.sample();
        assert_eq!(told.len(), 1);
        assert!(told[0].1 > 2_000 * 50 / 10, "{told:?}");
    }

    #[test]
    fn the_moving_average_follows_a_change_over_several_samples() {
        let mut d = BufferDebloater::new(
            &BufferDebloatConfig {
                samples: 3,
                ..config()
            },
            1,
            1 << 20,
        );
        d.consumed(100_000);
        assert_eq!(d.sample(Duration::from_secs(1)), Some(100_000));
        // Half the weight goes to the new sample (2 / (3 + 1)).
        d.consumed(300_000);
        assert_eq!(d.sample(Duration::from_secs(1)), Some(200_000));
    }
}
