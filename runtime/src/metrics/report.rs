//! A task's metrics as one report: counts, Flink's per-second rates and gauges, computed by a
//! [`Sampler`] from recent snapshots of a [`MetricRegistry`]. Reports are what the Prometheus
//! exporter publishes and what a job worker sends to the JobManager with its heartbeat.
//!
//! Invariants: rates are averaged over the last [`RATE_SPAN`] of samples of the same task
//! (from its latest sample at least that old, or its first while it is younger; a task seen
//! for the first time, or registered anew with counters that went back, reports rates of 0,
//! since its history is dropped), so a task that hands on a full buffer now and then
//! reports its steady rate, not zero between buffers and a spike at each; busy time is what
//! remains of each second after idle and back-pressured time, so the three add up to at
//! most 1000.

use super::{MetricRegistry, TaskMetricsSnapshot};
use crate::types::SubtaskId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The span rates are averaged over: Flink's time gauges (`backPressuredTimeMsPerSecond`,
/// ...) cover its metric views' 5 s update interval; its record meters average over 60 s,
/// which would hide a change for a minute.
pub const RATE_SPAN: Duration = Duration::from_secs(5);

/// One task's metrics: counts so far, and rates and gauges over the sampler's span.
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

/// Keeps the recent snapshots of every task (those within [`RATE_SPAN`] and the one before)
/// so that the next sample can report rates over that span.
#[derive(Debug)]
pub struct Sampler {
    previous: HashMap<(SubtaskId, String), VecDeque<TaskMetricsSnapshot>>,
    span: Duration,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::with_span(RATE_SPAN)
    }
}

impl Sampler {
    /// A sampler that has seen nothing yet, averaging rates over [`RATE_SPAN`].
    pub fn new() -> Self {
        Self::default()
    }

    /// A sampler that averages rates over `span` instead.
    pub fn with_span(span: Duration) -> Self {
        Self {
            previous: HashMap::new(),
            span,
        }
    }

    /// Reports every running task of `registry`, with rates over the sampler's span.
    pub fn sample(&mut self, registry: &MetricRegistry) -> Vec<TaskMetricsReport> {
        let now = registry.snapshot();
        let mut next = HashMap::with_capacity(now.len());
        let reports = now
            .into_iter()
            .filter(|(_, _, snap)| !snap.finished)
            .map(|(subtask, task, snap)| {
                let key = (subtask, task);
                let mut history = self.previous.remove(&key).unwrap_or_default();
                if history.back().is_some_and(|last| counted_back(last, &snap)) {
                    // A restarted task registered anew under the same name: its counts
                    // start again from zero, so its old samples say nothing of its rates.
                    history.clear();
                }
                while history.len() > 1
                    && snap.taken_at.saturating_duration_since(history[1].taken_at) >= self.span
                {
                    history.pop_front();
                }
                let report = report(&key, &snap, history.front());
                history.push_back(snap);
                next.insert(key, history);
                report
            })
            .collect();
        self.previous = next;
        reports
    }
}

/// Whether any of `now`'s counters is below `earlier`'s: a new registration of the task.
fn counted_back(earlier: &TaskMetricsSnapshot, now: &TaskMetricsSnapshot) -> bool {
    now.records_in < earlier.records_in
        || now.records_out < earlier.records_out
        || now.back_pressured_ms < earlier.back_pressured_ms
        || now.idle_ms < earlier.idle_ms
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

    /// Subtask 0 of `vertex` of job 7.
    fn subtask(vertex: u32) -> SubtaskId {
        SubtaskId {
            job: JobId(7),
            vertex,
            subtask: 0,
        }
    }

    #[test]
    fn a_second_sample_reports_rates_and_busy_time_is_what_idle_and_pressure_leave() {
        let registry = MetricRegistry::new();
        let m = registry.register(subtask(1), "window");
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

    #[test]
    fn rates_are_averaged_over_the_span_so_records_handed_on_a_buffer_at_a_time_never_read_zero() {
        use std::time::Duration;
        let registry = MetricRegistry::new();
        let id = subtask(0);
        let m = registry.register(id, "source");
        let mut sampler = Sampler::with_span(Duration::from_secs(1));
        let rate = |s: &mut Sampler| s.sample(&registry)[0].records_out_per_second;
        assert_eq!(rate(&mut sampler), 0.0, "a first sample has no rate");
        m.add_records_out(1_024);
        std::thread::sleep(Duration::from_millis(20));
        let burst = rate(&mut sampler);
        assert!(burst > 0.0);
        std::thread::sleep(Duration::from_millis(20));
        let between = rate(&mut sampler);
        assert!(
            between > 0.0 && between < burst,
            "no buffer since the last sample, yet the span still holds one: {between} (burst {burst})"
        );
        std::thread::sleep(Duration::from_millis(1_100));
        assert_eq!(
            rate(&mut sampler),
            0.0,
            "a span without records has a rate of 0"
        );
        // The task restarts: registered anew, its counts start from zero, below the old ones.
        let restarted = registry.register(id, "source");
        assert_eq!(rate(&mut sampler), 0.0, "a new history has no rate yet");
        restarted.add_records_out(500);
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            rate(&mut sampler) > 0.0,
            "measured from the new registration's counts, not clipped against the old ones"
        );
    }
}
