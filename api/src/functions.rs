//! User function traits and the contexts they receive, as in Flink: process functions with
//! timestamps, timers, keyed state and side outputs.
//!
//! A function object is cloned once per subtask, so per-subtask fields (state handles,
//! counters) live in the clone. A function returns [`FnResult`]: an error fails the job
//! with a message naming the operator and subtask, as a panic does.

use std::any::Any;
use std::collections::HashMap;
use std::marker::PhantomData;
use weir_runtime::{Lifecycle, Output, TaskError, Timestamp, NO_TIMESTAMP};
use weir_state_backends::{
    AggregateFunction, AggregatingState, KeyedStateBackend, ListState, MapState, ReduceFunction,
    ReducingState, StateKey, StateTtlConfig, StateValue, TimerService, TtlAggregatingState,
    TtlListState, TtlMapState, TtlReducingState, TtlValueState, ValueState, VoidNamespace,
};

/// The result of a user function; any error fails the job.
pub type FnResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Names a side output of type `S`.
pub struct OutputTag<S> {
    id: String,
    _t: PhantomData<fn() -> S>,
}

impl<S> Clone for OutputTag<S> {
    fn clone(&self) -> Self {
        Self::new(&self.id)
    }
}

impl<S> OutputTag<S> {
    /// Creates a tag; tags with the same id denote the same side output.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            _t: PhantomData,
        }
    }

    /// Returns the tag's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// A side output of some type, with its lifecycle.
pub trait SideSlot: Lifecycle {
    /// Returns `self` for downcasting to the typed slot.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// The typed side-output slot of type `S`.
pub struct Slot<S>(pub(crate) Box<dyn Output<S>>);

impl<S: 'static> SideSlot for Slot<S> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

impl<S> Lifecycle for Slot<S> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.0)
    }
}

/// The side outputs of one operator instance (only those some stream consumes).
#[derive(Default)]
pub struct SideOutputs {
    slots: HashMap<String, Box<dyn SideSlot>>,
}

impl SideOutputs {
    pub(crate) fn new(slots: HashMap<String, Box<dyn SideSlot>>) -> Self {
        Self { slots }
    }

    /// Emits `value` to the side output `tag`; dropped if no stream consumes the tag.
    pub(crate) fn emit<S: 'static>(
        &mut self,
        tag: &OutputTag<S>,
        value: S,
        ts: Timestamp,
    ) -> Result<(), TaskError> {
        match self.slots.get_mut(&tag.id) {
            Some(slot) => match slot.as_any_mut().downcast_mut::<Slot<S>>() {
                Some(s) => s.0.emit(value, ts),
                None => Err(TaskError::Configuration(format!(
                    "side output '{}' used with another type",
                    tag.id
                ))),
            },
            None => Ok(()),
        }
    }

    /// Calls `f` on every side output.
    pub(crate) fn each(
        &mut self,
        mut f: impl FnMut(&mut dyn Lifecycle) -> Result<(), TaskError>,
    ) -> Result<(), TaskError> {
        for s in self.slots.values_mut() {
            f(&mut **s)?;
        }
        Ok(())
    }

    /// Returns the earliest processing-time timer downstream of any side output.
    pub(crate) fn next_processing_time(&mut self) -> Option<Timestamp> {
        self.slots
            .values_mut()
            .filter_map(|s| s.next_processing_time())
            .min()
    }
}

/// Everything downstream of an operator that emits side outputs: its main output and its
/// side outputs. Lifecycle calls go to the side outputs first, then to the main output.
pub(crate) struct Downstream<O> {
    pub(crate) out: Box<dyn Output<O>>,
    pub(crate) sides: SideOutputs,
}

impl<O> Downstream<O> {
    pub(crate) fn new(out: Box<dyn Output<O>>, sides: SideOutputs) -> Self {
        Self { out, sides }
    }

    /// Returns a context for one user-function call with timestamp `ts`.
    pub(crate) fn context(&mut self, timestamp: Timestamp, watermark: Timestamp) -> Context<'_, O> {
        Context {
            out: &mut *self.out,
            sides: &mut self.sides,
            timestamp,
            watermark,
            error: None,
        }
    }
}

/// Overrides every call: the side outputs and the main output all follow the operator.
impl<O> Lifecycle for Downstream<O> {
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.sides.each(|s| s.watermark(wm))?;
        self.out.watermark(wm)
    }
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        self.sides.each(|s| s.idle(idle))?;
        self.out.idle(idle)
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        self.sides.each(|s| s.processing_time(now))?;
        self.out.processing_time(now)
    }
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        weir_runtime::output::earliest(
            self.sides.next_processing_time(),
            self.out.next_processing_time(),
        )
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        self.sides.each(|s| s.flush())?;
        self.out.flush()
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        self.sides.each(|s| s.end_input())?;
        self.out.end_input()
    }
    fn close(&mut self) -> Result<(), TaskError> {
        self.sides.each(|s| s.close())?;
        self.out.close()
    }
    fn checkpoint(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        self.sides
            .each(|s| s.checkpoint(checkpoint, options, state))?;
        self.out.checkpoint(checkpoint, options, state)
    }
    fn checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        self.sides.each(|s| s.checkpoint_complete(checkpoint))?;
        self.out.checkpoint_complete(checkpoint)
    }
}

/// The collector and context of a (non-keyed) process function call.
pub struct Context<'a, O> {
    pub(crate) out: &'a mut dyn Output<O>,
    pub(crate) sides: &'a mut SideOutputs,
    pub(crate) timestamp: Timestamp,
    pub(crate) watermark: Timestamp,
    pub(crate) error: Option<TaskError>,
}

impl<O> Context<'_, O> {
    /// Emits a record with the timestamp of the input record (or timer).
    pub fn collect(&mut self, value: O) {
        let ts = self.timestamp;
        self.collect_with_timestamp(value, ts);
    }

    /// Emits a record with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        if self.error.is_none() {
            if let Err(e) = self.out.emit(value, timestamp) {
                self.error = Some(e);
            }
        }
    }

    /// Emits a record to a side output.
    pub fn output<S: 'static>(&mut self, tag: &OutputTag<S>, value: S) {
        if self.error.is_none() {
            if let Err(e) = self.sides.emit(tag, value, self.timestamp) {
                self.error = Some(e);
            }
        }
    }

    /// Returns the timestamp of the current record, if it has one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }

    /// Returns the operator's current event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }
}

/// The context of a keyed process function call: [`Context`] plus key and timers.
pub struct KeyedContext<'a, K, O> {
    pub(crate) base: Context<'a, O>,
    pub(crate) key: &'a K,
    pub(crate) timers: &'a mut TimerService<K, VoidNamespace>,
}

impl<'a, K: StateKey, O> KeyedContext<'a, K, O> {
    /// Emits a record with the timestamp of the input record (or timer).
    pub fn collect(&mut self, value: O) {
        self.base.collect(value)
    }
    /// Emits a record with an explicit timestamp.
    pub fn collect_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        self.base.collect_with_timestamp(value, timestamp)
    }
    /// Emits a record to a side output.
    pub fn output<S: 'static>(&mut self, tag: &OutputTag<S>, value: S) {
        self.base.output(tag, value)
    }
    /// Returns the timestamp of the current record or firing timer.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.base.timestamp()
    }
    /// Returns the current event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.base.watermark
    }
    /// Returns the key of the current record or timer.
    pub fn current_key(&self) -> &K {
        self.key
    }
    /// Returns the current processing time.
    pub fn current_processing_time(&self) -> Timestamp {
        weir_runtime::now_ms()
    }
    /// Registers an event-time timer for the current key; it fires once the watermark passes `ts`.
    pub fn register_event_time_timer(&mut self, ts: Timestamp) {
        let r = self
            .timers
            .register_event_time_timer(self.key.clone(), VoidNamespace, ts);
        self.note(r);
    }
    /// Deletes an event-time timer of the current key.
    pub fn delete_event_time_timer(&mut self, ts: Timestamp) {
        let r = self
            .timers
            .delete_event_time_timer(self.key, &VoidNamespace, ts);
        self.note(r);
    }
    /// Registers a processing-time timer for the current key.
    pub fn register_processing_time_timer(&mut self, ts: Timestamp) {
        let r = self
            .timers
            .register_processing_time_timer(self.key.clone(), VoidNamespace, ts);
        self.note(r);
    }
    /// Deletes a processing-time timer of the current key.
    pub fn delete_processing_time_timer(&mut self, ts: Timestamp) {
        let r = self
            .timers
            .delete_processing_time_timer(self.key, &VoidNamespace, ts);
        self.note(r);
    }
    /// Keeps the first failure of the timer service (RocksDB); it fails the task once the
    /// function returns.
    fn note<T>(&mut self, r: Result<T, weir_state_backends::StateError>) {
        if let (Err(e), None) = (r, &self.base.error) {
            self.base.error = Some(TaskError::Io(format!("timer service: {e}")));
        }
    }
}

/// Where a keyed function registers its state, in `open`.
pub struct RuntimeContext<K: StateKey> {
    pub(crate) backend: KeyedStateBackend<K>,
    /// This subtask's index.
    pub subtask: u16,
    /// The operator's parallelism.
    pub parallelism: u16,
}

fn state_err(e: weir_state_backends::StateError) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

impl<K: StateKey> RuntimeContext<K> {
    /// Returns the value state `name` (scoped to the current key).
    pub fn value_state<V: StateValue>(
        &self,
        name: &str,
    ) -> FnResult<ValueState<K, VoidNamespace, V>> {
        self.backend.value_state(name).map_err(state_err)
    }
    /// Returns the list state `name`.
    pub fn list_state<V: StateValue>(
        &self,
        name: &str,
    ) -> FnResult<ListState<K, VoidNamespace, V>> {
        self.backend.list_state(name).map_err(state_err)
    }
    /// Returns the map state `name`.
    pub fn map_state<UK: StateKey, UV: StateValue>(
        &self,
        name: &str,
    ) -> FnResult<MapState<K, VoidNamespace, UK, UV>> {
        self.backend.map_state(name).map_err(state_err)
    }
    /// Returns the reducing state `name`.
    pub fn reducing_state<V: StateValue>(
        &self,
        name: &str,
        reduce: impl ReduceFunction<V>,
    ) -> FnResult<ReducingState<K, VoidNamespace, V>> {
        self.backend.reducing_state(name, reduce).map_err(state_err)
    }
    /// Returns the aggregating state `name`.
    pub fn aggregating_state<IN: 'static, ACC: StateValue, OUT: 'static>(
        &self,
        name: &str,
        f: impl AggregateFunction<IN, ACC, OUT>,
    ) -> FnResult<AggregatingState<K, VoidNamespace, IN, ACC, OUT>> {
        self.backend.aggregating_state(name, f).map_err(state_err)
    }
    /// Returns the value state `name` whose values expire per `ttl` (Flink's
    /// `descriptor.enableTimeToLive(ttl)`).
    pub fn ttl_value_state<V: StateValue>(
        &self,
        name: &str,
        ttl: &StateTtlConfig,
    ) -> FnResult<TtlValueState<K, V>> {
        self.backend.ttl_value_state(name, ttl).map_err(state_err)
    }
    /// Returns the list state `name` whose elements expire per `ttl`.
    pub fn ttl_list_state<V: StateValue>(
        &self,
        name: &str,
        ttl: &StateTtlConfig,
    ) -> FnResult<TtlListState<K, V>> {
        self.backend.ttl_list_state(name, ttl).map_err(state_err)
    }
    /// Returns the map state `name` whose user entries expire per `ttl`.
    pub fn ttl_map_state<UK: StateKey, UV: StateValue>(
        &self,
        name: &str,
        ttl: &StateTtlConfig,
    ) -> FnResult<TtlMapState<K, UK, UV>> {
        self.backend.ttl_map_state(name, ttl).map_err(state_err)
    }
    /// Returns the reducing state `name` whose reduction expires per `ttl`.
    pub fn ttl_reducing_state<V: StateValue>(
        &self,
        name: &str,
        reduce: impl ReduceFunction<V>,
        ttl: &StateTtlConfig,
    ) -> FnResult<TtlReducingState<K, V>> {
        let state = self.backend.ttl_reducing_state(name, reduce, ttl);
        state.map_err(state_err)
    }
    /// Returns the aggregating state `name` whose accumulator expires per `ttl`.
    pub fn ttl_aggregating_state<IN: 'static, ACC: StateValue, OUT: 'static>(
        &self,
        name: &str,
        f: impl AggregateFunction<IN, ACC, OUT>,
        ttl: &StateTtlConfig,
    ) -> FnResult<TtlAggregatingState<K, IN, ACC, OUT>> {
        let state = self.backend.ttl_aggregating_state(name, f, ttl);
        state.map_err(state_err)
    }
}

/// A function applied to each record of a non-keyed stream.
pub trait ProcessFunction<I, O>: Clone + Send + Sync + 'static {
    /// Processes one record.
    fn process_element(&mut self, value: I, ctx: &mut Context<'_, O>) -> FnResult;
}

/// A function applied to each record of a keyed stream, with keyed state and timers.
///
/// The function value is shared by all subtasks and cloned into each; the per-subtask
/// state handles live in [`KeyedProcessFunction::State`], created by `open` in the subtask's
/// own thread and passed to every call.
pub trait KeyedProcessFunction<K: StateKey, I, O>: Clone + Send + Sync + 'static {
    /// The subtask's state handles (use `()` for none).
    type State: 'static;
    /// Registers state; called once per subtask before any record.
    fn open(&mut self, ctx: &RuntimeContext<K>) -> FnResult<Self::State>;
    /// Processes one record; state handles read and write the record's key.
    fn process_element(
        &mut self,
        value: I,
        state: &mut Self::State,
        ctx: &mut KeyedContext<'_, K, O>,
    ) -> FnResult;
    /// A timer of `ctx.current_key()` fired at `timestamp`.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _state: &mut Self::State,
        _ctx: &mut KeyedContext<'_, K, O>,
    ) -> FnResult {
        Ok(())
    }
}

/// A function over two connected streams.
pub trait CoProcessFunction<I1, I2, O>: Clone + Send + Sync + 'static {
    /// Processes a record of the first stream.
    fn process_element1(&mut self, value: I1, ctx: &mut Context<'_, O>) -> FnResult;
    /// Processes a record of the second stream.
    fn process_element2(&mut self, value: I2, ctx: &mut Context<'_, O>) -> FnResult;
}

/// Turns a user function error into a task error naming the operator.
pub(crate) fn user_error(operator: &str, e: Box<dyn std::error::Error + Send + Sync>) -> TaskError {
    TaskError::user(operator, e.to_string())
}
