//! Side outputs of sinks: a sink writer emits what it could not write (the rows a database
//! refused, say) to a side output, which streams read with
//! [`crate::DataStreamSink::get_side_output`], as Flink's process functions do with
//! `ctx.output(tag, value)`.
//!
//! Invariants: a record a writer emits travels downstream from the sink's task in order with
//! the sink's lifecycle calls (watermarks, barriers, end of input go to the side outputs
//! first, then to the main output), so one emitted while the writer handles a checkpoint's
//! barrier precedes that barrier downstream: the side output is exactly once with the
//! sink's own transactions. A writer that holds records past the end of its input (to write
//! them with the final checkpoint) may emit after the end of input has gone downstream:
//! such records still precede the final barrier, but an event-time consumer sees them
//! after the final watermark. Records of a tag no stream reads are dropped.

use crate::functions::{Downstream, OutputTag, SideOutputs};
use std::cell::RefCell;
use std::rc::Rc;
use weir_runtime::{Lifecycle, Output, TaskError, Timestamp};

/// Where a sink writer emits side-output records; cloned into the writer from its
/// [`super::SinkContext`].
#[derive(Clone, Default)]
pub struct SinkSideOutputs(Option<Rc<RefCell<Downstream<()>>>>);

impl std::fmt::Debug for SinkSideOutputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SinkSideOutputs")
    }
}

impl SinkSideOutputs {
    /// Emits `value` with timestamp `ts` to the side output `tag` (dropped if no stream
    /// reads it).
    pub fn emit<S: 'static>(
        &self,
        tag: &OutputTag<S>,
        value: S,
        ts: Timestamp,
    ) -> Result<(), TaskError> {
        match &self.0 {
            Some(down) => down.borrow_mut().sides.emit(tag, value, ts),
            None => Ok(()),
        }
    }
}

/// A sink's downstream, shared with its writer's [`SinkSideOutputs`]: lifecycle calls go
/// through [`Downstream`] (side outputs first, then the main output).
pub(crate) struct SinkDownstream(Rc<RefCell<Downstream<()>>>);

impl SinkDownstream {
    /// The downstream of a sink with side outputs `sides` and main output `out`, and the
    /// handle its writer emits through.
    pub(crate) fn new(sides: SideOutputs, out: Box<dyn Output<()>>) -> (Self, SinkSideOutputs) {
        let down = Rc::new(RefCell::new(Downstream::new(out, sides)));
        (Self(down.clone()), SinkSideOutputs(Some(down)))
    }
}

impl Output<()> for SinkDownstream {
    fn emit(&mut self, value: (), ts: Timestamp) -> Result<(), TaskError> {
        self.0.borrow_mut().out.emit(value, ts)
    }
}

/// Every call goes to the shared [`Downstream`].
impl Lifecycle for SinkDownstream {
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.0.borrow_mut().watermark(wm)
    }
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        self.0.borrow_mut().idle(idle)
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        self.0.borrow_mut().processing_time(now)
    }
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        self.0.borrow_mut().next_processing_time()
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        self.0.borrow_mut().flush()
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        self.0.borrow_mut().end_input()
    }
    fn close(&mut self) -> Result<(), TaskError> {
        self.0.borrow_mut().close()
    }
    fn checkpoint(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        self.0.borrow_mut().checkpoint(checkpoint, options, state)
    }
    fn checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        self.0.borrow_mut().checkpoint_complete(checkpoint)
    }
}
