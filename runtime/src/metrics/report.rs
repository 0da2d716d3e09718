//! A task's metrics as one report: counts, Flink's per-second rates and gauges, computed by a
//! [`Sampler`] from two snapshots of a [`MetricRegistry`]. Reports are what the Prometheus
//! exporter publishes and what a job worker sends to the JobManager with its heartbeat.
//!
//! Invariants: rates are deltas over the time between two samples of the same task (a task
//! seen for the first time reports rates of 0); busy time is what remains of each second
//! after idle and back-pressured time, so the three add up to at most 1000.

use super::{MetricRegistry, TaskMetricsSnapshot};
use crate::types::SubtaskId;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One task's metrics over the last sampling interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskMetricsReport {
    /// The subtask.
    pub subtask: SubtaskId,
    /// The task's (chain's) name.
    pub task: String,
    /// `numRecordsIn`: records consumed from inputs so far.
    pub records_in: u64,
    /// `numRecordsOut`: records written to network outputs so far.
    pub records_out: u64,
    /// `numRecordsInPerSecond`.
    pub records_in_per_second: f64,
    /// `numRecordsOutPerSecond`.
    pub records_out_per_second: f64,
    /// `backPressuredTimeMsPerSecond`.
    pub back_pressured_ms_per_second: f64,
    /// `idleTimeMsPerSecond`.
    pub idle_ms_per_second: f64,
    /// `busyTimeMsPerSecond`.
    pub busy_ms_per_second: f64,
    /// `currentInputWatermark` (none before the first).
    pub input_watermark: Option<i64>,
    /// `currentOutputWatermark` (none before the first).
    pub output_watermark: Option<i64>,
    /// `buffers.inPoolUsage` in `0.0..=1.0`.
    pub in_pool_usage: f64,
    /// `buffers.outPoolUsage` in `0.0..=1.0`.
    pub out_pool_usage: f64,
    /// `pendingRecords` of a source that knows it.
    pub pending_records: Option<u64>,
}

/// Keeps the previous snapshot of every task so that the next sample can report rates.
#[derive(Debug, Default)]
pub struct Sampler {
    previous: HashMap<(SubtaskId, String), TaskMetricsSnapshot>,
}

impl Sampler {
    /// A sampler that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports every running task of `registry`, with rates since the previous call.
    pub fn sample(&mut self, registry: &MetricRegistry) -> Vec<TaskMetricsReport> {
        let now = registry.snapshot();
        let mut next = HashMap::with_capacity(now.len());
        let reports = now
            .into_iter()
            .filter(|(_, _, snap)| !snap.finished)
            .map(|(subtask, task, snap)| {
                let key = (subtask, task);
                let report = report(&key, &snap, self.previous.get(&key));
                next.insert(key, snap);
                report
            })
            .collect();
        self.previous = next;
        reports
    }
}

/// One task's report from its snapshot now and, if sampled before, its earlier one.
fn report(
    (subtask, task): &(SubtaskId, String),
    now: &TaskMetricsSnapshot,
    earlier: Option<&TaskMetricsSnapshot>,
) -> TaskMetricsReport {
    let (rin, rout, bp, idle) = match earlier {
        Some(e) => {
            let (rin, rout, bp) = now.rates_since(e);
            let secs = now
                .taken_at
                .saturating_duration_since(e.taken_at)
                .as_secs_f64()
                .max(1e-9);
            let idle = now.idle_ms.saturating_sub(e.idle_ms) as f64 / secs;
            (rin, rout, bp.min(1000.0), idle.min(1000.0))
        }
        None => (0.0, 0.0, 0.0, 0.0),
    };
    let busy = if earlier.is_some() {
        (1000.0 - bp - idle).max(0.0)
    } else {
        0.0
    };
    TaskMetricsReport {
        subtask: *subtask,
        task: task.clone(),
        records_in: now.records_in,
        records_out: now.records_out,
        records_in_per_second: rin,
        records_out_per_second: rout,
        back_pressured_ms_per_second: bp,
        idle_ms_per_second: idle,
        busy_ms_per_second: busy,
        input_watermark: now.input_watermark,
        output_watermark: now.output_watermark,
        in_pool_usage: now.input_pool_usage(),
        out_pool_usage: now.output_pool_usage(),
        pending_records: now.pending_records,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::JobId;

    #[test]
    fn a_second_sample_reports_rates_and_busy_time_is_what_idle_and_pressure_leave() {
        let registry = MetricRegistry::new();
        let id = SubtaskId {
            job: JobId(7),
            vertex: 1,
            subtask: 0,
        };
        let m = registry.register(id, "window");
        let mut sampler = Sampler::new();
        let first = sampler.sample(&registry);
        assert_eq!(first[0].records_in_per_second, 0.0);
        assert_eq!(first[0].input_watermark, None);
        m.add_records_in(10_000);
        m.add_idle_ns(u64::MAX / 4);
        m.set_input_watermark(1_000);
        m.set_pending_records(42);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = sampler.sample(&registry);
        let r = &second[0];
        assert!(r.records_in_per_second > 0.0, "{r:?}");
        assert_eq!(r.records_in, 10_000);
        assert_eq!(
            r.idle_ms_per_second, 1000.0,
            "idle is capped at the interval"
        );
        assert_eq!(r.busy_ms_per_second, 0.0);
        assert_eq!(r.input_watermark, Some(1_000));
        assert_eq!(r.output_watermark, None);
        assert_eq!(r.pending_records, Some(42));
        assert_eq!(r.task, "window");
        m.set_finished();
        assert!(
            sampler.sample(&registry).is_empty(),
            "an ended task is not reported"
        );
    }
}
