//! Rolling keyed aggregation: `KeyedStream::aggregate` (and `reduce`, an aggregation whose
//! accumulator is the reduced value) keeps one accumulator per key in keyed state and emits
//! the updated result for every record, as Flink's keyed `reduce` does.

use super::keyed_process::KeyFn;
use std::sync::Arc;
use weir_runtime::task::enter_operator;
use weir_runtime::{Output, TaskError, Timestamp};
use weir_state_backends::{
    AggregateFunction, KeyedStateBackend, StateKey, StateValue, ValueState, VoidNamespace,
};

/// The operator of `KeyedStream::aggregate`.
pub struct RollingAggregate<K: StateKey, T, ACC, O, A> {
    pub(crate) key_fn: KeyFn<T, K>,
    pub(crate) backend: KeyedStateBackend<K>,
    pub(crate) state: ValueState<K, VoidNamespace, ACC>,
    pub(crate) f: Arc<A>,
    pub(crate) out: Box<dyn Output<O>>,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) index: usize,
}

impl<K: StateKey, T, ACC: StateValue, O, A: AggregateFunction<T, ACC, O>> Output<T>
    for RollingAggregate<K, T, ACC, O, A>
{
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let key = (self.key_fn)(&value);
        self.backend
            .set_current_key(key)
            .map_err(|e| TaskError::user(&self.name, e.to_string()))?;
        let f = &self.f;
        let result = self
            .state
            .modify(|acc| {
                let a = acc.get_or_insert_with(|| f.create_accumulator());
                f.add(value, a);
                f.get_result(a)
            })
            .map_err(|e| TaskError::user(&self.name, e.to_string()))?;
        self.out.emit(result, ts)
    }
}
impl<K: StateKey, T, ACC, O, A> weir_runtime::Lifecycle for RollingAggregate<K, T, ACC, O, A> {
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.out.watermark(wm)
    }
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        self.out.idle(idle)
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        self.out.processing_time(now)
    }
    fn next_processing_time(&self) -> Option<Timestamp> {
        self.out.next_processing_time()
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        self.out.flush()
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        self.out.end_input()
    }
    fn checkpoint(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        let keyed = self
            .backend
            .snapshot()
            .map_err(|e| TaskError::user(&self.name, e.to_string()))?;
        state.push(weir_runtime::checkpoint::OperatorSnapshot::keyed(
            &self.uid, keyed, None,
        )?);
        self.out.checkpoint(checkpoint, options, state)
    }
    fn checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        self.out.checkpoint_complete(checkpoint)
    }
}
