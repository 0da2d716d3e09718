//! `WindowedStream<K, T>`: a keyed stream cut into windows, and the window functions that
//! turn each window into results.

use super::assigner::{TimeWindow, WindowAssigner};
use super::contents::{
    AggregateContents, Finisher, ProcessContents, ProcessWindowFunction, WindowContents,
};
use super::operator::WindowOperator;
use crate::datastream::DataStream;
use crate::functions::OutputTag;
use crate::keyed_stream::{keyed_backend, KeyedStream};
use crate::record::Record;
use std::sync::Arc;
use std::time::Duration;
use weir_runtime::{TaskError, MIN_WATERMARK};
use weir_state_backends::{
    AggregateFunction, KeyedStateBackend, ReduceAggregate, StateKey, StateValue,
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

    fn build<O: Record, C: WindowContents<K, T, O> + 'static>(
        &self,
        name: &str,
        contents: impl Fn(&KeyedStateBackend<K>, &str) -> Result<C, TaskError> + Send + Sync + 'static,
    ) -> DataStream<O> {
        let key_fn = self.keyed.key_fn.clone();
        let assigner = self.assigner;
        let lateness = self.lateness;
        let late_tag = self.late_tag.clone();
        self.keyed
            .add_keyed(name, move |ctx, out| {
                let backend = keyed_backend::<K>(ctx)?;
                let mut timers = backend
                    .timer_service()
                    .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?;
                crate::keyed_stream::restore_keyed(ctx, &backend, Some(&mut timers))?;
                let sessions = if assigner.is_merging() {
                    Some(
                        backend
                            .value_state("window-sessions")
                            .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?,
                    )
                } else {
                    None
                };
                let contents = contents(&backend, &ctx.name)?;
                Ok(Box::new(WindowOperator {
                    key_fn: key_fn.clone(),
                    timers,
                    backend,
                    contents,
                    assigner,
                    lateness,
                    late_tag: late_tag.clone(),
                    sessions,
                    down: crate::functions::Downstream::new(out, ctx.take_side_outputs()),
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
            .emitting_side_outputs()
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
        self.build("Window(Aggregate)", move |backend, name| {
            Ok(AggregateContents {
                state: backend
                    .value_state("window-contents")
                    .map_err(|e| TaskError::user(name, e.to_string()))?,
                agg: agg.clone(),
                finish: finish.clone(),
                name: name.to_string(),
                _t: std::marker::PhantomData,
            })
        })
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
