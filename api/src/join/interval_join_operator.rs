//! The operator of an interval join (Flink's `IntervalJoinOperator`): a keyed two-input
//! operator that buffers each side's records per key and timestamp, joins every arriving
//! record with the buffered records of the other side inside its interval, and drops buffered
//! records once the watermark shows that no partner can come any more.
//!
//! Invariants:
//! - A record of either side is buffered (`buffer_1`/`buffer_2`: key → timestamp → records)
//!   unless it is late (its timestamp below the watermark), and it joins with the other
//!   side's buffer before it waits there, so each pair is emitted once, by its later record.
//!   A late record joins nothing: it goes to its side's late-data output, or is dropped.
//! - Each buffered timestamp has an event-time cleanup timer, namespaced by its side and
//!   timestamp, at the last time a partner could still arrive on time: the first side's
//!   records at `t` wait until `t + max(upper, 0)`, the second side's until
//!   `t + max(-lower, 0)`. The timers and buffers are keyed state, so checkpoints, restores
//!   and rescaling keep them together.

use super::interval_join::{IntervalJoinContext, LateTags, ProcessJoinFunction};
use crate::functions::OutputTag;
use crate::functions::{user_error, Downstream};
use crate::graph::heads::TwoInputOperator;
use crate::graph::OperatorContext;
use crate::operators::keyed_process::KeyFn;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, TaskError, Timestamp, MIN_WATERMARK, NO_TIMESTAMP};
use weir_state_backends::{
    KeyedStateBackend, MapState, StateError, StateKey, Timer, TimerService, VoidNamespace,
};

/// The interval of an interval join, inclusive at both ends, in ms relative to a record
/// of the first side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) lower: i64,
    pub(crate) upper: i64,
}

/// Bounds that leave no interval once their exclusive ends are left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "interval join between({lower}, {upper}){} is empty: the lower bound must not exceed the upper bound",
    exclusive_ends(*lower_exclusive, *upper_exclusive)
)]
pub(crate) struct EmptyInterval {
    lower: i64,
    upper: i64,
    lower_exclusive: bool,
    upper_exclusive: bool,
}

/// The builder calls that made the ends exclusive, as written.
fn exclusive_ends(lower: bool, upper: bool) -> String {
    let mut calls = String::new();
    if lower {
        calls.push_str(".lower_bound_exclusive()");
    }
    if upper {
        calls.push_str(".upper_bound_exclusive()");
    }
    calls
}

impl Bounds {
    /// The inclusive interval of `(lower, exclusive)` and `(upper, exclusive)`, or why it is
    /// empty.
    pub(crate) fn new(
        (lower, lower_exclusive): (i64, bool),
        (upper, upper_exclusive): (i64, bool),
    ) -> Result<Self, EmptyInterval> {
        let l = lower.saturating_add(i64::from(lower_exclusive));
        let u = upper.saturating_sub(i64::from(upper_exclusive));
        if l > u {
            return Err(EmptyInterval {
                lower,
                upper,
                lower_exclusive,
                upper_exclusive,
            });
        }
        Ok(Self { lower: l, upper: u })
    }
}

/// Which input a buffered record came from.
const FIRST: u8 = 0;
const SECOND: u8 = 1;

/// A cleanup timer's namespace: the side and the buffered timestamp it removes.
type Cleanup = (u8, Timestamp);

/// Records of one side waiting for partners: per key, timestamp → records.
type Buffer<K, T> = MapState<K, VoidNamespace, Timestamp, Vec<T>>;

/// The operator of `IntervalJoined::process`.
pub(crate) struct IntervalJoinOperator<K: StateKey, T1, T2, O, F> {
    key1: KeyFn<T1, K>,
    key2: KeyFn<T2, K>,
    bounds: Bounds,
    f: F,
    backend: KeyedStateBackend<K>,
    buffer_1: Buffer<K, T1>,
    buffer_2: Buffer<K, T2>,
    timers: TimerService<K, Cleanup>,
    fired: Vec<Timer<K, Cleanup>>,
    down: Downstream<O>,
    late: LateTags<T1, T2>,
    watermark: Timestamp,
    dropped_late: u64,
    name: String,
    uid: String,
    index: usize,
}

impl<K, T1, T2, O, F> IntervalJoinOperator<K, T1, T2, O, F>
where
    K: StateKey,
    T1: weir_state_backends::StateValue,
    T2: weir_state_backends::StateValue,
    F: ProcessJoinFunction<T1, T2, O>,
{
    pub(crate) fn new(
        (key1, key2): (KeyFn<T1, K>, KeyFn<T2, K>),
        bounds: Bounds,
        f: F,
        (backend, timers): (KeyedStateBackend<K>, TimerService<K, Cleanup>),
        down: Downstream<O>,
        late: LateTags<T1, T2>,
        ctx: &OperatorContext,
    ) -> Result<Self, TaskError> {
        let err = |e: StateError| TaskError::user(&ctx.name, e.to_string());
        Ok(Self {
            key1,
            key2,
            bounds,
            f,
            buffer_1: backend.map_state("interval-join-first").map_err(err)?,
            buffer_2: backend.map_state("interval-join-second").map_err(err)?,
            backend,
            timers,
            fired: Vec::new(),
            down,
            late,
            watermark: MIN_WATERMARK,
            dropped_late: 0,
            name: ctx.name.clone(),
            uid: ctx.uid.clone(),
            index: ctx.index,
        })
    }

    fn err(&self, e: StateError) -> TaskError {
        TaskError::user(&self.name, e.to_string())
    }

    /// Whether a record at `ts` is late (behind the watermark); fails on a record without a
    /// timestamp.
    fn is_late(&self, ts: Timestamp) -> Result<bool, TaskError> {
        if ts == NO_TIMESTAMP {
            return Err(TaskError::user(
                &self.name,
                "record has no event timestamp: call assign_timestamps_and_watermarks on both \
                 inputs of an interval join",
            ));
        }
        Ok(self.watermark != MIN_WATERMARK && ts < self.watermark)
    }

    /// Sends a late record at `ts` to its side's late-data output `tag`, or drops it.
    fn late<T: 'static>(
        down: &mut Downstream<O>,
        tag: Option<&OutputTag<T>>,
        (value, ts): (T, Timestamp),
        dropped: &mut u64,
    ) -> Result<(), TaskError> {
        match tag {
            Some(tag) => down.sides.emit(tag, value, ts),
            None => {
                *dropped += 1;
                Ok(())
            }
        }
    }

    /// Calls the function for the pair (`left` at `left_ts`, `right` at `right_ts`).
    fn emit(
        &mut self,
        left: T1,
        right: T2,
        (left_ts, right_ts): (Timestamp, Timestamp),
    ) -> Result<(), TaskError> {
        let mut ctx = IntervalJoinContext {
            base: self.down.context(left_ts.max(right_ts), self.watermark),
            left: left_ts,
            right: right_ts,
        };
        let r = self.f.process_element(left, right, &mut ctx);
        if let Some(e) = ctx.base.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }

    /// Appends `value` to `buffer` at `ts` under the current key and registers its cleanup.
    fn buffer<T: weir_state_backends::StateValue>(
        buffer: &Buffer<K, T>,
        timers: &mut TimerService<K, Cleanup>,
        (key, side, ts, cleanup): (K, u8, Timestamp, Timestamp),
        value: T,
    ) -> Result<(), StateError> {
        let mut records = buffer.get(&ts)?.unwrap_or_default();
        records.push(value);
        buffer.put(ts, records)?;
        timers.register_event_time_timer(key, (side, ts), cleanup)?;
        Ok(())
    }

    /// Fires the cleanup timers due at the watermark `wm`: drops the buffered records no
    /// partner can reach any more.
    fn clean_up(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        let mut fired = std::mem::take(&mut self.fired);
        while self
            .timers
            .pop_due(true, wm, &mut fired)
            .map_err(|e| self.err(e))?
        {
            for t in fired.drain(..) {
                self.backend
                    .set_current_key(t.key)
                    .map_err(|e| self.err(e))?;
                let (side, ts) = t.namespace;
                let removed = if side == FIRST {
                    self.buffer_1.remove(&ts)
                } else {
                    self.buffer_2.remove(&ts)
                };
                removed.map_err(|e| self.err(e))?;
            }
        }
        self.fired = fired;
        Ok(())
    }
}

/// The buffered records of `buffer` (current key) with timestamps in `[from, to]`.
fn in_range<K: StateKey, T: weir_state_backends::StateValue>(
    buffer: &Buffer<K, T>,
    (from, to): (Timestamp, Timestamp),
) -> Result<Vec<(Timestamp, Vec<T>)>, StateError> {
    let mut found = Vec::new();
    buffer.for_each(|ts, records| {
        if (from..=to).contains(ts) {
            found.push((*ts, records.clone()));
        }
    })?;
    Ok(found)
}

impl<K, T1, T2, O, F> TwoInputOperator<T1, T2> for IntervalJoinOperator<K, T1, T2, O, F>
where
    K: StateKey,
    T1: weir_state_backends::StateValue,
    T2: weir_state_backends::StateValue,
    F: ProcessJoinFunction<T1, T2, O>,
{
    fn process1(&mut self, value: T1, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        if self.is_late(ts)? {
            let (down, dropped) = (&mut self.down, &mut self.dropped_late);
            return Self::late(down, self.late.0.as_ref(), (value, ts), dropped);
        }
        let key = (self.key1)(&value);
        self.backend
            .set_current_key(key.clone())
            .map_err(|e| self.err(e))?;
        let Bounds { lower, upper } = self.bounds;
        let range = (ts.saturating_add(lower), ts.saturating_add(upper));
        for (right_ts, rights) in in_range(&self.buffer_2, range).map_err(|e| self.err(e))? {
            for right in rights {
                self.emit(value.clone(), right, (ts, right_ts))?;
            }
        }
        let cleanup = ts.saturating_add(upper.max(0));
        Self::buffer(
            &self.buffer_1,
            &mut self.timers,
            (key, FIRST, ts, cleanup),
            value,
        )
        .map_err(|e| self.err(e))
    }

    fn process2(&mut self, value: T2, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        if self.is_late(ts)? {
            let (down, dropped) = (&mut self.down, &mut self.dropped_late);
            return Self::late(down, self.late.1.as_ref(), (value, ts), dropped);
        }
        let key = (self.key2)(&value);
        self.backend
            .set_current_key(key.clone())
            .map_err(|e| self.err(e))?;
        let Bounds { lower, upper } = self.bounds;
        // x.ts + lower <= ts <= x.ts + upper, so x.ts in [ts - upper, ts - lower].
        let range = (ts.saturating_sub(upper), ts.saturating_sub(lower));
        for (left_ts, lefts) in in_range(&self.buffer_1, range).map_err(|e| self.err(e))? {
            for left in lefts {
                self.emit(left, value.clone(), (left_ts, ts))?;
            }
        }
        let cleanup = ts.saturating_add(lower.saturating_neg().max(0));
        Self::buffer(
            &self.buffer_2,
            &mut self.timers,
            (key, SECOND, ts, cleanup),
            value,
        )
        .map_err(|e| self.err(e))
    }
}

impl<K, T1, T2, O, F> Lifecycle for IntervalJoinOperator<K, T1, T2, O, F>
where
    K: StateKey,
    T1: weir_state_backends::StateValue,
    T2: weir_state_backends::StateValue,
    F: ProcessJoinFunction<T1, T2, O>,
{
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut self.down)
    }
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.watermark = wm;
        self.clean_up(wm)?;
        self.down.watermark(wm)
    }
    crate::operators::keyed_checkpointing::keyed_checkpointing!();
    fn close(&mut self) -> Result<(), TaskError> {
        if self.dropped_late > 0 {
            tracing::info!(operator = %self.name, dropped = self.dropped_late, "late records dropped by the interval join");
        }
        self.down.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_bounds_leave_their_end_out() {
        assert_eq!(
            Bounds::new((-2, true), (3, true)),
            Ok(Bounds {
                lower: -1,
                upper: 2
            })
        );
        assert_eq!(
            Bounds::new((5, false), (5, false)),
            Ok(Bounds { lower: 5, upper: 5 })
        );
    }

    #[test]
    fn an_empty_interval_is_refused_naming_its_bounds() {
        let err = Bounds::new((5, true), (5, false)).unwrap_err().to_string();
        assert!(
            err.contains("between(5, 5).lower_bound_exclusive()"),
            "{err}"
        );
        assert!(Bounds::new((3, false), (1, false)).is_err());
    }
}
