//! Shared pieces of the example jobs: the sensor data model, its deterministic generator,
//! and small sinks that count or summarise results.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::{TaskError, Timestamp};

/// Sends logs to standard error (`RUST_LOG` filters them; warnings by default), colored
/// only on a terminal.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// One reading as it appears in the input CSV (`sensor_id,ts_ms,temperature`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    /// The sensor's id.
    pub sensor_id: String,
    /// Event time, milliseconds since the epoch.
    pub ts_ms: i64,
    /// Temperature in degrees.
    pub temperature: f64,
}

/// Event time of the first generated reading (the benchmark harness uses the same base).
pub const EVENT_BASE_MS: i64 = 1_700_000_000_000;
/// Generated readings per millisecond of event time per subtask.
pub const ROWS_PER_MS_PER_SUBTASK: u64 = 50;

/// The deterministic sensor rows shared with the Flink benchmark harness: for sequence
/// number `id` of `n` (each of two subtasks reading a contiguous half), returns
/// `(sensor_id, event time ms, temperature)`. `seed` shifts the temperatures; 0 gives the
/// harness's exact rows.
#[inline]
pub fn sensor_row(id: u64, n: u64, seed: u64) -> (u32, i64, f64) {
    let half = n.div_ceil(2).max(1);
    let sensor = (id.wrapping_mul(2_654_435_761) % 10_000) as u32;
    let temperature = ((id.wrapping_mul(7919).wrapping_add(seed)) % 1000) as f64 / 10.0 - 20.0;
    let ts = EVENT_BASE_MS + ((id % half) / ROWS_PER_MS_PER_SUBTASK) as i64;
    (sensor, ts, temperature)
}

/// Counts the records it receives; read the total with [`CountingSink::count`].
#[derive(Clone, Default)]
pub struct CountingSink {
    count: Arc<AtomicU64>,
}

impl CountingSink {
    /// Returns the number of records received so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

impl<T: 'static> SinkFunction<T> for CountingSink {
    fn create_writer(&self, _ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        Ok(Box::new(CountingWriter {
            total: self.count.clone(),
            local: 0,
        }))
    }
}

struct CountingWriter {
    total: Arc<AtomicU64>,
    local: u64,
}

impl<T> SinkWriter<T> for CountingWriter {
    fn write(&mut self, _value: T, _ts: Timestamp) -> Result<(), TaskError> {
        self.local += 1;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        self.total
            .fetch_add(std::mem::take(&mut self.local), Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensor_rows_follow_the_benchmark_formulas() {
        let n = 2_000_000;
        assert_eq!(sensor_row(0, n, 0), (0, EVENT_BASE_MS, -20.0));
        let (s, ts, t) = sensor_row(1_000_050, n, 0);
        assert_eq!(s, ((1_000_050u64 * 2_654_435_761) % 10_000) as u32);
        assert_eq!(ts, EVENT_BASE_MS + 1, "the second half restarts event time");
        assert_eq!(t, ((1_000_050u64 * 7919) % 1000) as f64 / 10.0 - 20.0);
    }
}
