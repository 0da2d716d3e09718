//! Task metrics, the TaskManager-wide registry they are read from, and how they leave the
//! process.
//!
//! Each task owns one [`TaskMetrics`]: counters and gauges that only its own thread updates
//! (relaxed atomics, so the hot path pays an uncontended add per buffer or per wait, never
//! per record) and anyone may read. A [`MetricRegistry`] lists the tasks of one
//! TaskManager; readers take [`TaskMetricsSnapshot`]s. A [`Sampler`] turns a task's recent
//! snapshots into a [`TaskMetricsReport`] with Flink's rates averaged over a few seconds
//! (`numRecordsInPerSecond`, `backPressuredTimeMsPerSecond`, ...); reports are published under Flink's names through
//! the `metrics` facade to a Prometheus exporter ([`prometheus`]) and sent by job workers to
//! the JobManager with their heartbeats, for its REST API.
//!
//! Invariant: a task's busy, idle and back-pressured time per second add up to at most
//! 1000 ms (busy is what remains of the interval).

pub mod prometheus;
mod report;

pub use report::{Sampler, TaskMetricsReport, RATE_SPAN};

use crate::exchange::PoolStats;
use crate::types::SubtaskId;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A watermark gauge's value while the task has seen none.
const NO_WATERMARK: i64 = i64::MIN;

/// A pending-records gauge's value while the source does not know it.
const UNKNOWN: i64 = -1;

/// Counters of one running task.
#[derive(Debug)]
pub struct TaskMetrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    back_pressured_ns: AtomicU64,
    idle_ns: AtomicU64,
    input_queued: AtomicU64,
    input_capacity: AtomicU64,
    max_input_queued: AtomicU64,
    input_watermark: AtomicI64,
    output_watermark: AtomicI64,
    pending_records: AtomicI64,
    finished: AtomicBool,
    output_pools: Mutex<Vec<Arc<PoolStats>>>,
}

impl Default for TaskMetrics {
    fn default() -> Self {
        Self {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            back_pressured_ns: AtomicU64::new(0),
            idle_ns: AtomicU64::new(0),
            input_queued: AtomicU64::new(0),
            input_capacity: AtomicU64::new(0),
            max_input_queued: AtomicU64::new(0),
            input_watermark: AtomicI64::new(NO_WATERMARK),
            output_watermark: AtomicI64::new(NO_WATERMARK),
            pending_records: AtomicI64::new(UNKNOWN),
            finished: AtomicBool::new(false),
            output_pools: Mutex::new(Vec::new()),
        }
    }
}

impl TaskMetrics {
    /// Adds records consumed from the task's inputs.
    #[inline]
    pub fn add_records_in(&self, n: u64) {
        self.records_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds records written to the task's network outputs.
    #[inline]
    pub fn add_records_out(&self, n: u64) {
        self.records_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds time the task spent blocked because a consumer had no room (back-pressure).
    #[inline]
    pub fn add_back_pressured_ns(&self, ns: u64) {
        self.back_pressured_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Adds time the task waited for input with nothing to do (an empty input queue, or a
    /// source with nothing to read).
    #[inline]
    pub fn add_idle_ns(&self, ns: u64) {
        self.idle_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Sets the watermark the task's chain received last (Flink's `currentInputWatermark`).
    #[inline]
    pub fn set_input_watermark(&self, wm: i64) {
        self.input_watermark.store(wm, Ordering::Relaxed);
    }

    /// Sets the watermark the task sent downstream last (`currentOutputWatermark`).
    #[inline]
    pub fn set_output_watermark(&self, wm: i64) {
        self.output_watermark.store(wm, Ordering::Relaxed);
    }

    /// Sets how many records the task's source has yet to read, where the source knows it
    /// (Flink's `pendingRecords`, Kafka's consumer lag).
    #[inline]
    pub fn set_pending_records(&self, n: u64) {
        self.pending_records
            .store(n.min(i64::MAX as u64) as i64, Ordering::Relaxed);
    }

    /// Marks the task ended (finished, failed or cancelled): samplers stop reporting it.
    pub fn set_finished(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    /// Returns whether the task ended.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    /// Records how many input buffers are queued for the task, out of `capacity`.
    #[inline]
    pub fn set_input_queue(&self, queued: u64, capacity: u64) {
        self.input_queued.store(queued, Ordering::Relaxed);
        self.input_capacity.store(capacity, Ordering::Relaxed);
        self.max_input_queued.fetch_max(queued, Ordering::Relaxed);
    }

    /// Adds the buffer pool of one of the task's outputs to the usage metrics.
    pub fn add_output_pool(&self, pool: Arc<PoolStats>) {
        self.output_pools
            .lock()
            .expect("task metrics poisoned")
            .push(pool);
    }

    /// Returns the current values.
    pub fn snapshot(&self) -> TaskMetricsSnapshot {
        let (mut out, mut max_out, mut size) = (0, 0, 0);
        for p in self
            .output_pools
            .lock()
            .expect("task metrics poisoned")
            .iter()
        {
            let (o, m, n) = p.get();
            out += o as u64;
            max_out += m as u64;
            size += n as u64;
        }
        TaskMetricsSnapshot {
            output_buffers_in_use: out,
            max_output_buffers_in_use: max_out,
            output_pool_size: size,
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            back_pressured_ms: self.back_pressured_ns.load(Ordering::Relaxed) / 1_000_000,
            idle_ms: self.idle_ns.load(Ordering::Relaxed) / 1_000_000,
            input_watermark: watermark(self.input_watermark.load(Ordering::Relaxed)),
            output_watermark: watermark(self.output_watermark.load(Ordering::Relaxed)),
            pending_records: u64::try_from(self.pending_records.load(Ordering::Relaxed)).ok(),
            finished: self.is_finished(),
            input_buffers_queued: self.input_queued.load(Ordering::Relaxed),
            input_buffers_capacity: self.input_capacity.load(Ordering::Relaxed),
            max_input_buffers_queued: self.max_input_queued.load(Ordering::Relaxed),
            taken_at: Instant::now(),
        }
    }
}

/// A watermark gauge's value, `None` while no watermark was seen.
fn watermark(v: i64) -> Option<i64> {
    (v != NO_WATERMARK).then_some(v)
}

/// The values of one task's metrics at one moment.
#[derive(Clone, Copy, Debug)]
pub struct TaskMetricsSnapshot {
    /// Records consumed from inputs so far.
    pub records_in: u64,
    /// Records written to network outputs so far.
    pub records_out: u64,
    /// Milliseconds spent back-pressured so far.
    pub back_pressured_ms: u64,
    /// Milliseconds spent idle (waiting for input) so far.
    pub idle_ms: u64,
    /// The last watermark the chain received, if any.
    pub input_watermark: Option<i64>,
    /// The last watermark sent downstream, if any.
    pub output_watermark: Option<i64>,
    /// Records the source has yet to read, where it knows.
    pub pending_records: Option<u64>,
    /// Whether the task ended.
    pub finished: bool,
    /// Input buffers queued now.
    pub input_buffers_queued: u64,
    /// Input buffers the task's queue holds at most.
    pub input_buffers_capacity: u64,
    /// The most input buffers ever queued.
    pub max_input_buffers_queued: u64,
    /// Output buffers taken from the task's pools and not yet returned: being filled,
    /// waiting for credit, or in flight to (or held by) a consumer.
    pub output_buffers_in_use: u64,
    /// The most output buffers ever in use (summed over the task's outputs).
    pub max_output_buffers_in_use: u64,
    /// The number of buffers in the task's output pools.
    pub output_pool_size: u64,
    /// When the snapshot was taken.
    pub taken_at: Instant,
}

impl TaskMetricsSnapshot {
    /// Returns `(records in per second, records out per second, backPressuredTimeMsPerSecond)`
    /// between an `earlier` snapshot and this one.
    pub fn rates_since(&self, earlier: &TaskMetricsSnapshot) -> (f64, f64, f64) {
        let secs = self
            .taken_at
            .saturating_duration_since(earlier.taken_at)
            .as_secs_f64()
            .max(1e-9);
        (
            self.records_in.saturating_sub(earlier.records_in) as f64 / secs,
            self.records_out.saturating_sub(earlier.records_out) as f64 / secs,
            self.back_pressured_ms
                .saturating_sub(earlier.back_pressured_ms) as f64
                / secs,
        )
    }

    /// Returns the output pool usage in `0.0..=1.0` (Flink's `outPoolUsage`).
    pub fn output_pool_usage(&self) -> f64 {
        if self.output_pool_size == 0 {
            0.0
        } else {
            self.output_buffers_in_use as f64 / self.output_pool_size as f64
        }
    }

    /// Returns the input queue usage in `0.0..=1.0` (Flink's `inPoolUsage`).
    pub fn input_pool_usage(&self) -> f64 {
        if self.input_buffers_capacity == 0 {
            0.0
        } else {
            self.input_buffers_queued as f64 / self.input_buffers_capacity as f64
        }
    }
}

/// The tasks of one TaskManager and their metrics.
#[derive(Debug, Default)]
pub struct MetricRegistry {
    tasks: Mutex<BTreeMap<(SubtaskId, String), Arc<TaskMetrics>>>,
}

impl MetricRegistry {
    /// Creates an empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the metrics of a starting task (named `name`) and returns them.
    pub fn register(&self, subtask: SubtaskId, name: &str) -> Arc<TaskMetrics> {
        let m = Arc::new(TaskMetrics::default());
        self.tasks
            .lock()
            .expect("metric registry poisoned")
            .insert((subtask, name.to_string()), m.clone());
        m
    }

    /// Returns a snapshot of every task registered so far (finished tasks included).
    pub fn snapshot(&self) -> Vec<(SubtaskId, String, TaskMetricsSnapshot)> {
        self.tasks
            .lock()
            .expect("metric registry poisoned")
            .iter()
            .map(|((id, name), m)| (*id, name.clone(), m.snapshot()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::JobId;
    use std::time::Duration;

    #[test]
    fn rates_are_deltas_over_elapsed_time() {
        let m = TaskMetrics::default();
        let a = m.snapshot();
        m.add_records_in(1000);
        m.add_records_out(500);
        m.add_back_pressured_ns(250_000_000);
        let mut b = m.snapshot();
        b.taken_at = a.taken_at + Duration::from_millis(500);
        let (rin, rout, bp) = b.rates_since(&a);
        assert_eq!((rin, rout, bp), (2000.0, 1000.0, 500.0));
    }

    #[test]
    fn the_registry_lists_tasks_in_order_with_the_largest_queue_seen() {
        let r = MetricRegistry::new();
        let id = |s| SubtaskId {
            job: JobId(1),
            vertex: 0,
            subtask: s,
        };
        let m1 = r.register(id(1), "map");
        let _m0 = r.register(id(0), "map");
        m1.set_input_queue(3, 10);
        m1.set_input_queue(1, 10);
        let snap = r.snapshot();
        assert_eq!(snap[0].0.subtask, 0);
        assert_eq!(snap[1].2.max_input_buffers_queued, 3);
        assert_eq!(snap[1].2.input_pool_usage(), 0.1);
    }
}
