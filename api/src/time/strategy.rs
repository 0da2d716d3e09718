//! Watermark strategies, as Flink's `WatermarkStrategy`: how records get timestamps and how
//! watermarks follow them.
//!
//! With bounded out-of-orderness `d`, the watermark after seeing maximum timestamp `m` is
//! `m - d - 1` (every record with a timestamp above it may still arrive). With idleness `t`,
//! a generator that saw no record for `t` of processing time marks its stream idle, so it
//! stops holding back the watermark of downstream operators until records flow again.

use crate::datastream::DataStream;
use crate::record::Record;
use crate::time::timestamps_operator::TimestampsAndWatermarks;
use std::sync::Arc;
use std::time::Duration;
use weir_runtime::Timestamp;

/// Extracts an event timestamp from a record (and the timestamp it carried, if any).
pub type TimestampAssigner<T> = Arc<dyn Fn(&T, Timestamp) -> Timestamp + Send + Sync>;

/// How a stream's records get timestamps and watermarks.
pub struct WatermarkStrategy<T> {
    pub(crate) assigner: Option<TimestampAssigner<T>>,
    /// `None`: emit no watermarks (only the final one at the end of input).
    pub(crate) out_of_orderness: Option<i64>,
    pub(crate) idleness: Option<Duration>,
}

impl<T> Clone for WatermarkStrategy<T> {
    fn clone(&self) -> Self {
        Self {
            assigner: self.assigner.clone(),
            out_of_orderness: self.out_of_orderness,
            idleness: self.idleness,
        }
    }
}

impl<T> WatermarkStrategy<T> {
    /// Watermarks trail the highest timestamp seen by `max_out_of_orderness`.
    pub fn for_bounded_out_of_orderness(max_out_of_orderness: Duration) -> Self {
        Self {
            assigner: None,
            out_of_orderness: Some(
                i64::try_from(max_out_of_orderness.as_millis()).unwrap_or(i64::MAX),
            ),
            idleness: None,
        }
    }

    /// Timestamps never decrease: the watermark is the highest timestamp seen, minus one.
    pub fn for_monotonous_timestamps() -> Self {
        Self::for_bounded_out_of_orderness(Duration::ZERO)
    }

    /// No watermarks; event-time windows fire only at the end of a bounded input.
    pub fn no_watermarks() -> Self {
        Self {
            assigner: None,
            out_of_orderness: None,
            idleness: None,
        }
    }

    /// Takes each record's timestamp from `f(record, previous_timestamp)`.
    pub fn with_timestamp_assigner(
        mut self,
        f: impl Fn(&T, Timestamp) -> Timestamp + Send + Sync + 'static,
    ) -> Self {
        self.assigner = Some(Arc::new(f));
        self
    }

    /// Marks the stream idle after `timeout` of processing time without records.
    pub fn with_idleness(mut self, timeout: Duration) -> Self {
        self.idleness = Some(timeout);
        self
    }

    /// Returns the timestamp of `value`, which carried `previous` (the assigner's, or
    /// `previous` without one): for sources that generate watermarks themselves.
    #[inline]
    pub fn timestamp(&self, value: &T, previous: Timestamp) -> Timestamp {
        match &self.assigner {
            Some(f) => f(value, previous),
            None => previous,
        }
    }

    /// Returns the watermark after seeing `max_timestamp` (`None`: no watermarks).
    #[inline]
    pub fn watermark_for(&self, max_timestamp: Timestamp) -> Option<Timestamp> {
        self.out_of_orderness
            .map(|d| max_timestamp.saturating_sub(d).saturating_sub(1))
    }

    /// Returns whether the strategy generates watermarks at all.
    pub fn emits_watermarks(&self) -> bool {
        self.out_of_orderness.is_some()
    }

    /// Returns the idleness timeout, if set.
    pub fn idleness(&self) -> Option<Duration> {
        self.idleness
    }
}

impl<T: Record> DataStream<T> {
    /// Assigns event timestamps and generates watermarks with `strategy`.
    pub fn assign_timestamps_and_watermarks(
        &self,
        strategy: WatermarkStrategy<T>,
    ) -> DataStream<T> {
        self.add_one_input("Timestamps/Watermarks", None, false, move |ctx, out| {
            Ok(Box::new(TimestampsAndWatermarks::new(
                strategy.clone(),
                ctx.config.auto_watermark_interval,
                out,
                ctx.index,
            )))
        })
    }
}
