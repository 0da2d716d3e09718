//! Interval joins of two keyed streams, as Flink's `KeyedStream.intervalJoin`:
//!
//! ```text
//! a.key_by(k).interval_join(&b.key_by(k)).between(lower_ms, upper_ms)
//!     [.lower_bound_exclusive()] [.upper_bound_exclusive()] .process(f)
//! ```
//!
//! A record `x` of the first stream joins every record `y` of the second with the same key
//! and `x.ts + lower <= y.ts <= x.ts + upper` (bounds in milliseconds of event time, either
//! may be negative; an exclusive bound leaves its end out). Each pair reaches the
//! [`ProcessJoinFunction`] once, as soon as its later record arrives, with the larger of the
//! two timestamps. Records wait in keyed state until the watermark passes the last time a
//! partner could come; a record that arrives behind the watermark is late: it goes to the
//! side output of `side_output_left_late_data(&tag)` or `side_output_right_late_data(&tag)`
//! if its side has one, else it is dropped, as in Flink.

use super::interval_join_operator::{Bounds, IntervalJoinOperator};
use crate::functions::{Context, FnResult, OutputTag};
use crate::graph::heads::TwoInputHead;
use crate::graph::stream_graph::{MakeHead, NodeKind};
use crate::graph::type_ops::{typed_output, TypeOpsOf};
use crate::keyed_stream::{key_hasher, open_keyed, KeyedStream};
use crate::record::Record;
use crate::DataStream;
use std::sync::Arc;
use weir_runtime::{Partitioning, TaskError, TaskInvokable, Timestamp};
use weir_state_backends::{StateKey, StateValue};

/// Processes one joined pair of an interval join.
pub trait ProcessJoinFunction<I1, I2, O>: Clone + Send + Sync + 'static {
    /// Handles the pair (`left` of the first stream, `right` of the second); results go to
    /// `ctx`, stamped with the larger of the two timestamps.
    fn process_element(
        &mut self,
        left: I1,
        right: I2,
        ctx: &mut IntervalJoinContext<'_, O>,
    ) -> FnResult;
}

impl<I1, I2, O, F> ProcessJoinFunction<I1, I2, O> for F
where
    F: Fn(I1, I2, &mut IntervalJoinContext<'_, O>) -> FnResult + Clone + Send + Sync + 'static,
{
    fn process_element(
        &mut self,
        left: I1,
        right: I2,
        ctx: &mut IntervalJoinContext<'_, O>,
    ) -> FnResult {
        self(left, right, ctx)
    }
}

/// The collector and context of one joined pair.
pub struct IntervalJoinContext<'a, O> {
    pub(crate) base: Context<'a, O>,
    pub(crate) left: Timestamp,
    pub(crate) right: Timestamp,
}

impl<O> IntervalJoinContext<'_, O> {
    /// Emits a result with the pair's timestamp (the larger of the two).
    pub fn collect(&mut self, value: O) {
        self.base.collect(value);
    }

    /// Emits a record to a side output.
    pub fn output<S: 'static>(&mut self, tag: &OutputTag<S>, value: S) {
        self.base.output(tag, value);
    }

    /// The timestamp of the pair's record of the first stream.
    pub fn left_timestamp(&self) -> Timestamp {
        self.left
    }

    /// The timestamp of the pair's record of the second stream.
    pub fn right_timestamp(&self) -> Timestamp {
        self.right
    }

    /// The pair's timestamp: the larger of the two.
    pub fn timestamp(&self) -> Timestamp {
        self.left.max(self.right)
    }

    /// The operator's current event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.base.current_watermark()
    }
}

/// Two keyed streams to join by interval, waiting for their bounds.
pub struct IntervalJoin<K, T1, T2> {
    first: KeyedStream<K, T1>,
    second: KeyedStream<K, T2>,
}

/// An interval join with its bounds, waiting for its function.
pub struct IntervalJoined<K, T1, T2> {
    join: IntervalJoin<K, T1, T2>,
    lower: i64,
    upper: i64,
    lower_exclusive: bool,
    upper_exclusive: bool,
    late: LateTags<T1, T2>,
}

/// Where the late records of each side go (`None`: dropped).
pub(crate) type LateTags<T1, T2> = (Option<OutputTag<T1>>, Option<OutputTag<T2>>);

impl<K: StateKey + Send + Sync, T1: Record + StateValue> KeyedStream<K, T1> {
    /// Starts an interval join of this stream (the first, or left) with `other` (the
    /// second, or right), keyed alike.
    pub fn interval_join<T2: Record + StateValue>(
        &self,
        other: &KeyedStream<K, T2>,
    ) -> IntervalJoin<K, T1, T2> {
        IntervalJoin {
            first: self.clone(),
            second: other.clone(),
        }
    }
}

impl<K: StateKey + Send + Sync, T1: Record + StateValue, T2: Record + StateValue>
    IntervalJoin<K, T1, T2>
{
    /// Joins a first-stream record at `t` with second-stream records of the same key from
    /// `t + lower_ms` to `t + upper_ms`, both included unless made exclusive.
    pub fn between(self, lower_ms: i64, upper_ms: i64) -> IntervalJoined<K, T1, T2> {
        IntervalJoined {
            join: self,
            lower: lower_ms,
            upper: upper_ms,
            lower_exclusive: false,
            upper_exclusive: false,
            late: (None, None),
        }
    }
}

impl<K: StateKey + Send + Sync, T1: Record + StateValue, T2: Record + StateValue>
    IntervalJoined<K, T1, T2>
{
    /// Leaves the lower bound out of the interval.
    pub fn lower_bound_exclusive(mut self) -> Self {
        self.lower_exclusive = true;
        self
    }

    /// Leaves the upper bound out of the interval.
    pub fn upper_bound_exclusive(mut self) -> Self {
        self.upper_exclusive = true;
        self
    }

    /// Sends the first stream's late records (behind the watermark) to the side output
    /// `tag` of the joined stream instead of dropping them.
    pub fn side_output_left_late_data(mut self, tag: &OutputTag<T1>) -> Self {
        self.late.0 = Some(tag.clone());
        self
    }

    /// Sends the second stream's late records to the side output `tag` of the joined
    /// stream instead of dropping them.
    pub fn side_output_right_late_data(mut self, tag: &OutputTag<T2>) -> Self {
        self.late.1 = Some(tag.clone());
        self
    }

    /// Calls `f` for every joined pair. An empty interval (lower above upper once the
    /// exclusive ends are left out) fails the job when it is built, naming the bounds.
    pub fn process<O: Record, F: ProcessJoinFunction<T1, T2, O>>(self, f: F) -> DataStream<O> {
        let bounds = Bounds::new(
            (self.lower, self.lower_exclusive),
            (self.upper, self.upper_exclusive),
        );
        let checked = bounds.clone();
        let late = self.late;
        let (first, second) = (self.join.first, self.join.second);
        let env = first.stream().environment().clone();
        let (key1, key2) = (first.key_selector(), second.key_selector());
        let make: MakeHead = Arc::new(move |ctx, out, names| {
            let bounds = bounds
                .clone()
                .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?;
            let out = typed_output::<O>(out, &ctx.name)?;
            let (backend, timers) = open_keyed::<K, _>(ctx)?;
            let op = IntervalJoinOperator::new(
                (key1.clone(), key2.clone()),
                bounds,
                f.clone(),
                (backend, timers),
                crate::functions::Downstream::new(out, ctx.take_side_outputs()),
                late.clone(),
                ctx,
            )?;
            Ok(Box::new(TwoInputHead::<T1, T2>::new(Box::new(op), names))
                as Box<dyn TaskInvokable>)
        });
        let mut inner = env.inner.borrow_mut();
        let parallelism = inner.settings.parallelism;
        let id = inner.graph.add_node(
            "IntervalJoin",
            parallelism,
            NodeKind::TwoInput(make),
            Arc::new(TypeOpsOf::<O>::new()),
            None,
            false,
        );
        let (hash1, hash2) = (
            key_hasher(&first.key_selector()),
            key_hasher(&second.key_selector()),
        );
        let graph = &mut inner.graph;
        graph.nodes[id].check = Some(Arc::new(move |name, _job| {
            checked
                .clone()
                .map(drop)
                .map_err(|e| TaskError::user(name, e.to_string()))
        }));
        graph.add_edge(
            first.stream().id,
            id,
            Some(Partitioning::Hash),
            0,
            Some(hash1),
        );
        graph.add_edge(
            second.stream().id,
            id,
            Some(Partitioning::Hash),
            1,
            Some(hash2),
        );
        drop(inner);
        DataStream::new(env, id).emitting_side_outputs()
    }
}
