//! The latency sink of the `latency` workload: each writer keeps the end-to-end latency
//! (creation time carried in the record to the sink) of every record it sees, in
//! microseconds, and hands them over once at the end, so the hot path takes no lock.

use super::Record100;

/// Nanoseconds since the Unix epoch (0 before it).
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Measures end-to-end latency (creation to sink) in microseconds.
#[derive(Clone, Default)]
pub(crate) struct LatencySink {
    pub(crate) samples: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
}

impl weir_api::sink::SinkFunction<Record100> for LatencySink {
    fn create_writer(
        &self,
        _ctx: &weir_api::sink::SinkContext,
    ) -> Result<Box<dyn weir_api::sink::SinkWriter<Record100>>, weir_api::TaskError> {
        Ok(Box::new(LatencyWriter {
            shared: self.samples.clone(),
            local: Vec::new(),
        }))
    }
}

struct LatencyWriter {
    shared: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
    local: Vec<u32>,
}

impl weir_api::sink::SinkWriter<Record100> for LatencyWriter {
    fn write(&mut self, r: Record100, _ts: weir_api::Timestamp) -> Result<(), weir_api::TaskError> {
        let micros = now_ns().saturating_sub(r.1) / 1000;
        self.local.push(micros.min(u32::MAX as u64) as u32);
        Ok(())
    }
    fn finish(&mut self) -> Result<(), weir_api::TaskError> {
        self.shared
            .lock()
            .map_err(|_| weir_api::TaskError::Io("latency samples poisoned".into()))?
            .append(&mut self.local);
        Ok(())
    }
}

/// Returns the `q`-quantile of sorted samples, in milliseconds.
pub(crate) fn quantile_ms(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_pick_from_sorted_samples() {
        let s: Vec<u32> = (1..=100).map(|x| x * 1000).collect();
        assert_eq!(quantile_ms(&s, 0.5), 51.0);
        assert_eq!(quantile_ms(&s, 0.99), 99.0);
        assert_eq!(quantile_ms(&[], 0.5), 0.0);
    }
}
