//! Non-keyed process functions, side outputs, and connected streams (`connect` with
//! co-map, co-flat-map and co-process).

use crate::datastream::DataStream;
use crate::functions::{CoProcessFunction, Context, FnResult, OutputTag, ProcessFunction};
use crate::graph::heads::TwoInputHead;
use crate::graph::stream_graph::{MakeHead, NodeKind};
use crate::graph::type_ops::{typed_output, TypeOpsOf};
use crate::operators::process::{CoProcessOperator, ProcessOperator};
use crate::record::Record;
use std::sync::Arc;
use weir_runtime::TaskInvokable;

impl<T: Record> DataStream<T> {
    /// Processes every record with access to timestamps, watermarks and side outputs.
    pub fn process<O: Record, F: ProcessFunction<T, O>>(&self, f: F) -> DataStream<O> {
        self.add_one_input("Process", None, false, move |ctx, out| {
            let sides = ctx.take_side_outputs();
            Ok(Box::new(ProcessOperator::new(
                f.clone(),
                out,
                sides,
                ctx.name.clone(),
                ctx.index,
            )))
        })
        .emitting_side_outputs()
    }

    /// Returns the stream of records this operator emitted to the side output `tag`.
    pub fn get_side_output<S: Record>(&self, tag: &OutputTag<S>) -> DataStream<S> {
        let mut inner = self.env.inner.borrow_mut();
        let parallelism = inner.graph.nodes[self.id].parallelism;
        let name = format!(
            "{} (side output '{}')",
            inner.graph.nodes[self.id].name,
            tag.id()
        );
        let id = inner.graph.add_node(
            &name,
            parallelism,
            NodeKind::SideOutput {
                parent: self.id,
                tag: tag.id().to_string(),
            },
            Arc::new(TypeOpsOf::<S>::new()),
            None,
            false,
        );
        drop(inner);
        DataStream::new(self.env.clone(), id)
    }

    /// Connects this stream with `other` for a two-input operator: another stream gives
    /// [`ConnectedStreams`], a broadcast stream (`broadcast_with`) a
    /// [`crate::broadcast::BroadcastConnectedStream`].
    pub fn connect<S: ConnectWith<T>>(&self, other: &S) -> S::Connected {
        other.connected_to(self)
    }
}

/// What a stream can be connected with (`DataStream::connect`), and what that gives.
pub trait ConnectWith<T1> {
    /// The connection.
    type Connected;
    /// Connects `first` (the first input) with this stream (the second).
    fn connected_to(&self, first: &DataStream<T1>) -> Self::Connected;
}

impl<T1: Record, T2: Record> ConnectWith<T1> for DataStream<T2> {
    type Connected = ConnectedStreams<T1, T2>;
    fn connected_to(&self, first: &DataStream<T1>) -> ConnectedStreams<T1, T2> {
        ConnectedStreams {
            first: first.clone(),
            second: self.clone(),
        }
    }
}

/// Two streams processed together by one operator, which may share state between them.
pub struct ConnectedStreams<T1, T2> {
    first: DataStream<T1>,
    second: DataStream<T2>,
}

struct CoMap<F1, F2>(Arc<F1>, Arc<F2>);

impl<F1, F2> Clone for CoMap<F1, F2> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1.clone())
    }
}

impl<
        I1,
        I2,
        O,
        F1: Fn(I1) -> O + Send + Sync + 'static,
        F2: Fn(I2) -> O + Send + Sync + 'static,
    > CoProcessFunction<I1, I2, O> for CoMap<F1, F2>
{
    fn process_element1(&mut self, value: I1, ctx: &mut Context<'_, O>) -> FnResult {
        ctx.collect((self.0)(value));
        Ok(())
    }
    fn process_element2(&mut self, value: I2, ctx: &mut Context<'_, O>) -> FnResult {
        ctx.collect((self.1)(value));
        Ok(())
    }
}

struct CoFlatMap<F1, F2>(Arc<F1>, Arc<F2>);

impl<F1, F2> Clone for CoFlatMap<F1, F2> {
    fn clone(&self) -> Self {
        Self(self.0.clone(), self.1.clone())
    }
}

impl<I1, I2, O, It1, It2, F1, F2> CoProcessFunction<I1, I2, O> for CoFlatMap<F1, F2>
where
    It1: IntoIterator<Item = O>,
    It2: IntoIterator<Item = O>,
    F1: Fn(I1) -> It1 + Send + Sync + 'static,
    F2: Fn(I2) -> It2 + Send + Sync + 'static,
{
    fn process_element1(&mut self, value: I1, ctx: &mut Context<'_, O>) -> FnResult {
        for v in (self.0)(value) {
            ctx.collect(v);
        }
        Ok(())
    }
    fn process_element2(&mut self, value: I2, ctx: &mut Context<'_, O>) -> FnResult {
        for v in (self.1)(value) {
            ctx.collect(v);
        }
        Ok(())
    }
}

impl<T1: Record, T2: Record> ConnectedStreams<T1, T2> {
    /// Processes both inputs with one function.
    pub fn process<O: Record, F: CoProcessFunction<T1, T2, O>>(&self, f: F) -> DataStream<O> {
        let env = self.first.env.clone();
        let make: MakeHead = Arc::new(move |ctx, out, names| {
            let out = typed_output::<O>(out, &ctx.name)?;
            let sides = ctx.take_side_outputs();
            let op = CoProcessOperator(ProcessOperator::new(
                f.clone(),
                out,
                sides,
                ctx.name.clone(),
                ctx.index,
            ));
            Ok(Box::new(TwoInputHead::<T1, T2>::new(Box::new(op), names))
                as Box<dyn TaskInvokable>)
        });
        let mut inner = env.inner.borrow_mut();
        let parallelism = inner.settings.parallelism;
        let id = inner.graph.add_node(
            "CoProcess",
            parallelism,
            NodeKind::TwoInput(make),
            Arc::new(TypeOpsOf::<O>::new()),
            None,
            false,
        );
        inner
            .graph
            .add_edge(self.first.id, id, self.first.partitioning, 0, None);
        inner
            .graph
            .add_edge(self.second.id, id, self.second.partitioning, 1, None);
        drop(inner);
        DataStream::new(env, id).emitting_side_outputs()
    }

    /// Maps each input with its own function into one output stream.
    pub fn map<O: Record, F1, F2>(&self, f1: F1, f2: F2) -> DataStream<O>
    where
        F1: Fn(T1) -> O + Send + Sync + 'static,
        F2: Fn(T2) -> O + Send + Sync + 'static,
    {
        self.process(CoMap(Arc::new(f1), Arc::new(f2)))
            .name("CoMap")
    }

    /// Flat-maps each input with its own function into one output stream.
    pub fn flat_map<O: Record, It1, It2, F1, F2>(&self, f1: F1, f2: F2) -> DataStream<O>
    where
        It1: IntoIterator<Item = O>,
        It2: IntoIterator<Item = O>,
        F1: Fn(T1) -> It1 + Send + Sync + 'static,
        F2: Fn(T2) -> It2 + Send + Sync + 'static,
    {
        self.process(CoFlatMap(Arc::new(f1), Arc::new(f2)))
            .name("CoFlatMap")
    }
}
