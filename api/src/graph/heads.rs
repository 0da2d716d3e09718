//! The first piece of every task's chain: it turns runtime calls into typed calls.
//!
//! A source head polls a [`SourceReader`]; a one-input head decodes records of its input
//! type; a two-input head decodes each input with its own type. Each names the chain's first
//! operator as its downstream, so lifecycle calls (watermarks, timers, flushing, end of
//! input, checkpoints) go into the chain.

use crate::record::Record;
use crate::source::SourceReader;
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir_runtime::element::ElementReader;
use weir_runtime::metrics::TaskMetrics;
use weir_runtime::{Lifecycle, Output, SourceStep, TaskError, TaskInvokable, Timestamp};
use weir_state_backends::decode_from;

/// Decodes one record payload.
#[inline]
fn decode<T: Record>(payload: &[u8], operator: &str, input: u8) -> Result<T, TaskError> {
    decode_from::<T>(payload)
        .map(|(v, _)| v)
        .map_err(|e| TaskError::Decode {
            operator: operator.to_string(),
            input,
            message: e.to_string(),
        })
}

/// Head of a task whose records come from one logical input of type `T`.
pub struct OneInputHead<T> {
    op: Box<dyn Output<T>>,
    names: Vec<String>,
    operator: String,
}

impl<T: Record> OneInputHead<T> {
    /// Creates the head in front of `op`.
    pub fn new(op: Box<dyn Output<T>>, names: Vec<String>, operator: String) -> Self {
        Self {
            op,
            names,
            operator,
        }
    }
}

impl<T: Record> TaskInvokable for OneInputHead<T> {
    fn process_records(
        &mut self,
        input: u8,
        reader: &mut ElementReader<'_>,
    ) -> Result<(), TaskError> {
        while let Some(r) = reader.next_record() {
            let (ts, payload) = r.map_err(|e| TaskError::Io(e.to_string()))?;
            let v = decode::<T>(payload, &self.operator, input)?;
            self.op.emit(v, ts)?;
        }
        Ok(())
    }
    fn operator_name(&self, index: usize) -> Option<String> {
        self.names.get(index).cloned()
    }
}

impl<T> Lifecycle for OneInputHead<T> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.op)
    }
}

/// Head of a task that starts with a source.
pub struct SourceHead<T> {
    reader: Box<dyn SourceReader<T>>,
    op: Box<dyn Output<T>>,
    names: Vec<String>,
    batch: usize,
    uid: String,
    warned_not_replayable: bool,
    /// Where the reader's pending records are shown.
    metrics: Arc<TaskMetrics>,
    /// When the reader was last asked for its pending records.
    asked_at: Instant,
}

impl<T: Record> SourceHead<T> {
    /// Creates the head polling `reader` into `op`, `batch` records per step.
    pub fn new(
        reader: Box<dyn SourceReader<T>>,
        op: Box<dyn Output<T>>,
        names: Vec<String>,
        batch: usize,
        uid: String,
        metrics: Arc<TaskMetrics>,
    ) -> Self {
        Self {
            reader,
            op,
            names,
            batch,
            uid,
            warned_not_replayable: false,
            metrics,
            asked_at: Instant::now(),
        }
    }

    /// About once a second, shows the reader's pending records (if it knows them); one
    /// look at the clock per step (a batch of records).
    fn report_pending(&mut self) {
        if self.asked_at.elapsed() >= Duration::from_secs(1) {
            self.asked_at = Instant::now();
            if let Some(n) = self.reader.pending_records() {
                self.metrics.set_pending_records(n);
            }
        }
    }
}

impl<T> Lifecycle for SourceHead<T> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.op)
    }

    /// Snapshots the read position (taken between polls, so it matches the records
    /// emitted before the barrier); the chain follows.
    fn snapshot_state(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        _options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        match self.reader.snapshot_splits(checkpoint)? {
            Some(splits) => state.push(weir_runtime::checkpoint::OperatorSnapshot::operator_list(
                &self.uid, &splits,
            )?),
            None if !self.warned_not_replayable => {
                self.warned_not_replayable = true;
                tracing::warn!(
                    source = %self.names.first().map(String::as_str).unwrap_or(""),
                    "this source cannot be replayed: with checkpoints, its records since the last checkpoint may be lost on failure"
                );
            }
            None => {}
        }
        Ok(())
    }

    /// Tells the reader a checkpoint completed (a Kafka source commits its offsets).
    fn notify_checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        self.reader.notify_checkpoint_complete(checkpoint)
    }
}

impl<T: Record> TaskInvokable for SourceHead<T> {
    fn source_step(&mut self) -> Result<SourceStep, TaskError> {
        let _scope = weir_runtime::task::enter_operator(0);
        self.report_pending();
        self.reader.poll(&mut *self.op, self.batch)
    }
    fn process_records(
        &mut self,
        _input: u8,
        _reader: &mut ElementReader<'_>,
    ) -> Result<(), TaskError> {
        Err(TaskError::Configuration(
            "a source task has no inputs".into(),
        ))
    }
    fn operator_name(&self, index: usize) -> Option<String> {
        self.names.get(index).cloned()
    }
}

/// An operator with two typed inputs (connected streams).
pub trait TwoInputOperator<I1, I2>: Lifecycle {
    /// A record of the first input.
    fn process1(&mut self, value: I1, ts: Timestamp) -> Result<(), TaskError>;
    /// A record of the second input.
    fn process2(&mut self, value: I2, ts: Timestamp) -> Result<(), TaskError>;
}

/// Head of a task whose chain starts with a two-input operator.
pub struct TwoInputHead<I1, I2> {
    op: Box<dyn TwoInputOperator<I1, I2>>,
    names: Vec<String>,
    operator: String,
}

impl<I1: Record, I2: Record> TwoInputHead<I1, I2> {
    /// Creates the head in front of `op`.
    pub fn new(op: Box<dyn TwoInputOperator<I1, I2>>, names: Vec<String>) -> Self {
        let operator = names.first().cloned().unwrap_or_default();
        Self {
            op,
            names,
            operator,
        }
    }
}

impl<I1: Record, I2: Record> TaskInvokable for TwoInputHead<I1, I2> {
    fn process_records(
        &mut self,
        input: u8,
        reader: &mut ElementReader<'_>,
    ) -> Result<(), TaskError> {
        let name = &self.operator;
        while let Some(r) = reader.next_record() {
            let (ts, payload) = r.map_err(|e| TaskError::Io(e.to_string()))?;
            if input == 0 {
                let v = decode::<I1>(payload, name, input)?;
                self.op.process1(v, ts)?;
            } else {
                let v = decode::<I2>(payload, name, input)?;
                self.op.process2(v, ts)?;
            }
        }
        Ok(())
    }
    fn operator_name(&self, index: usize) -> Option<String> {
        self.names.get(index).cloned()
    }
}

impl<I1, I2> Lifecycle for TwoInputHead<I1, I2> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut *self.op)
    }
}
