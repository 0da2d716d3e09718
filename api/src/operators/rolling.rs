//! Rolling keyed aggregation: `KeyedStream::aggregate` (and `reduce`, an aggregation whose
//! accumulator is the reduced value) keeps one accumulator per key in keyed state and emits
//! the updated result for every record, as Flink's keyed `reduce` does.

use super::keyed_process::KeyFn;
use std::sync::Arc;
use weir_runtime::checkpoint::OperatorSnapshot;
use weir_runtime::element::BarrierOptions;
use weir_runtime::task::enter_operator;
use weir_runtime::{CheckpointId, Lifecycle, Output, TaskError, Timestamp};
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
impl<K: StateKey, T, ACC, O, A> Lifecycle for RollingAggregate<K, T, ACC, O, A> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.out)
    }

    /// Appends the accumulators to the checkpoint.
    fn snapshot_state(
        &mut self,
        checkpoint: CheckpointId,
        options: BarrierOptions,
        state: &mut Vec<OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        crate::keyed_stream::snapshot_keyed::<K, VoidNamespace>(
            (&self.name, &self.uid),
            &self.backend,
            None,
            (checkpoint, options),
            state,
        )
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        self.backend.checkpoint_complete(checkpoint);
        Ok(())
    }
}
