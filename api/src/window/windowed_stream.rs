//! `WindowedStream<K, T>`: a keyed stream cut into windows, and the window functions that
//! turn each window into results.

use super::assigner::{TimeWindow, WindowAssigner};
use super::contents::{
    AggregateContents, Finisher, ProcessContents, ProcessWindowFunction, WindowContents,
};
use super::operator::WindowOperator;
use super::pane_buffer::PaneBuffer;
use super::pre_aggregating_operator::PreAggregatingWindowOperator;
use crate::datastream::DataStream;
use crate::functions::{Downstream, OutputTag};
use crate::graph::OperatorContext;
use crate::keyed_stream::KeyedStream;
use crate::operators::keyed_process::KeyFn;
use crate::record::Record;
use std::sync::Arc;
use std::time::Duration;
use weir_runtime::{Output, TaskError, MIN_WATERMARK};
use weir_state_backends::{
    AggregateFunction, KeyedStateBackend, ReduceAggregate, StateKey, StateValue, TimerService,
    ValueState,
};

/// A keyed stream with a window assigner, waiting for a window function.
pub struct WindowedStream<K, T> {
    keyed: KeyedStream<K, T>,
    assigner: WindowAssigner,
    lateness: i64,
    late_tag: Option<OutputTag<T>>,
}

impl<K: StateKey + Send + Sync, T: Record> KeyedStream<K, T> {
    /// Groups each key's records into the windows `assigner` gives them.
    pub fn window(&self, assigner: WindowAssigner) -> WindowedStream<K, T> {
        WindowedStream {
            keyed: self.clone(),
            assigner,
            lateness: 0,
            late_tag: None,
        }
    }
}

impl<K: StateKey + Send + Sync, T: Record + StateValue> WindowedStream<K, T> {
    /// Keeps window state for `lateness` after a window fired; late elements within it fire
    /// the window again with updated results.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = super::assigner::ms(lateness);
        self
    }

    /// Sends elements that arrive after their windows' lateness to the side output `tag`
    /// (read it with `get_side_output` on the window function's result).
    pub fn side_output_late_data(mut self, tag: &OutputTag<T>) -> Self {
        self.late_tag = Some(tag.clone());
        self
    }

    /// Fires the windows when `trigger` says, instead of once at their end.
    pub fn trigger<Tr: super::trigger::Trigger<T>>(
        self,
        trigger: Tr,
    ) -> super::triggered_stream::TriggeredWindowedStream<K, T, Tr, super::evictor::NoEvictor> {
        self.evictor(super::evictor::NoEvictor).trigger(trigger)
    }

    /// Passes each firing window's elements through `evictor` before (or after) its
    /// function runs.
    pub fn evictor<E: super::evictor::Evictor<T>>(
        self,
        evictor: E,
    ) -> super::triggered_stream::TriggeredWindowedStream<
        K,
        T,
        super::builtin_triggers::DefaultTrigger,
        E,
    > {
        super::triggered_stream::TriggeredWindowedStream {
            trigger: super::builtin_triggers::DefaultTrigger {
                event_time: self.assigner.is_event_time(),
            },
            keyed: self.keyed,
            assigner: self.assigner,
            lateness: self.lateness,
            late_tag: self.late_tag,
            evictor,
        }
    }

    fn build<O: Record, C: WindowContents<K, T, O> + 'static>(
        &self,
        name: &str,
        contents: impl Fn(&KeyedStateBackend<K>, &str) -> Result<C, TaskError> + Send + Sync + 'static,
    ) -> DataStream<O> {
        let spec = self.spec();
        self.keyed
            .add_keyed(name, move |ctx, out| {
                let (backend, timers) = crate::keyed_stream::open_keyed::<K, TimeWindow>(ctx)?;
                let contents = contents(&backend, &ctx.name)?;
                general_operator(&spec, ctx, out, (backend, timers), contents)
            })
            .emitting_side_outputs()
    }

    fn spec(&self) -> Spec<K, T> {
        Spec {
            key_fn: self.keyed.key_fn.clone(),
            assigner: self.assigner,
            lateness: self.lateness,
            late_tag: self.late_tag.clone(),
        }
    }

    /// Reduces each window's elements incrementally with `f`.
    pub fn reduce<F: Fn(T, T) -> T + Send + Sync + 'static>(&self, f: F) -> DataStream<T> {
        self.reduce_with_window(f, |_k: &K, _w: &TimeWindow, v: T| v)
    }

    /// Reduces each window incrementally, then maps the result with its key and window.
    pub fn reduce_with_window<O: Record, F, W>(&self, f: F, finish: W) -> DataStream<O>
    where
        F: Fn(T, T) -> T + Send + Sync + 'static,
        W: Fn(&K, &TimeWindow, T) -> O + Send + Sync + 'static,
    {
        self.aggregate_with_window(ReduceAggregate(f), finish)
            .name("Window(Reduce)")
    }

    /// Aggregates each window's elements incrementally with `agg`.
    pub fn aggregate<ACC: StateValue, R: Record, A: AggregateFunction<T, ACC, R>>(
        &self,
        agg: A,
    ) -> DataStream<R> {
        self.aggregate_with_window(agg, |_k: &K, _w: &TimeWindow, r: R| r)
    }

    /// Aggregates each window incrementally, then maps the result with its key and window.
    pub fn aggregate_with_window<ACC, R, O, A, W>(&self, agg: A, finish: W) -> DataStream<O>
    where
        ACC: StateValue,
        O: Record,
        R: 'static,
        A: AggregateFunction<T, ACC, R>,
        W: Fn(&K, &TimeWindow, R) -> O + Send + Sync + 'static,
    {
        let agg = Arc::new(agg);
        let finish: Finisher<K, R, O> = Arc::new(finish);
        let spec = self.spec();
        self.keyed
            .add_keyed("Window(Aggregate)", move |ctx, out| {
                let (backend, timers) = crate::keyed_stream::open_keyed::<K, TimeWindow>(ctx)?;
                let state: ValueState<K, TimeWindow, ACC> = backend
                    .value_state("window-contents")
                    .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?;
                let capacity = ctx.config.window_pre_aggregation_entries;
                if capacity > 0 && spec.pre_aggregates() {
                    let restored_through = timers
                        .last_event_time()
                        .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?
                        .unwrap_or(MIN_WATERMARK);
                    return Ok(Box::new(PreAggregatingWindowOperator {
                        key_fn: spec.key_fn.clone(),
                        backend,
                        timers,
                        state,
                        agg: agg.clone(),
                        finish: finish.clone(),
                        buffer: PaneBuffer::new(capacity, restored_through),
                        assigner: spec.assigner,
                        late_tag: spec.late_tag.clone(),
                        down: Downstream::new(out, ctx.take_side_outputs()),
                        watermark: MIN_WATERMARK,
                        windows: Vec::with_capacity(4),
                        fired: Vec::new(),
                        dropped_late: 0,
                        name: ctx.name.clone(),
                        uid: ctx.uid.clone(),
                        index: ctx.index,
                    }));
                }
                let contents = AggregateContents {
                    state,
                    agg: agg.clone(),
                    finish: finish.clone(),
                    name: ctx.name.clone(),
                    _t: std::marker::PhantomData,
                };
                general_operator(&spec, ctx, out, (backend, timers), contents)
            })
            .emitting_side_outputs()
    }

    /// Evaluates each window over all its elements with `f`.
    pub fn process<O: Record, P: ProcessWindowFunction<K, T, O>>(&self, f: P) -> DataStream<O> {
        self.build("Window(Process)", move |backend, name| {
            Ok(ProcessContents {
                state: backend
                    .list_state("window-contents")
                    .map_err(|e| TaskError::user(name, e.to_string()))?,
                function: f.clone(),
                name: name.to_string(),
                _o: std::marker::PhantomData,
            })
        })
    }
}

/// What every window operator of a windowed stream shares.
struct Spec<K, T> {
    key_fn: KeyFn<T, K>,
    assigner: WindowAssigner,
    lateness: i64,
    late_tag: Option<OutputTag<T>>,
}

impl<K, T> Spec<K, T> {
    /// Whether an aggregation of these windows can run through a pre-aggregation buffer:
    /// event time, not merging, no allowed lateness.
    fn pre_aggregates(&self) -> bool {
        self.assigner.is_event_time() && !self.assigner.is_merging() && self.lateness == 0
    }
}

/// The general window operator over `contents`.
fn general_operator<K: StateKey, T: Record + StateValue, O: Record, C>(
    spec: &Spec<K, T>,
    ctx: &mut OperatorContext,
    out: Box<dyn Output<O>>,
    (backend, timers): (KeyedStateBackend<K>, TimerService<K, TimeWindow>),
    contents: C,
) -> Result<Box<dyn Output<T>>, TaskError>
where
    C: WindowContents<K, T, O> + 'static,
{
    let sessions = if spec.assigner.is_merging() {
        Some(
            backend
                .value_state("window-sessions")
                .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?,
        )
    } else {
        None
    };
    Ok(Box::new(WindowOperator {
        key_fn: spec.key_fn.clone(),
        timers,
        backend,
        contents,
        assigner: spec.assigner,
        lateness: spec.lateness,
        late_tag: spec.late_tag.clone(),
        sessions,
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
}
