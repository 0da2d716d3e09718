//! The process's Prometheus endpoint and the names metrics are published under.
//!
//! [`start_exporter`] installs `metrics-exporter-prometheus` as the `metrics` facade's
//! recorder and serves `GET /metrics` on the first free port of `metrics.prometheus.port`
//! (a port or a range, as Flink's `metrics.reporter.prom.port`, so that the TaskManagers and
//! job workers of one host each find one). Names follow Flink's scopes with Weir's prefix:
//! `weir_taskmanager_job_task_numRecordsIn{job_id, task_name, subtask_index, tm_id}`,
//! `weir_jobmanager_job_uptime{job_id, job_name}`, `weir_jobmanager_taskSlotsTotal`, ...
//!
//! Counts are exported as gauges, as Flink's reporter does, so that a task restarted in the
//! same process shows its new count at once.
//!
//! Invariants: the facade is only written here and by the JobManager's publisher, once per
//! sampling interval, never on the data path (tasks count in their own atomics, see
//! [`super::TaskMetrics`]); metrics nobody updated for [`IDLE_TIMEOUT`] (a job that ended)
//! leave the endpoint.

use super::TaskMetricsReport;
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder};
use metrics_util::MetricKindMask;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use thiserror::Error;

/// Metrics not updated for this long are dropped from the endpoint.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The ports a process may serve its metrics on: one, or an inclusive range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The first port tried.
    pub first: u16,
    /// The last port tried.
    pub last: u16,
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// Where a process serves its metrics: `metrics.prometheus.host` and `.port`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The address bound.
    pub host: IpAddr,
    /// The ports tried, in order.
    pub ports: PortRange,
}

/// What [`port_range`] accepts, for error messages.
const PORT_RANGE: &str =
    "a port (`9249`), an inclusive range (`9250-9260`), or `0` for any free port";

/// Parses `metrics.prometheus.port`: `9249`, `9250-9260`, or `0` (any free port).
pub fn port_range(v: &str) -> Result<PortRange, &'static str> {
    let v = v.trim();
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    let first: u16 = a.trim().parse().map_err(|_| PORT_RANGE)?;
    let last: u16 = b.trim().parse().map_err(|_| PORT_RANGE)?;
    if last < first || (first == 0 && last != 0) {
        return Err(PORT_RANGE);
    }
    Ok(PortRange { first, last })
}

/// Why the exporter could not start.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// No port of the range could be bound.
    #[error("cannot serve Prometheus metrics on {host} ports {first}-{last} (metrics.prometheus.port): {reason}")]
    NoPort {
        /// The host.
        host: IpAddr,
        /// The first port of the range.
        first: u16,
        /// The last port of the range.
        last: u16,
        /// The last bind error.
        reason: String,
    },
    /// The process already has a metrics recorder.
    #[error("this process already exports metrics")]
    AlreadyInstalled,
    /// The exporter's thread or runtime could not be created.
    #[error("cannot start the Prometheus exporter: {0}")]
    Runtime(std::io::Error),
}

/// Serves this process's metrics at `http://HOST:PORT/metrics` on the first port of the
/// endpoint's range that binds, from a thread of its own; returns the address.
pub fn start_exporter(endpoint: Endpoint) -> Result<SocketAddr, MetricsError> {
    let Endpoint { host, ports } = endpoint;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(MetricsError::Runtime)?;
    let mut last_error = String::new();
    for port in ports.first..=ports.last {
        let want = SocketAddr::new(host, port);
        let listener = match std::net::TcpListener::bind(want) {
            Ok(l) => l,
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        // Port 0 binds any free port: learn it, then let the exporter bind it.
        let addr = listener.local_addr().map_err(MetricsError::Runtime)?;
        drop(listener);
        let built = {
            let _entered = runtime.enter();
            PrometheusBuilder::new()
                .with_http_listener(addr)
                .idle_timeout(MetricKindMask::ALL, Some(IDLE_TIMEOUT))
                .build()
        };
        let (recorder, exporter) = match built {
            Ok(b) => b,
            Err(BuildError::FailedToCreateHTTPListener(e)) => {
                last_error = e;
                continue;
            }
            Err(e) => {
                last_error = e.to_string();
                continue;
            }
        };
        ::metrics::set_global_recorder(recorder).map_err(|_| MetricsError::AlreadyInstalled)?;
        std::thread::Builder::new()
            .name("weir-metrics".into())
            .spawn(move || {
                let _ = runtime.block_on(exporter);
            })
            .map_err(MetricsError::Runtime)?;
        return Ok(addr);
    }
    Err(MetricsError::NoPort {
        host,
        first: ports.first,
        last: ports.last,
        reason: last_error,
    })
}

/// Publishes the reports of the tasks of TaskManager `tm_id` under Flink's task scope.
pub fn publish_tasks(tm_id: &str, reports: &[TaskMetricsReport]) {
    for r in reports {
        let labels = [
            ("job_id", r.subtask.job.to_string()),
            ("task_name", r.task.clone()),
            ("subtask_index", r.subtask.subtask.to_string()),
            ("tm_id", tm_id.to_string()),
        ];
        // Gauges, as Flink's Prometheus reporter exports its counters: a task restarted
        // in the same worker counts from 0 again, which a Prometheus counter (whose value
        // only ever grows here) would hide until the new count passed the old.
        let gauge = |name: &'static str, v: f64| {
            ::metrics::gauge!(name, &labels).set(v);
        };
        for (name, v) in task_gauges(r) {
            gauge(name, v);
        }
    }
}

/// The gauges of one task report, by their Prometheus names; watermarks and pending
/// records only once known.
fn task_gauges(r: &TaskMetricsReport) -> Vec<(&'static str, f64)> {
    let mut g = vec![
        (
            "weir_taskmanager_job_task_numRecordsIn",
            r.records_in as f64,
        ),
        (
            "weir_taskmanager_job_task_numRecordsOut",
            r.records_out as f64,
        ),
        (
            "weir_taskmanager_job_task_numRecordsInPerSecond",
            r.records_in_per_second,
        ),
        (
            "weir_taskmanager_job_task_numRecordsOutPerSecond",
            r.records_out_per_second,
        ),
        (
            "weir_taskmanager_job_task_backPressuredTimeMsPerSecond",
            r.back_pressured_ms_per_second,
        ),
        (
            "weir_taskmanager_job_task_busyTimeMsPerSecond",
            r.busy_ms_per_second,
        ),
        (
            "weir_taskmanager_job_task_idleTimeMsPerSecond",
            r.idle_ms_per_second,
        ),
        (
            "weir_taskmanager_job_task_buffers_inPoolUsage",
            r.in_pool_usage,
        ),
        (
            "weir_taskmanager_job_task_buffers_outPoolUsage",
            r.out_pool_usage,
        ),
    ];
    if let Some(wm) = r.input_watermark {
        g.push(("weir_taskmanager_job_task_currentInputWatermark", wm as f64));
    }
    if let Some(wm) = r.output_watermark {
        g.push((
            "weir_taskmanager_job_task_currentOutputWatermark",
            wm as f64,
        ));
    }
    if let Some(n) = r.pending_records {
        g.push(("weir_taskmanager_job_task_pendingRecords", n as f64));
    }
    g
}

/// Publishes this process's resident memory under `scope` (`taskmanager` or
/// `jobmanager`) as `weir_<scope>_Status_Memory_RSS`, in bytes, where the platform tells.
pub fn publish_process_memory(scope: &'static str, labels: &[(&'static str, String)]) {
    if let Some(rss) = resident_memory_bytes() {
        let name = match scope {
            "jobmanager" => "weir_jobmanager_Status_Memory_RSS",
            _ => "weir_taskmanager_Status_Memory_RSS",
        };
        ::metrics::gauge!(name, labels).set(rss as f64);
    }
}

/// This process's resident set size in bytes (Linux: `VmRSS` of `/proc/self/status`).
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_range_is_one_port_an_inclusive_range_or_any() {
        assert_eq!(
            port_range("9249"),
            Ok(PortRange {
                first: 9249,
                last: 9249
            })
        );
        assert_eq!(
            port_range(" 9250 - 9260 "),
            Ok(PortRange {
                first: 9250,
                last: 9260
            })
        );
        assert_eq!(port_range("0"), Ok(PortRange { first: 0, last: 0 }));
        for bad in ["", "x", "9260-9250", "0-10", "70000", "1-2-3"] {
            assert!(port_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_resident_memory_of_a_running_process_is_known_on_linux() {
        let rss = resident_memory_bytes().expect("linux");
        assert!(rss > 1 << 20, "{rss}");
    }
}
