//! What an operator learns about its place when its subtask builds it.

use super::type_ops::AnyOutput;
use std::collections::HashMap;
use weir_runtime::JobConfig;
use weir_state_backends::{KeyGroupRange, StateBackendKind};

/// Describes one operator instance of one subtask.
pub struct OperatorContext {
    /// The operator's name.
    pub name: String,
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
    /// The keyed state backend to use.
    pub state_backend: StateBackendKind,
    /// Outputs of side-output tags, each a `Box<dyn Output<S>>` for the tag's type.
    pub(crate) side_outputs: HashMap<String, AnyOutput>,
}

impl OperatorContext {
    /// Takes the output of the side-output tag `id`, if some stream consumes it.
    pub(crate) fn take_side_output(&mut self, id: &str) -> Option<AnyOutput> {
        self.side_outputs.remove(id)
    }
}
