//! Built-in operators. Every operator is the [`weir_runtime::Output`] of its upstream and
//! forwards lifecycle calls to its own output after doing its part.

/// Inside an `impl Lifecycle`: forwards `flush`, `end_input`, `checkpoint` and
/// `checkpoint_complete` to `self.$out`, for operators that handle time themselves; with
/// `snapshot: method`, a checkpoint barrier first calls `method(self, checkpoint, options,
/// state)` to append the operator's own state, and with `complete: method` a completed
/// checkpoint first calls `method(self, checkpoint)`.
macro_rules! forward_checkpoints_to {
    ($out:tt) => {
        crate::operators::forward_checkpoints_to!($out, snapshot: crate::operators::no_state);
    };
    ($out:tt, snapshot: $snap:path) => {
        crate::operators::forward_checkpoints_to!($out, snapshot: $snap, complete: crate::operators::no_completion);
    };
    ($out:tt, snapshot: $snap:path, complete: $done:path) => {
        fn flush(&mut self) -> Result<(), weir_runtime::TaskError> {
            self.$out.flush()
        }
        fn end_input(&mut self) -> Result<(), weir_runtime::TaskError> {
            self.$out.end_input()
        }
        fn checkpoint(
            &mut self,
            checkpoint: weir_runtime::CheckpointId,
            options: weir_runtime::element::BarrierOptions,
            state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
        ) -> Result<(), weir_runtime::TaskError> {
            $snap(self, checkpoint, options, state)?;
            self.$out.checkpoint(checkpoint, options, state)
        }
        fn checkpoint_complete(
            &mut self,
            checkpoint: weir_runtime::CheckpointId,
        ) -> Result<(), weir_runtime::TaskError> {
            $done(self, checkpoint);
            self.$out.checkpoint_complete(checkpoint)
        }
    };
}

/// Implements [`weir_runtime::Lifecycle`] by forwarding every call to `self.$out`; with
/// `snapshot:` and `complete:` methods as [`forward_checkpoints_to`].
macro_rules! forward_lifecycle_to {
    ($ty:ty, $out:tt, [$($gen:tt)*]) => {
        crate::operators::forward_lifecycle_to!($ty, $out, [$($gen)*], snapshot: crate::operators::no_state, complete: crate::operators::no_completion);
    };
    ($ty:ty, $out:tt, [$($gen:tt)*], snapshot: $snap:path, complete: $done:path) => {
        impl<$($gen)*> weir_runtime::Lifecycle for $ty {
            fn watermark(&mut self, wm: weir_runtime::Timestamp) -> Result<(), weir_runtime::TaskError> {
                self.$out.watermark(wm)
            }
            fn idle(&mut self, idle: bool) -> Result<(), weir_runtime::TaskError> {
                self.$out.idle(idle)
            }
            fn processing_time(&mut self, now: weir_runtime::Timestamp) -> Result<(), weir_runtime::TaskError> {
                self.$out.processing_time(now)
            }
            fn next_processing_time(&self) -> Option<weir_runtime::Timestamp> {
                self.$out.next_processing_time()
            }
            crate::operators::forward_checkpoints_to!($out, snapshot: $snap, complete: $done);
        }
    };
}

pub(crate) use forward_checkpoints_to;
pub(crate) use forward_lifecycle_to;

/// The snapshot of an operator without state of its own.
#[inline]
pub(crate) fn no_state<T: ?Sized>(
    _op: &T,
    _checkpoint: weir_runtime::CheckpointId,
    _options: weir_runtime::element::BarrierOptions,
    _state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
) -> Result<(), weir_runtime::TaskError> {
    Ok(())
}

/// What an operator without state of its own does when a checkpoint completes: nothing.
#[inline]
pub(crate) fn no_completion<T: ?Sized>(_op: &T, _checkpoint: weir_runtime::CheckpointId) {}

pub(crate) mod basic;
pub(crate) mod keyed_process;
pub(crate) mod process;
pub(crate) mod rolling;
