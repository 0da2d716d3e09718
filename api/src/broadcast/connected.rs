//! A data stream, keyed or not, connected with a broadcast stream, and the two-input
//! operator `process` adds for it.
//!
//! Invariant: the data stream is input 0 (forwarded, or hash partitioned by its key), the
//! broadcast stream input 1, whose edge sends every record to every subtask.

use super::functions::{BroadcastProcessFunction, KeyedBroadcastProcessFunction};
use super::keyed_process_operator::KeyedBroadcastProcessOperator;
use super::process_operator::BroadcastProcessOperator;
use super::BroadcastStream;
use crate::connected::ConnectWith;
use crate::datastream::DataStream;
use crate::functions::Downstream;
use crate::graph::heads::TwoInputHead;
use crate::graph::stream_graph::{MakeHead, NodeKind};
use crate::graph::type_ops::{typed_output, TypeOpsOf};
use crate::keyed_stream::{key_hasher, open_keyed, KeyedStream};
use crate::record::Record;
use std::hash::Hash;
use std::sync::Arc;
use weir_runtime::{Partitioning, TaskInvokable};
use weir_state_backends::StateKey;

/// A non-keyed stream connected with a broadcast stream.
pub struct BroadcastConnectedStream<T1, T2, UK, UV> {
    first: DataStream<T1>,
    second: BroadcastStream<T2, UK, UV>,
}

/// A keyed stream connected with a broadcast stream.
pub struct KeyedBroadcastConnectedStream<K, T1, T2, UK, UV> {
    first: KeyedStream<K, T1>,
    second: BroadcastStream<T2, UK, UV>,
}

impl<T1: Record, T2: Record, UK, UV> ConnectWith<T1> for BroadcastStream<T2, UK, UV> {
    type Connected = BroadcastConnectedStream<T1, T2, UK, UV>;
    fn connected_to(&self, first: &DataStream<T1>) -> Self::Connected {
        BroadcastConnectedStream {
            first: first.clone(),
            second: self.clone(),
        }
    }
}

impl<T, UK, UV> Clone for BroadcastStream<T, UK, UV> {
    fn clone(&self) -> Self {
        Self {
            stream: self.stream.clone(),
            descriptor: self.descriptor.clone(),
            _types: std::marker::PhantomData,
        }
    }
}

impl<K: StateKey + Send + Sync, T1: Record> KeyedStream<K, T1> {
    /// Connects this keyed stream with a broadcast stream for a
    /// [`KeyedBroadcastProcessFunction`].
    pub fn connect<T2: Record, UK, UV>(
        &self,
        broadcast: &BroadcastStream<T2, UK, UV>,
    ) -> KeyedBroadcastConnectedStream<K, T1, T2, UK, UV> {
        KeyedBroadcastConnectedStream {
            first: self.clone(),
            second: broadcast.clone(),
        }
    }
}

/// Adds the two-input node `name` with the data stream `first` (edge partitioning and key
/// hash) and the broadcast stream `second`.
fn add_node<O: Record, T1, T2>(
    (first, partitioning, key_hash): (
        &DataStream<T1>,
        Option<Partitioning>,
        Option<crate::graph::type_ops::AnyKeyHash>,
    ),
    second: &DataStream<T2>,
    name: &str,
    make: MakeHead,
) -> DataStream<O> {
    let env = first.env.clone();
    let mut inner = env.inner.borrow_mut();
    let parallelism = inner.settings.parallelism;
    let id = inner.graph.add_node(
        name,
        parallelism,
        NodeKind::TwoInput(make),
        Arc::new(TypeOpsOf::<O>::new()),
        None,
        false,
    );
    inner
        .graph
        .add_edge(first.id, id, partitioning, 0, key_hash);
    inner
        .graph
        .add_edge(second.id, id, Some(Partitioning::Broadcast), 1, None);
    drop(inner);
    DataStream::new(env, id).emitting_side_outputs()
}

impl<T1: Record, T2: Record, UK, UV> BroadcastConnectedStream<T1, T2, UK, UV>
where
    UK: Record + Hash + Eq,
    UV: Record,
{
    /// Processes both inputs with `f`.
    pub fn process<O: Record, F: BroadcastProcessFunction<T1, T2, O, UK, UV>>(
        &self,
        f: F,
    ) -> DataStream<O> {
        let make: MakeHead = Arc::new(move |ctx, out, names| {
            let out = typed_output::<O>(out, &ctx.name)?;
            let down = Downstream::new(out, ctx.take_side_outputs());
            let op = BroadcastProcessOperator::<UK, UV, O, F>::new(f.clone(), down, ctx)?;
            Ok(Box::new(TwoInputHead::<T1, T2>::new(Box::new(op), names))
                as Box<dyn TaskInvokable>)
        });
        let first = (&self.first, self.first.partitioning, None);
        add_node(first, &self.second.stream, "Co-Process-Broadcast", make)
    }
}

impl<K, T1, T2, UK, UV> KeyedBroadcastConnectedStream<K, T1, T2, UK, UV>
where
    K: StateKey + Send + Sync,
    T1: Record,
    T2: Record,
    UK: Record + Hash + Eq,
    UV: Record,
{
    /// Processes both inputs with `f`, with keyed state and timers on the keyed side.
    pub fn process<O: Record, F: KeyedBroadcastProcessFunction<K, T1, T2, O, UK, UV>>(
        &self,
        f: F,
    ) -> DataStream<O> {
        let key_fn = self.first.key_selector();
        let make: MakeHead = Arc::new(move |ctx, out, names| {
            let out = typed_output::<O>(out, &ctx.name)?;
            let (backend, timers) = open_keyed::<K, _>(ctx)?;
            let down = Downstream::new(out, ctx.take_side_outputs());
            let op = KeyedBroadcastProcessOperator::new(
                f.clone(),
                key_fn.clone(),
                (backend, timers),
                down,
                ctx,
            )?;
            Ok(Box::new(TwoInputHead::<T1, T2>::new(Box::new(op), names))
                as Box<dyn TaskInvokable>)
        });
        let hash = key_hasher(&self.first.key_selector());
        let first = (self.first.stream(), Some(Partitioning::Hash), Some(hash));
        add_node(
            first,
            &self.second.stream,
            "Co-Process-Broadcast-Keyed",
            make,
        )
    }
}
