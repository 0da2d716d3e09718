//! Per-partition watermarks of a Kafka reader, as Flink's Kafka source: the watermark
//! strategy runs for each partition on its own, and the reader emits the minimum over its
//! partitions, so how the reader interleaves its partitions never makes a record late.
//!
//! Invariants: a partition read to its end (bounded mode) no longer holds the minimum back;
//! with idleness, a partition without records for the timeout does not either, and when
//! every partition is idle the reader's stream is marked idle until a record arrives. The
//! emitted watermark never decreases.

use super::split::KafkaSplit;
use std::time::{Duration, Instant};
use weir_api::time::WatermarkStrategy;
use weir_runtime::{Output, TaskError, Timestamp, MIN_WATERMARK};

/// What one partition's watermark follows.
#[derive(Clone, Copy)]
struct PartitionClock {
    max_ts: Timestamp,
    last_record: Instant,
}

/// The watermark state of one reader's partitions (by split index).
pub(crate) struct PartitionWatermarks {
    clocks: Vec<PartitionClock>,
    emitted: Timestamp,
    idle: bool,
    idleness: Option<Duration>,
}

impl PartitionWatermarks {
    pub(crate) fn new(idleness: Option<Duration>) -> Self {
        Self {
            clocks: Vec::new(),
            emitted: MIN_WATERMARK,
            idle: false,
            idleness,
        }
    }

    /// Forgets every partition (after a restore).
    pub(crate) fn reset(&mut self) {
        self.clocks.clear();
    }

    fn clock(&mut self, split: usize) -> &mut PartitionClock {
        while self.clocks.len() <= split {
            self.clocks.push(PartitionClock {
                max_ts: MIN_WATERMARK,
                last_record: Instant::now(),
            });
        }
        &mut self.clocks[split]
    }

    /// Split `split` emitted a record with timestamp `ts`; an idle stream becomes active.
    pub(crate) fn record<T>(
        &mut self,
        split: usize,
        ts: Timestamp,
        out: &mut dyn Output<T>,
    ) -> Result<(), TaskError> {
        let c = self.clock(split);
        c.max_ts = c.max_ts.max(ts);
        c.last_record = Instant::now();
        if self.idle {
            self.idle = false;
            out.idle(false)?;
        }
        Ok(())
    }

    /// Emits the minimum watermark over the partitions that hold it back, if it advanced,
    /// or marks the stream idle when every partition is.
    pub(crate) fn emit<T>(
        &mut self,
        strategy: &WatermarkStrategy<T>,
        splits: &[KafkaSplit],
        out: &mut dyn Output<T>,
    ) -> Result<(), TaskError> {
        let now = Instant::now();
        let idleness = self.idleness;
        let mut min: Option<Timestamp> = None;
        let mut all_idle = !splits.is_empty();
        for (i, s) in splits.iter().enumerate() {
            if s.is_finished() {
                continue;
            }
            let c = *self.clock(i);
            if idleness.is_some_and(|t| now.saturating_duration_since(c.last_record) >= t) {
                continue;
            }
            all_idle = false;
            let wm = strategy.watermark_for(c.max_ts).unwrap_or(MIN_WATERMARK);
            min = Some(min.map_or(wm, |m| m.min(wm)));
        }
        if let Some(wm) = min {
            if wm > self.emitted && strategy.emits_watermarks() {
                self.emitted = wm;
                out.watermark(wm)?;
            }
        } else if all_idle && idleness.is_some() && !self.idle {
            self.idle = true;
            out.idle(true)?;
        }
        Ok(())
    }
}
