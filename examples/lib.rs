//! Shared pieces of the example jobs: the sensor data model, its deterministic generator,
//! and small sinks that count or summarise results.

mod sensor_model;

pub use sensor_model::{plausible_temperature, sensor_reading};

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use weir_api::sink::FileSink;
use weir_api::sink::{SinkContext, SinkFunction, SinkWriter};
use weir_api::time::WatermarkStrategy;
use weir_api::{
    CheckpointId, DataStream, GeneratorSource, StreamExecutionEnvironment, TaskError, Timestamp,
};

/// Sends logs to standard error (`RUST_LOG` filters them; warnings by default), as text
/// colored only on a terminal, or as JSON lines when the process runs under
/// `weir --log-format json` (see [`weir_api::logging`]).
pub fn init_logging() {
    weir_api::logging::init("warn");
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
    let (sensor, ts) = sensor_and_time(id, n);
    let temperature = ((id.wrapping_mul(7919).wrapping_add(seed)) % 1000) as f64 / 10.0 - 20.0;
    (sensor, ts, temperature)
}

/// The sensor and event time of sequence number `id` of `n` in [`sensor_row`].
#[inline]
pub fn sensor_and_time(id: u64, n: u64) -> (u32, i64) {
    let half = n.div_ceil(2).max(1);
    let sensor = (id.wrapping_mul(2_654_435_761) % SENSORS) as u32;
    let ts = EVENT_BASE_MS + ((id % half) / ROWS_PER_MS_PER_SUBTASK) as i64;
    (sensor, ts)
}

/// Number of sensors in [`sensor_row`] and [`setpoint`].
pub const SENSORS: u64 = 10_000;

/// Whole seconds of event time that the first `n` rows of [`sensor_row`] cover (a second
/// begun counts).
pub fn event_seconds(n: u64) -> u64 {
    n.div_ceil(2)
        .div_ceil(ROWS_PER_MS_PER_SUBTASK * 1000)
        .max(1)
}

/// The thermostat setpoint with sequence number `id` (the `window_join` example): one per
/// sensor and second of event time from [`EVENT_BASE_MS`], at a millisecond within the
/// second that depends on the sensor; returns `(sensor_id, event time ms, degrees)`.
pub fn setpoint(id: u64) -> (u32, i64, f64) {
    let sensor = id % SENSORS;
    let second = (id / SENSORS) as i64;
    let ts = EVENT_BASE_MS + second * 1000 + (sensor.wrapping_mul(7919) % 1000) as i64;
    let degrees = 18.0 + (sensor % 8) as f64 + (second % 3) as f64 * 0.5;
    (sensor as u32, ts, degrees)
}

/// Readings as `(sensor_id, event time ms, temperature)`.
pub type Reading = (u32, i64, f64);

/// The first `n` rows of [`sensor_row`] (seed `seed`) as a stream with event time and
/// watermarks. The rows' event time restarts at the second half: two readers keep it
/// ascending, and their watermark generators run beside them (at another parallelism,
/// records of both halves would meet in one generator).
pub fn sensor_readings(env: &StreamExecutionEnvironment, n: u64, seed: u64) -> DataStream<Reading> {
    env.from_generator(GeneratorSource::new(Some(n), move |id| {
        sensor_row(id, n, seed)
    }))
    .name("Readings")
    .set_parallelism(2)
    .assign_timestamps_and_watermarks(in_order(|r: &Reading| r.1))
    .set_parallelism(2)
}

/// The setpoints of [`setpoint`] for as long as the first `n` readings last, with event
/// time and watermarks.
pub fn setpoints(env: &StreamExecutionEnvironment, n: u64) -> DataStream<Reading> {
    env.from_generator(GeneratorSource::new(
        Some(event_seconds(n) * SENSORS),
        setpoint,
    ))
    .name("Setpoints")
    .assign_timestamps_and_watermarks(in_order(|s: &Reading| s.1))
}

/// Sensor families of [`threshold`]: a sensor's family is its id modulo this.
pub const FAMILIES: u64 = 8;

/// The alert threshold of sensor family `family` in period `period` of event time (the
/// `threshold_alerts` example): it changes every period, between 10 and 75 degrees.
pub fn threshold(family: u8, period: i64) -> f64 {
    40.0 + f64::from(family) * 5.0 - (period % 4) as f64 * 10.0
}

/// The threshold rule with sequence number `id`: `(family, period, threshold)`, one per
/// family and period, in period order.
pub fn threshold_rule(id: u64) -> (u8, i64, f64) {
    let family = (id % FAMILIES) as u8;
    let period = (id / FAMILIES) as i64;
    (family, period, threshold(family, period))
}

/// Watermarks one second behind the largest timestamp seen: each generator subtask emits
/// its rows in event-time order, give or take the seconds a row's offset moves it.
pub fn in_order<T: 'static>(ts: fn(&T) -> i64) -> WatermarkStrategy<T> {
    WatermarkStrategy::for_bounded_out_of_orderness(std::time::Duration::from_secs(1))
        .with_timestamp_assigner(move |t: &T, _| ts(t))
}

/// Writes `lines` as part files into `dir`, or prints them when there is none.
pub fn write_lines(lines: &DataStream<String>, dir: Option<&std::path::Path>) {
    match dir {
        Some(dir) => {
            lines.sink_to_files(FileSink::new(dir, |l: &String, out: &mut String| {
                out.push_str(l)
            }));
        }
        None => {
            lines.print();
        }
    }
}

/// Counts the records it receives; read the total with [`CountingSink::count`].
///
/// With checkpointing it counts exactly once across restarts: a subtask's count becomes
/// visible when the checkpoint covering it completes (or at the end of input), and a
/// restarted subtask resumes from the count of the checkpoint it restores.
#[derive(Clone, Default)]
pub struct CountingSink {
    /// Visible count per subtask.
    counts: Arc<std::sync::Mutex<std::collections::HashMap<u16, u64>>>,
}

impl CountingSink {
    /// Returns the number of records counted so far.
    pub fn count(&self) -> u64 {
        self.counts.lock().expect("counts poisoned").values().sum()
    }
}

impl<T: 'static> SinkFunction<T> for CountingSink {
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError> {
        Ok(Box::new(CountingWriter {
            counts: self.counts.clone(),
            subtask: ctx.subtask,
            count: 0,
            pending: Vec::new(),
            transactional: ctx.checkpointing,
        }))
    }
}

struct CountingWriter {
    counts: Arc<std::sync::Mutex<std::collections::HashMap<u16, u64>>>,
    subtask: u16,
    count: u64,
    pending: Vec<(CheckpointId, u64)>,
    transactional: bool,
}

impl CountingWriter {
    fn publish(&self, count: u64) {
        let mut c = self.counts.lock().expect("counts poisoned");
        let e = c.entry(self.subtask).or_insert(0);
        *e = (*e).max(count);
    }
}

impl<T> SinkWriter<T> for CountingWriter {
    fn write(&mut self, _value: T, _ts: Timestamp) -> Result<(), TaskError> {
        self.count += 1;
        Ok(())
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        if !self.transactional {
            self.publish(self.count);
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), TaskError> {
        self.publish(self.count);
        Ok(())
    }
    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        if !self.transactional {
            return Ok(None);
        }
        self.pending.push((checkpoint, self.count));
        Ok(Some(self.count.to_le_bytes().to_vec()))
    }
    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        if let Some(&(_, count)) = self.pending.iter().rev().find(|(c, _)| *c <= checkpoint) {
            self.publish(count);
            self.pending.retain(|(c, _)| *c > checkpoint);
        }
        Ok(())
    }
    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        // After rescaling a subtask may take over the counts of several old subtasks.
        self.count = 0;
        for state in states {
            let bytes: [u8; 8] = state.as_slice().try_into().map_err(|_| {
                TaskError::RestoredState(format!("counting sink state of {} bytes", state.len()))
            })?;
            self.count += u64::from_le_bytes(bytes);
        }
        self.publish(self.count);
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
