//! What a window keeps and how it turns into results.
//!
//! Incremental contents (aggregate, and reduce as an aggregation) keep one accumulator per
//! (key, window) and fold each element in as it arrives; full-window contents keep every element in a list and hand
//! them to a [`ProcessWindowFunction`] when the window fires. All of them read and write the
//! state backend's current key.

use super::assigner::TimeWindow;
use crate::functions::FnResult;
use std::sync::Arc;
use weir_runtime::TaskError;
use weir_state_backends::{
    AggregateFunction, ListState, StateError, StateKey, StateValue, ValueState,
};

/// Evaluates all elements of a window at once.
pub trait ProcessWindowFunction<K, IN, O>: Clone + Send + Sync + 'static {
    /// Produces the results of `window` for `key` into `out`.
    fn process(
        &mut self,
        key: &K,
        window: &TimeWindow,
        elements: Vec<IN>,
        out: &mut Vec<O>,
    ) -> FnResult;
}

impl<K, IN, O, F> ProcessWindowFunction<K, IN, O> for F
where
    F: Fn(&K, &TimeWindow, Vec<IN>, &mut Vec<O>) -> FnResult + Clone + Send + Sync + 'static,
{
    fn process(
        &mut self,
        key: &K,
        window: &TimeWindow,
        elements: Vec<IN>,
        out: &mut Vec<O>,
    ) -> FnResult {
        self(key, window, elements, out)
    }
}

/// The per-window state of a window operator.
pub(crate) trait WindowContents<K, T, O> {
    /// Adds `value` to `window`; returns whether the window may have been empty before
    /// (`true` when the contents cannot tell without a read).
    fn add(&mut self, window: &TimeWindow, value: T) -> Result<bool, TaskError>;
    /// Appends the window's results for `key` to `out` (none if the window is empty).
    fn fire(&mut self, key: &K, window: &TimeWindow, out: &mut Vec<O>) -> Result<(), TaskError>;
    /// Drops the window's state.
    fn clear(&mut self, window: &TimeWindow) -> Result<(), TaskError>;
    /// Fires the window and drops its state (a window without allowed lateness).
    fn fire_and_clear(
        &mut self,
        key: &K,
        window: &TimeWindow,
        out: &mut Vec<O>,
    ) -> Result<(), TaskError> {
        self.fire(key, window, out)?;
        self.clear(window)
    }
    /// Moves the state of `sources` into `target` (merging session windows).
    fn merge(&mut self, target: &TimeWindow, sources: &[TimeWindow]) -> Result<(), TaskError>;
}

fn se(name: &str) -> impl Fn(StateError) -> TaskError + '_ {
    move |e| TaskError::user(name, e.to_string())
}

/// Maps a window's final value to the operator's output.
pub(crate) type Finisher<K, R, O> = Arc<dyn Fn(&K, &TimeWindow, R) -> O + Send + Sync>;

/// Incremental aggregation: one accumulator per window.
pub(crate) struct AggregateContents<K, T, ACC, R, O, A> {
    pub(crate) state: ValueState<K, TimeWindow, ACC>,
    pub(crate) agg: Arc<A>,
    pub(crate) finish: Finisher<K, R, O>,
    pub(crate) name: String,
    pub(crate) _t: std::marker::PhantomData<fn(T)>,
}

impl<K: StateKey, T, ACC: StateValue, R, O, A: AggregateFunction<T, ACC, R>> WindowContents<K, T, O>
    for AggregateContents<K, T, ACC, R, O, A>
{
    #[inline]
    fn add(&mut self, window: &TimeWindow, value: T) -> Result<bool, TaskError> {
        let agg = &self.agg;
        self.state
            .modify_in(window, |acc| {
                let created = acc.is_none();
                agg.add(value, acc.get_or_insert_with(|| agg.create_accumulator()));
                created
            })
            .map_err(se(&self.name))
    }
    fn fire(&mut self, key: &K, window: &TimeWindow, out: &mut Vec<O>) -> Result<(), TaskError> {
        let agg = &self.agg;
        let r = self
            .state
            .with_value_in(window, |acc| acc.map(|a| agg.get_result(a)))
            .map_err(se(&self.name))?;
        if let Some(r) = r {
            out.push((self.finish)(key, window, r));
        }
        Ok(())
    }
    fn clear(&mut self, window: &TimeWindow) -> Result<(), TaskError> {
        self.state.clear_in(window).map_err(se(&self.name))
    }
    fn fire_and_clear(
        &mut self,
        key: &K,
        window: &TimeWindow,
        out: &mut Vec<O>,
    ) -> Result<(), TaskError> {
        if let Some(acc) = self
            .state
            .modify_in(window, Option::take)
            .map_err(se(&self.name))?
        {
            out.push((self.finish)(key, window, self.agg.get_result(&acc)));
        }
        Ok(())
    }
    fn merge(&mut self, target: &TimeWindow, sources: &[TimeWindow]) -> Result<(), TaskError> {
        let mut merged = self.state.value_in(target).map_err(se(&self.name))?;
        for s in sources {
            if let Some(a) = self
                .state
                .modify_in(s, Option::take)
                .map_err(se(&self.name))?
            {
                merged = Some(match merged {
                    Some(m) => self.agg.merge(m, a),
                    None => a,
                });
            }
        }
        if let Some(m) = merged {
            self.state.update_in(target, m).map_err(se(&self.name))?;
        }
        Ok(())
    }
}

/// Full-window evaluation: every element is kept until the window fires.
pub(crate) struct ProcessContents<K, T, O, P> {
    pub(crate) state: ListState<K, TimeWindow, T>,
    pub(crate) function: P,
    pub(crate) name: String,
    pub(crate) _o: std::marker::PhantomData<fn() -> O>,
}

impl<K, T, O, P: ProcessWindowFunction<K, T, O>> ProcessContents<K, T, O, P> {
    /// Runs the window function over a window's elements (nothing for an empty window).
    fn evaluate(
        &mut self,
        key: &K,
        window: &TimeWindow,
        elements: Vec<T>,
        out: &mut Vec<O>,
    ) -> Result<(), TaskError> {
        if elements.is_empty() {
            return Ok(());
        }
        self.function
            .process(key, window, elements, out)
            .map_err(|e| TaskError::user(&self.name, e.to_string()))
    }
}

impl<K: StateKey, T: StateValue, O, P: ProcessWindowFunction<K, T, O>> WindowContents<K, T, O>
    for ProcessContents<K, T, O, P>
{
    /// Appends without reading the list, so the window may have existed: the operator's
    /// timer registrations are idempotent.
    fn add(&mut self, window: &TimeWindow, value: T) -> Result<bool, TaskError> {
        self.state.add_in(window, value).map_err(se(&self.name))?;
        Ok(true)
    }
    fn fire(&mut self, key: &K, window: &TimeWindow, out: &mut Vec<O>) -> Result<(), TaskError> {
        let elements = self.state.get_in(window).map_err(se(&self.name))?;
        self.evaluate(key, window, elements, out)
    }
    fn fire_and_clear(
        &mut self,
        key: &K,
        window: &TimeWindow,
        out: &mut Vec<O>,
    ) -> Result<(), TaskError> {
        let elements = self.state.take_in(window).map_err(se(&self.name))?;
        self.evaluate(key, window, elements, out)
    }
    fn clear(&mut self, window: &TimeWindow) -> Result<(), TaskError> {
        self.state.clear_in(window).map_err(se(&self.name))
    }
    fn merge(&mut self, target: &TimeWindow, sources: &[TimeWindow]) -> Result<(), TaskError> {
        self.state
            .merge_namespaces(target, sources)
            .map_err(se(&self.name))
    }
}
