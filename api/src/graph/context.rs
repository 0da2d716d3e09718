//! What an operator learns about its place when its subtask builds it.

use crate::functions::{SideOutputs, SideSlot};
use std::collections::HashMap;
use weir_runtime::JobConfig;
use weir_state_backends::KeyGroupRange;

/// Describes one operator instance of one subtask.
pub struct OperatorContext {
    /// The operator's name.
    pub name: String,
    /// The operator's `uid` (state is matched by it on restore).
    pub uid: String,
    /// The checkpoint to restore from, after a restart.
    pub restored: Option<std::sync::Arc<weir_runtime::checkpoint::RestoredState>>,
    /// Its position in the task's chain (for error attribution).
    pub index: usize,
    /// The subtask index.
    pub subtask: u16,
    /// The operator's parallelism.
    pub parallelism: u16,
    /// The number of key groups.
    pub max_parallelism: u16,
    /// The key groups this subtask owns.
    pub key_group_range: KeyGroupRange,
    /// Execution settings.
    pub config: JobConfig,
    /// The job.
    pub job: weir_runtime::JobId,
    /// The task's metrics.
    pub metrics: std::sync::Arc<weir_runtime::metrics::TaskMetrics>,
    /// Outputs of the side-output tags that some stream consumes.
    pub(crate) side_outputs: HashMap<String, Box<dyn SideSlot>>,
}

impl OperatorContext {
    /// Takes the side outputs of this operator.
    pub(crate) fn take_side_outputs(&mut self) -> SideOutputs {
        SideOutputs::new(std::mem::take(&mut self.side_outputs))
    }
}
