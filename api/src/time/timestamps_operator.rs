//! The operator behind `assign_timestamps_and_watermarks`.
//!
//! Invariants: emitted watermarks strictly increase; watermarks and idleness from upstream
//! are dropped except the final maximum watermark at the end of input (as in Flink, this
//! operator owns event time for everything downstream); an idle stream becomes active again
//! with its next record, before that record is forwarded. The clock is read on the periodic
//! tick only, never per record.

use super::strategy::WatermarkStrategy;
use std::time::Duration;
use weir_runtime::output::earliest;
use weir_runtime::task::enter_operator;
use weir_runtime::{now_ms, Lifecycle, Output, TaskError, Timestamp, MAX_WATERMARK, MIN_WATERMARK};

/// Assigns timestamps and emits watermarks.
pub struct TimestampsAndWatermarks<T> {
    strategy: WatermarkStrategy<T>,
    interval_ms: i64,
    out: Box<dyn Output<T>>,
    index: usize,
    max_ts: Timestamp,
    emitted: Timestamp,
    next_emit: Option<Timestamp>,
    last_record: Timestamp,
    saw_record: bool,
    idle: bool,
}

impl<T> TimestampsAndWatermarks<T> {
    pub(crate) fn new(
        strategy: WatermarkStrategy<T>,
        interval: Duration,
        out: Box<dyn Output<T>>,
        index: usize,
    ) -> Self {
        let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        let periodic = strategy.out_of_orderness.is_some() && interval_ms > 0;
        Self {
            strategy,
            interval_ms,
            out,
            index,
            max_ts: MIN_WATERMARK,
            emitted: MIN_WATERMARK,
            next_emit: periodic.then(|| now_ms().saturating_add(interval_ms)),
            last_record: now_ms(),
            saw_record: false,
            idle: false,
        }
    }

    fn current(&self) -> Option<Timestamp> {
        (self.max_ts != MIN_WATERMARK)
            .then(|| self.strategy.watermark_for(self.max_ts))
            .flatten()
    }

    fn emit_watermark(&mut self) -> Result<(), TaskError> {
        if let Some(wm) = self.current() {
            if wm > self.emitted {
                self.emitted = wm;
                self.out.watermark(wm)?;
            }
        }
        Ok(())
    }

    fn idle_deadline(&self) -> Option<Timestamp> {
        match self.strategy.idleness {
            Some(t) if !self.idle => Some(
                self.last_record
                    .saturating_add(i64::try_from(t.as_millis()).unwrap_or(i64::MAX)),
            ),
            _ => None,
        }
    }
}

impl<T> Output<T> for TimestampsAndWatermarks<T> {
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let ts = self.strategy.timestamp(&value, ts);
        self.saw_record = true;
        if self.idle {
            self.idle = false;
            self.out.idle(false)?;
        }
        if ts > self.max_ts {
            self.max_ts = ts;
        }
        self.out.emit(value, ts)?;
        if self.interval_ms == 0 {
            self.emit_watermark()?;
        }
        Ok(())
    }
}

impl<T> Lifecycle for TimestampsAndWatermarks<T> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.out)
    }
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        if wm == MAX_WATERMARK && self.emitted < MAX_WATERMARK {
            self.emitted = MAX_WATERMARK;
            self.out.watermark(wm)?;
        }
        Ok(())
    }
    fn idle(&mut self, _idle: bool) -> Result<(), TaskError> {
        Ok(())
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        if self.saw_record {
            self.saw_record = false;
            self.last_record = now;
        }
        if let Some(next) = self.next_emit {
            if now >= next {
                self.emit_watermark()?;
                self.next_emit = Some(now.saturating_add(self.interval_ms));
            }
        }
        if let Some(deadline) = self.idle_deadline() {
            if now >= deadline {
                self.idle = true;
                self.out.idle(true)?;
            }
        }
        self.out.processing_time(now)
    }
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        earliest(
            earliest(self.next_emit, self.idle_deadline()),
            self.out.next_processing_time(),
        )
    }
}
