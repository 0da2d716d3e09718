//! The type-erased face of a task's operator chain.
//!
//! The runtime drives a [`TaskInvokable`] from the task's loop: records through its typed
//! head, everything else through its [`Lifecycle`]; the API implements it for
//! sources, one-input and two-input chain heads, where the record types are known. An
//! [`InvokableFactory`] lives in the job graph and builds one invokable per subtask inside
//! the task's own thread, so the chain itself need not be `Send`.

use crate::config::JobConfig;
use crate::element::ElementReader;
use crate::error::TaskError;
use crate::exchange::PartitionWriter;
use crate::output::Lifecycle;
use crate::types::SubtaskId;
use std::time::Duration;

/// What a source step reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStep {
    /// More records may be available right away.
    More,
    /// Nothing is available now; ask again after at most this long.
    Idle(Duration),
    /// The source has ended (bounded input).
    Finished,
}

/// Everything a factory gets to build one subtask's chain.
pub struct TaskSetup {
    /// Which subtask this is.
    pub subtask: SubtaskId,
    /// The vertex's name.
    pub name: String,
    /// The vertex's parallelism.
    pub parallelism: u16,
    /// The vertex's number of key groups.
    pub max_parallelism: u16,
    /// Execution settings.
    pub config: JobConfig,
    /// One writer per output edge, in `source_output` order.
    pub writers: Vec<PartitionWriter>,
    /// The logical input of each input gate, in gate order.
    pub gate_inputs: Vec<u8>,
    /// The checkpoint to restore operator state from, after a restart.
    pub restore: Option<std::sync::Arc<crate::checkpoint::RestoredState>>,
    /// The task's metrics (a source reports its pending records there).
    pub metrics: std::sync::Arc<crate::metrics::TaskMetrics>,
}

/// Builds the chain of one subtask.
pub trait InvokableFactory: Send + Sync {
    /// Creates the invokable; called in the task thread.
    fn create(&self, setup: TaskSetup) -> Result<Box<dyn TaskInvokable>, TaskError>;
}

impl<F> InvokableFactory for F
where
    F: Fn(TaskSetup) -> Result<Box<dyn TaskInvokable>, TaskError> + Send + Sync,
{
    fn create(&self, setup: TaskSetup) -> Result<Box<dyn TaskInvokable>, TaskError> {
        self(setup)
    }
}

/// One subtask's operator chain, driven by the task loop.
///
/// The head of the chain turns the task's untyped input into typed calls; everything that
/// is not a record (watermarks, timers, flushing, end of input, checkpoints) reaches the
/// chain through the head's [`Lifecycle`], which forwards it to the first operator.
pub trait TaskInvokable: Lifecycle {
    /// Source chains: produces up to one batch of records into the chain.
    fn source_step(&mut self) -> Result<SourceStep, TaskError> {
        Ok(SourceStep::Finished)
    }

    /// Consumes the consecutive records at the reader's position (stopping at the first
    /// non-record element) that arrived on logical `input`.
    fn process_records(
        &mut self,
        input: u8,
        reader: &mut ElementReader<'_>,
    ) -> Result<(), TaskError>;

    /// Returns the name of the chain's `index`-th operator, for error messages.
    fn operator_name(&self, index: usize) -> Option<String>;
}
