//! Runs a (non-keyed) [`ProcessFunction`] or [`CoProcessFunction`].

use crate::functions::{
    user_error, CoProcessFunction, Context, Downstream, ProcessFunction, SideOutputs,
};
use crate::graph::TwoInputOperator;
use weir_runtime::task::enter_operator;
use weir_runtime::{Lifecycle, Output, TaskError, Timestamp, MIN_WATERMARK};

/// The operator of `DataStream::process`.
pub struct ProcessOperator<O, F> {
    pub(crate) f: F,
    pub(crate) down: Downstream<O>,
    pub(crate) watermark: Timestamp,
    pub(crate) name: String,
    pub(crate) index: usize,
}

impl<O, F> ProcessOperator<O, F> {
    pub(crate) fn new(
        f: F,
        out: Box<dyn Output<O>>,
        sides: SideOutputs,
        name: String,
        index: usize,
    ) -> Self {
        Self {
            f,
            down: Downstream::new(out, sides),
            watermark: MIN_WATERMARK,
            name,
            index,
        }
    }

    fn call(
        &mut self,
        ts: Timestamp,
        body: impl FnOnce(&mut F, &mut Context<'_, O>) -> crate::functions::FnResult,
    ) -> Result<(), TaskError> {
        let _scope = enter_operator(self.index);
        let mut ctx = self.down.context(ts, self.watermark);
        let r = body(&mut self.f, &mut ctx);
        if let Some(e) = ctx.error.take() {
            return Err(e);
        }
        r.map_err(|e| user_error(&self.name, e))
    }
}

impl<I, O, F: ProcessFunction<I, O>> Output<I> for ProcessOperator<O, F> {
    fn emit(&mut self, value: I, ts: Timestamp) -> Result<(), TaskError> {
        self.call(ts, |f, ctx| f.process_element(value, ctx))
    }
}

impl<O, F> Lifecycle for ProcessOperator<O, F> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut self.down)
    }
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.watermark = wm;
        self.down.watermark(wm)
    }
}

/// The operator of `ConnectedStreams::process` (and `map`/`flat_map`).
pub struct CoProcessOperator<O, F>(pub(crate) ProcessOperator<O, F>);

impl<I1, I2, O, F: CoProcessFunction<I1, I2, O>> TwoInputOperator<I1, I2>
    for CoProcessOperator<O, F>
{
    fn process1(&mut self, value: I1, ts: Timestamp) -> Result<(), TaskError> {
        self.0.call(ts, |f, ctx| f.process_element1(value, ctx))
    }
    fn process2(&mut self, value: I2, ts: Timestamp) -> Result<(), TaskError> {
        self.0.call(ts, |f, ctx| f.process_element2(value, ctx))
    }
}

impl<O, F> Lifecycle for CoProcessOperator<O, F> {
    fn downstream(&mut self) -> Option<&mut dyn Lifecycle> {
        Some(&mut self.0)
    }
}
