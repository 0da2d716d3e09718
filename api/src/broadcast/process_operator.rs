//! The operator of a non-keyed stream connected with a broadcast stream: data records read
//! the broadcast state, broadcast records update it; the state is checkpointed as broadcast
//! state (`weir_runtime::checkpoint::broadcast_state`).
//!
//! Invariant: only the broadcast side gets a mutable reference to the state.

use super::broadcast_state::BroadcastState;
use super::functions::BroadcastProcessFunction;
use crate::functions::{user_error, Downstream};
use crate::graph::heads::TwoInputOperator;
use crate::graph::OperatorContext;
use std::hash::Hash;
use weir_runtime::checkpoint::OperatorSnapshot;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, TaskError, Timestamp, MIN_WATERMARK};

/// The operator of `BroadcastConnectedStream::process`.
pub(crate) struct BroadcastProcessOperator<UK, UV, O, F> {
    f: F,
    state: BroadcastState<UK, UV>,
    down: Downstream<O>,
    watermark: Timestamp,
    name: String,
    uid: String,
    index: usize,
}

impl<UK, UV, O, F> BroadcastProcessOperator<UK, UV, O, F>
where
    UK: crate::Record + Hash + Eq,
    UV: crate::Record,
{
    /// Creates the operator with the restored broadcast state, if any.
    pub(crate) fn new(f: F, down: Downstream<O>, ctx: &OperatorContext) -> Result<Self, TaskError> {
        Ok(Self {
            f,
            state: BroadcastState::open(ctx)?,
            down,
            watermark: MIN_WATERMARK,
            name: ctx.name.clone(),
            uid: ctx.uid.clone(),
            index: ctx.index,
        })
    }
}

impl<I1, I2, UK, UV, O, F> TwoInputOperator<I1, I2> for BroadcastProcessOperator<UK, UV, O, F>
where
    UK: crate::Record + Hash + Eq,
    UV: crate::Record,
    F: BroadcastProcessFunction<I1, I2, O, UK, UV>,
{
    fn process1(&mut self, value: I1, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let mut ctx = self.down.context(ts, self.watermark);
        let r = self.f.process_element(value, &self.state, &mut ctx);
        if let Some(e) = ctx.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }

    fn process2(&mut self, value: I2, ts: Timestamp) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let mut ctx = self.down.context(ts, self.watermark);
        let r = self
            .f
            .process_broadcast_element(value, &mut self.state, &mut ctx);
        if let Some(e) = ctx.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }
}

impl<UK, UV, O, F> Lifecycle for BroadcastProcessOperator<UK, UV, O, F>
where
    UK: crate::Record + Hash + Eq,
    UV: crate::Record,
{
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut self.down)
    }
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.watermark = wm;
        self.down.watermark(wm)
    }
    fn snapshot_state(
        &mut self,
        _checkpoint: weir_runtime::CheckpointId,
        _options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        self.state.snapshot_into((&self.name, &self.uid), state)
    }
}
