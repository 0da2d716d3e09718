//! Sinks: where records leave a job.
//!
//! A [`SinkFunction`] is shared by all subtasks and creates one [`SinkWriter`] per subtask.
//! The writer sees every record of its subtask and is finished once at the end of input.

mod collect;
mod discard;
mod file;
mod object_file;
mod part_dir;
mod parts_state;
mod pending_parts;
mod print;
mod side_outputs;

pub use collect::CollectSink;
pub use discard::DiscardingSink;
pub use file::{FileSink, DEFAULT_MAX_PART_SIZE};
pub use print::PrintSink;
pub(crate) use side_outputs::SinkDownstream;
pub use side_outputs::SinkSideOutputs;

use weir_runtime::task::enter_operator;
use weir_runtime::{CheckpointId, JobConfig, Output, TaskError, Timestamp};

/// Where a sink subtask learns its place.
#[derive(Clone, Debug)]
pub struct SinkContext {
    /// The sink's name.
    pub name: String,
    /// This subtask's index.
    pub subtask: u16,
    /// The sink's parallelism.
    pub parallelism: u16,
    /// Whether the job takes checkpoints (a transactional sink then commits on them).
    pub checkpointing: bool,
    /// The job (a transactional sink names its transactions after it).
    pub job: weir_runtime::JobId,
    /// The sink's `uid` (stable across runs and savepoints).
    pub uid: String,
    /// Where the writer may emit side-output records (see
    /// [`crate::DataStreamSink::get_side_output`]).
    pub side_outputs: SinkSideOutputs,
}

/// Creates the writers of a sink.
pub trait SinkFunction<T>: Send + Sync + 'static {
    /// Creates the writer of one subtask.
    fn create_writer(&self, ctx: &SinkContext) -> Result<Box<dyn SinkWriter<T>>, TaskError>;

    /// Checks the sink `name` can run in a job with settings `job`; called when the job
    /// is built, before anything runs (a refusal fails `execute` or the submission).
    fn check(&self, name: &str, job: &JobConfig) -> Result<(), TaskError> {
        let _ = (name, job);
        Ok(())
    }
}

/// Writes one subtask's records.
pub trait SinkWriter<T> {
    /// Writes one record.
    fn write(&mut self, value: T, timestamp: Timestamp) -> Result<(), TaskError>;
    /// Makes buffered records visible (called on the buffer timeout).
    fn flush(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
    /// All input was written.
    fn finish(&mut self) -> Result<(), TaskError> {
        self.flush()
    }

    /// Two-phase commit, phase one, at a checkpoint barrier: makes what was written so far
    /// durable but not yet visible, and returns what [`Self::commit`] or
    /// [`Self::recover`] needs to finish it. Sinks that are not transactional return
    /// `None` (their output is at-least-once).
    fn pre_commit(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>, TaskError> {
        let _ = checkpoint;
        Ok(None)
    }

    /// Two-phase commit, phase two: checkpoint `checkpoint` completed, so what its
    /// pre-commit (and earlier ones) covered becomes visible.
    fn commit(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let _ = checkpoint;
        Ok(())
    }

    /// After a restore, before any record: each of `states` is what [`Self::pre_commit`]
    /// of some subtask returned for the checkpoint or savepoint restored from, which
    /// completed; commit what each covers and discard whatever was written after it. At
    /// the same parallelism a subtask gets its own state back; at another, the states of
    /// all old subtasks are dealt round-robin, so a subtask may get several or none.
    fn recover(&mut self, states: Vec<Vec<u8>>) -> Result<(), TaskError> {
        let _ = states;
        Ok(())
    }

    /// Instead of [`Self::recover`], when the subtask starts without restored state for
    /// this sink (a new job, or a restart before any checkpoint completed), before any
    /// record: discard whatever an earlier attempt of this job and subtask left
    /// pre-committed, as no completed checkpoint covers it.
    fn start_without_state(&mut self) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Runs a [`SinkWriter`] at the end of a chain.
pub(crate) struct SinkOperator<T> {
    pub(crate) writer: Box<dyn SinkWriter<T>>,
    pub(crate) out: Box<dyn Output<()>>,
    pub(crate) index: usize,
    pub(crate) uid: String,
}

impl<T> Output<T> for SinkOperator<T> {
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        self.writer.write(value, ts)
    }
}

impl<T> weir_runtime::Lifecycle for SinkOperator<T> {
    fn downstream(&mut self) -> Option<&mut dyn weir_runtime::Lifecycle> {
        Some(&mut *self.out)
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        self.writer.flush()?;
        self.out.flush()
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        self.writer.finish()?;
        self.out.end_input()
    }
    /// Two-phase commit, phase one: the writer's pre-commit goes into the checkpoint.
    fn snapshot_state(
        &mut self,
        checkpoint: CheckpointId,
        _options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        if let Some(s) = self.writer.pre_commit(checkpoint)? {
            state.push(weir_runtime::checkpoint::OperatorSnapshot::operator_list(
                &self.uid,
                &[s],
            )?);
        }
        Ok(())
    }
    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        self.writer.commit(checkpoint)
    }
}
