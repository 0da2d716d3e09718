//! `TriggeredWindowedStream`: a windowed stream with a custom trigger or an evictor
//! (`window(...).trigger(t)`, `.evictor(e)`), and its window functions.
//!
//! Such windows keep every element (with its timestamp) until they are cleared, also for
//! `reduce` and `aggregate`, which run over the elements when the window fires (as Flink's
//! evicting window operator does); they run on tumbling, sliding and session windows.
//! Session windows with a trigger that cannot merge (`Trigger::can_merge`) fail the job
//! when it is built, naming the operator, as Flink refuses them.

use super::assigner::{TimeWindow, WindowAssigner};
use super::contents::ProcessWindowFunction;
use super::evictor::Evictor;
use super::trigger::Trigger;
use super::triggered_operator::TriggeredWindowOperator;
use crate::datastream::DataStream;
use crate::functions::{Downstream, FnResult, OutputTag};
use crate::keyed_stream::{open_keyed, KeyedStream};
use crate::record::Record;
use std::sync::Arc;
use weir_runtime::{TaskError, MIN_WATERMARK};
use weir_state_backends::{AggregateFunction, ReduceAggregate, StateKey, StateValue};

/// A keyed stream with a window assigner, a trigger and an evictor, waiting for a window
/// function.
pub struct TriggeredWindowedStream<K, T, Tr, E> {
    pub(crate) keyed: KeyedStream<K, T>,
    pub(crate) assigner: WindowAssigner,
    pub(crate) lateness: i64,
    pub(crate) late_tag: Option<OutputTag<T>>,
    pub(crate) trigger: Tr,
    pub(crate) evictor: E,
}

impl<K, T, Tr, E> TriggeredWindowedStream<K, T, Tr, E>
where
    K: StateKey + Send + Sync,
    T: Record + StateValue,
    Tr: Trigger<T>,
    E: Evictor<T>,
{
    /// Replaces the trigger.
    pub fn trigger<Tr2: Trigger<T>>(self, trigger: Tr2) -> TriggeredWindowedStream<K, T, Tr2, E> {
        TriggeredWindowedStream {
            keyed: self.keyed,
            assigner: self.assigner,
            lateness: self.lateness,
            late_tag: self.late_tag,
            trigger,
            evictor: self.evictor,
        }
    }

    /// Replaces the evictor.
    pub fn evictor<E2: Evictor<T>>(self, evictor: E2) -> TriggeredWindowedStream<K, T, Tr, E2> {
        TriggeredWindowedStream {
            keyed: self.keyed,
            assigner: self.assigner,
            lateness: self.lateness,
            late_tag: self.late_tag,
            trigger: self.trigger,
            evictor,
        }
    }

    /// Keeps window state for `lateness` after a window's end; late elements within it are
    /// added to the window and asked to the trigger.
    pub fn allowed_lateness(mut self, lateness: std::time::Duration) -> Self {
        self.lateness = super::assigner::ms(lateness);
        self
    }

    /// Sends elements that arrive after their windows' lateness to the side output `tag`.
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.late_tag = Some(tag.clone());
        self
    }

    /// Reduces each firing window's elements with `f`.
    pub fn reduce<F: Fn(T, T) -> T + Send + Sync + 'static>(&self, f: F) -> DataStream<T> {
        self.aggregate(ReduceAggregate(f))
            .name("TriggerWindow(Reduce)")
    }

    /// Aggregates each firing window's elements with `agg`.
    pub fn aggregate<ACC: StateValue, R: Record, A: AggregateFunction<T, ACC, R>>(
        &self,
        agg: A,
    ) -> DataStream<R> {
        self.process(AggregateOver(Arc::new(agg), std::marker::PhantomData))
            .name("TriggerWindow(Aggregate)")
    }

    /// Evaluates each firing window over its elements with `f`.
    pub fn process<O: Record, P: ProcessWindowFunction<K, T, O>>(&self, f: P) -> DataStream<O> {
        let (assigner, lateness, late_tag) = (self.assigner, self.lateness, self.late_tag.clone());
        let (trigger, evictor) = (self.trigger.clone(), self.evictor.clone());
        let key_fn = self.keyed.key_fn.clone();
        let stream = self
            .keyed
            .add_keyed("TriggerWindow(Process)", move |ctx, out| {
                let err =
                    |e: weir_state_backends::StateError| TaskError::user(&ctx.name, e.to_string());
                let (backend, timers) = open_keyed::<K, TimeWindow>(ctx)?;
                Ok(Box::new(TriggeredWindowOperator {
                    key_fn: key_fn.clone(),
                    contents: backend.list_state("window-elements").map_err(err)?,
                    trigger_state: backend.value_state("window-trigger").map_err(err)?,
                    sessions: (assigner.is_merging())
                        .then(|| backend.value_state("window-sessions"))
                        .transpose()
                        .map_err(err)?,
                    backend,
                    timers,
                    trigger: trigger.clone(),
                    evictor: evictor.clone(),
                    function: f.clone(),
                    assigner,
                    lateness,
                    late_tag: late_tag.clone(),
                    down: Downstream::new(out, ctx.take_side_outputs()),
                    watermark: MIN_WATERMARK,
                    windows: Vec::with_capacity(4),
                    results: Vec::new(),
                    fired: Vec::new(),
                    dropped_late: 0,
                    name: ctx.name.clone(),
                    uid: ctx.uid.clone(),
                    index: ctx.index,
                }))
            })
            .emitting_side_outputs();
        if self.assigner.is_merging() && !self.trigger.can_merge() {
            stream.env.inner.borrow_mut().graph.nodes[stream.id].check = Some(Arc::new(
                |name, _job| {
                    Err(TaskError::user(
                        name,
                        "the window's trigger cannot merge (Trigger::can_merge is false), so it cannot run on session windows",
                    ))
                },
            ));
        }
        stream
    }
}

/// An aggregation evaluated over a firing window's elements.
struct AggregateOver<A, ACC>(Arc<A>, std::marker::PhantomData<fn() -> ACC>);

impl<A, ACC> Clone for AggregateOver<A, ACC> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), std::marker::PhantomData)
    }
}

impl<K, T, ACC, R, A> ProcessWindowFunction<K, T, R> for AggregateOver<A, ACC>
where
    A: AggregateFunction<T, ACC, R>,
    ACC: 'static,
    T: 'static,
    R: 'static,
{
    fn process(
        &mut self,
        _key: &K,
        _window: &TimeWindow,
        elements: Vec<T>,
        out: &mut Vec<R>,
    ) -> FnResult {
        let mut acc = self.0.create_accumulator();
        for e in elements {
            self.0.add(e, &mut acc);
        }
        out.push(self.0.take_result(acc));
        Ok(())
    }
}
