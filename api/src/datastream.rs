//! `DataStream<T>`: a typed handle on one node of the stream graph, with the operators a
//! Flink user knows. Every method adds nodes and edges; nothing runs until `execute`.

use crate::environment::StreamExecutionEnvironment;
use crate::graph::stream_graph::{MakeOneInput, NodeId, NodeKind};
use crate::graph::type_ops::{erase, typed_output, AnyKeyHash, TypeOpsOf};
use crate::graph::OperatorContext;
use crate::operators::basic::{Filter, FlatMap, Identity, Map};
use crate::record::Record;
use crate::sink::{
    CollectSink, PrintSink, SinkContext, SinkDownstream, SinkFunction, SinkOperator,
};
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;
use weir_runtime::{Output, Partitioning, TaskError};

/// A stream of records of type `T`.
pub struct DataStream<T> {
    pub(crate) env: StreamExecutionEnvironment,
    pub(crate) id: NodeId,
    pub(crate) partitioning: Option<Partitioning>,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for DataStream<T> {
    fn clone(&self) -> Self {
        Self {
            env: self.env.clone(),
            id: self.id,
            partitioning: self.partitioning,
            _t: PhantomData,
        }
    }
}

/// The end of a pipeline, returned by sinks so they can be named and configured.
pub struct DataStreamSink {
    stream: DataStream<()>,
}

impl DataStreamSink {
    /// Keeps the sink out of its predecessor's chain: it runs as a task of its own, behind
    /// a network exchange.
    pub fn disable_chaining(self) -> Self {
        Self {
            stream: self.stream.disable_chaining(),
        }
    }

    /// Sets the sink's name.
    pub fn name(self, name: &str) -> Self {
        Self {
            stream: self.stream.name(name),
        }
    }
    /// Sets the sink's uid.
    pub fn uid(self, uid: &str) -> Self {
        Self {
            stream: self.stream.uid(uid),
        }
    }
    /// Sets the sink's parallelism.
    pub fn set_parallelism(self, parallelism: u16) -> Self {
        Self {
            stream: self.stream.set_parallelism(parallelism),
        }
    }

    /// Returns the stream of records the sink's writers emitted to the side output `tag`
    /// (such as the rows a database refused; see [`crate::sink::SinkSideOutputs`]).
    pub fn get_side_output<S: crate::record::Record>(
        &self,
        tag: &crate::functions::OutputTag<S>,
    ) -> DataStream<S> {
        self.stream.get_side_output(tag)
    }
}

impl<T: Record> DataStream<T> {
    pub(crate) fn new(env: StreamExecutionEnvironment, id: NodeId) -> Self {
        Self {
            env,
            id,
            partitioning: None,
            _t: PhantomData,
        }
    }

    /// Returns the environment this stream belongs to.
    pub fn environment(&self) -> &StreamExecutionEnvironment {
        &self.env
    }

    fn with_node(&self, f: impl FnOnce(&mut crate::graph::stream_graph::StreamNode)) {
        let mut inner = self.env.inner.borrow_mut();
        f(&mut inner.graph.nodes[self.id]);
    }

    /// Sets the operator's name (shown in logs and errors).
    pub fn name(self, name: &str) -> Self {
        self.with_node(|n| n.name = name.to_string());
        self
    }

    /// Sets the operator's stable id, used to match state across job versions.
    pub fn uid(self, uid: &str) -> Self {
        self.with_node(|n| n.uid = Some(uid.to_string()));
        self
    }

    /// Sets the operator's parallelism.
    pub fn set_parallelism(self, parallelism: u16) -> Self {
        self.with_node(|n| n.parallelism = parallelism);
        self
    }

    /// Sets the operator's number of key groups.
    pub fn set_max_parallelism(self, max_parallelism: u16) -> Self {
        self.with_node(|n| n.max_parallelism = Some(max_parallelism));
        self
    }

    /// Marks this operator as able to emit side outputs.
    pub(crate) fn emitting_side_outputs(self) -> Self {
        self.with_node(|n| n.emits_side_outputs = true);
        self
    }

    /// Keeps this operator out of its predecessor's chain.
    pub fn disable_chaining(self) -> Self {
        self.with_node(|n| n.chainable = false);
        self
    }

    /// Returns the parallelism this operator has now.
    pub fn parallelism(&self) -> u16 {
        self.env.inner.borrow().graph.nodes[self.id].parallelism
    }

    /// Distributes records round-robin to the next operator.
    pub fn rebalance(&self) -> Self {
        self.partitioned(Partitioning::Rebalance)
    }

    /// Sends every record to every subtask of the next operator.
    pub fn broadcast(&self) -> Self {
        self.partitioned(Partitioning::Broadcast)
    }

    /// Keeps records on the same subtask index (requires equal parallelism).
    pub fn forward(&self) -> Self {
        self.partitioned(Partitioning::Forward)
    }

    fn partitioned(&self, p: Partitioning) -> Self {
        let mut s = self.clone();
        s.partitioning = Some(p);
        s
    }

    /// Adds a one-input node consuming this stream.
    pub(crate) fn add_one_input<O: Record>(
        &self,
        name: &str,
        key_hash: Option<AnyKeyHash>,
        is_sink: bool,
        make: impl Fn(&mut OperatorContext, Box<dyn Output<O>>) -> Result<Box<dyn Output<T>>, TaskError>
            + Send
            + Sync
            + 'static,
    ) -> DataStream<O> {
        let make: MakeOneInput = Arc::new(move |ctx, out| {
            let out = typed_output::<O>(out, &ctx.name)?;
            Ok(erase(make(ctx, out)?))
        });
        let mut inner = self.env.inner.borrow_mut();
        let parallelism = inner.settings.parallelism;
        let id = inner.graph.add_node(
            name,
            parallelism,
            NodeKind::OneInput(make),
            Arc::new(TypeOpsOf::<O>::new()),
            Some(Arc::new(TypeOpsOf::<T>::new())),
            is_sink,
        );
        let partitioning = if key_hash.is_some() {
            Some(Partitioning::Hash)
        } else {
            self.partitioning
        };
        inner.graph.add_edge(self.id, id, partitioning, 0, key_hash);
        drop(inner);
        DataStream::new(self.env.clone(), id)
    }

    /// Applies `f` to every record.
    pub fn map<O: Record, F: Fn(T) -> O + Send + Sync + 'static>(&self, f: F) -> DataStream<O> {
        let f = Arc::new(f);
        self.add_one_input("Map", None, false, move |ctx, out| {
            Ok(Box::new(Map {
                f: f.clone(),
                out,
                index: ctx.index,
            }))
        })
    }

    /// Keeps the records for which `f` returns true.
    pub fn filter<F: Fn(&T) -> bool + Send + Sync + 'static>(&self, f: F) -> DataStream<T> {
        let f = Arc::new(f);
        self.add_one_input("Filter", None, false, move |ctx, out| {
            Ok(Box::new(Filter {
                f: f.clone(),
                out,
                index: ctx.index,
            }))
        })
    }

    /// Emits every item of the iterator `f` returns for a record.
    pub fn flat_map<O: Record, I: IntoIterator<Item = O>, F: Fn(T) -> I + Send + Sync + 'static>(
        &self,
        f: F,
    ) -> DataStream<O> {
        let f = Arc::new(f);
        self.add_one_input("Flat Map", None, false, move |ctx, out| {
            Ok(Box::new(FlatMap {
                f: f.clone(),
                out,
                index: ctx.index,
            }))
        })
    }

    /// Merges this stream with others of the same type.
    pub fn union(&self, others: &[&DataStream<T>]) -> DataStream<T> {
        let merged = self.add_one_input("Union", None, false, |_ctx, out| {
            Ok(Box::new(Identity { out }))
        });
        let mut inner = self.env.inner.borrow_mut();
        for o in others {
            inner
                .graph
                .add_edge(o.id, merged.id, o.partitioning, 0, None);
        }
        drop(inner);
        merged
    }

    /// Writes every record with `sink`.
    pub fn add_sink<S: SinkFunction<T>>(&self, sink: S) -> DataStreamSink {
        self.add_sink_partitioned(sink, None)
    }

    /// Adds a sink behind this stream's partitioning, or hash partitioning by `key_hash`.
    pub(crate) fn add_sink_partitioned<S: SinkFunction<T>>(
        &self,
        sink: S,
        key_hash: Option<AnyKeyHash>,
    ) -> DataStreamSink {
        let sink = Arc::new(sink);
        let checked = sink.clone();
        let stream = self
            .add_one_input::<()>("Sink", key_hash, true, move |ctx, out| {
                let (out, side_outputs) = SinkDownstream::new(ctx.take_side_outputs(), out);
                let mut writer = sink.create_writer(&SinkContext {
                    name: ctx.name.clone(),
                    subtask: ctx.subtask,
                    parallelism: ctx.parallelism,
                    checkpointing: ctx.config.checkpointing.is_some(),
                    job: ctx.job,
                    uid: ctx.uid.clone(),
                    side_outputs,
                })?;
                let states = match &ctx.restored {
                    Some(restored) => {
                        restored.operator_list(&ctx.uid, ctx.subtask, ctx.parallelism)?
                    }
                    None => None,
                };
                {
                    let _scope = weir_runtime::task::enter_operator(ctx.index);
                    match states {
                        Some(s) => writer.recover(s)?,
                        None => writer.start_without_state()?,
                    }
                }
                Ok(Box::new(SinkOperator {
                    writer,
                    out: Box::new(out),
                    index: ctx.index,
                    uid: ctx.uid.clone(),
                }))
            })
            .emitting_side_outputs();
        self.env.inner.borrow_mut().graph.nodes[stream.id].check =
            Some(Arc::new(move |name, job| checked.check(name, job)));
        DataStreamSink { stream }
    }

    /// Prints every record to standard output (`N> record` with parallelism above one).
    pub fn print(&self) -> DataStreamSink
    where
        T: Debug,
    {
        self.add_sink(PrintSink).name("Print to Std. Out")
    }

    /// Collects every record in memory; read them after `execute` (local mini-cluster only).
    pub fn collect(&self) -> CollectSink<T> {
        let sink = CollectSink::new();
        self.add_sink(sink.clone()).name("Collect Sink");
        sink
    }
}
