//! The checkpoint half of a keyed operator's `Lifecycle`, written once: a snapshot of its
//! keyed state and timers under its `uid`, and the completion notice its backend needs to
//! release what older checkpoints held.
//!
//! Invariant: an operator using it has the fields `backend` (its `KeyedStateBackend`),
//! `timers` (its `TimerService`), `name` and `uid`; its keyed state and timers are
//! snapshotted together, so a restore brings back both or neither.

/// Expands, inside an `impl Lifecycle for ...` block, to `snapshot_state` and
/// `notify_checkpoint_complete` of a keyed operator with the fields `backend`, `timers`,
/// `name` and `uid`.
macro_rules! keyed_checkpointing {
    () => {
        fn snapshot_state(
            &mut self,
            checkpoint: weir_runtime::CheckpointId,
            options: weir_runtime::element::BarrierOptions,
            state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
        ) -> Result<(), weir_runtime::TaskError> {
            $crate::keyed_stream::snapshot_keyed(
                (&self.name, &self.uid),
                &self.backend,
                Some(&self.timers),
                (checkpoint, options),
                state,
            )
        }
        fn notify_checkpoint_complete(
            &mut self,
            checkpoint: weir_runtime::CheckpointId,
        ) -> Result<(), weir_runtime::TaskError> {
            self.backend.checkpoint_complete(checkpoint);
            Ok(())
        }
    };
}

pub(crate) use keyed_checkpointing;
