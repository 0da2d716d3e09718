//! `KeyedStream<K, T>`: a stream partitioned by key, with keyed state and timers.
//!
//! Records reach the subtask that owns their key group (hash partitioning on the key's
//! deterministic hash), so all records of one key meet in one operator instance.

use crate::datastream::DataStream;
use crate::functions::KeyedProcessFunction;
use crate::graph::type_ops::AnyKeyHash;
use crate::graph::OperatorContext;
use crate::operators::keyed_process::{KeyFn, KeyedProcessOperator};
use crate::operators::rolling::RollingAggregate;
use crate::record::Record;
use std::sync::Arc;
use weir_runtime::{Output, TaskError};
use weir_state_backends::{
    key_hash, AggregateFunction, KeyedStateBackend, ReduceAggregate, StateKey, StateValue,
};

/// A stream whose records are grouped by a key of type `K`.
pub struct KeyedStream<K, T> {
    pub(crate) stream: DataStream<T>,
    pub(crate) key_fn: KeyFn<T, K>,
}

impl<K, T> Clone for KeyedStream<K, T> {
    fn clone(&self) -> Self {
        Self {
            stream: self.stream.clone(),
            key_fn: self.key_fn.clone(),
        }
    }
}

impl<T: Record> DataStream<T> {
    /// Partitions the stream by the key `f` extracts.
    pub fn key_by<K: StateKey + Send + Sync, F: Fn(&T) -> K + Send + Sync + 'static>(
        &self,
        f: F,
    ) -> KeyedStream<K, T> {
        KeyedStream {
            stream: self.clone(),
            key_fn: Arc::new(f),
        }
    }
}

/// Returns the erased hash function of hash partitioning by `key_fn`.
pub(crate) fn key_hasher<K: StateKey, T: 'static>(key_fn: &KeyFn<T, K>) -> AnyKeyHash {
    let k = key_fn.clone();
    let h: crate::graph::type_ops::KeyHashFn<T> = Arc::new(move |t: &T| key_hash(&k(t)));
    Arc::new(h)
}

/// Creates the keyed state backend of one keyed operator instance.
pub(crate) fn keyed_backend<K: StateKey>(
    ctx: &OperatorContext,
) -> Result<KeyedStateBackend<K>, TaskError> {
    let owner = weir_state_backends::BackendOwner {
        job: ctx.job.0,
        slot: ctx.subtask,
        operator: ctx.uid.clone(),
    };
    KeyedStateBackend::open(
        &ctx.config.state_backend,
        &owner,
        ctx.key_group_range,
        ctx.max_parallelism,
    )
    .map_err(|e| state_error(&ctx.name, e))
}

/// Opens a keyed operator's backend and timer service and restores both after a restart.
pub(crate) fn open_keyed<K: StateKey, N: weir_state_backends::Namespace>(
    ctx: &OperatorContext,
) -> Result<
    (
        KeyedStateBackend<K>,
        weir_state_backends::TimerService<K, N>,
    ),
    TaskError,
> {
    let backend = keyed_backend::<K>(ctx)?;
    let mut timers = backend
        .timer_service()
        .map_err(|e| TaskError::user(&ctx.name, e.to_string()))?;
    restore_keyed(ctx, &backend, Some(&mut timers))?;
    Ok((backend, timers))
}

/// After a restart, loads the keyed state (and timers) the checkpoint holds for this
/// operator's `uid` and key groups into `backend` (and `timers`).
pub(crate) fn restore_keyed<K: StateKey, N: weir_state_backends::Namespace>(
    ctx: &OperatorContext,
    backend: &KeyedStateBackend<K>,
    timers: Option<&mut weir_state_backends::TimerService<K, N>>,
) -> Result<(), TaskError> {
    let Some(restored) = &ctx.restored else {
        return Ok(());
    };
    let local_dir = backend.local_dir();
    let state = restored.keyed(&ctx.uid, ctx.key_group_range, local_dir.as_deref())?;
    if state.is_empty() {
        return Ok(());
    }
    backend
        .restore_native(state.native)
        .map_err(|e| state_error(&ctx.name, e))?;
    if !state.full.is_empty() {
        backend
            .restore(&state.full)
            .map_err(|e| state_error(&ctx.name, e))?;
    }
    if let Some(t) = timers {
        t.restore(&state.timers)
            .map_err(|e| state_error(&ctx.name, e))?;
    }
    tracing::info!(operator = %ctx.name, uid = %ctx.uid, checkpoint = restored.checkpoint(), "keyed state restored");
    Ok(())
}

/// Appends the snapshot of operator `uid`'s keyed state (and `timers`, if it has any) for
/// `checkpoint` to `state`: the counterpart of [`restore_keyed`].
pub(crate) fn snapshot_keyed<K: StateKey, N: weir_state_backends::Namespace>(
    (name, uid): (&str, &str),
    backend: &KeyedStateBackend<K>,
    timers: Option<&weir_state_backends::TimerService<K, N>>,
    (checkpoint, options): (
        weir_runtime::CheckpointId,
        weir_runtime::element::BarrierOptions,
    ),
    state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
) -> Result<(), TaskError> {
    let mut keyed = backend
        .snapshot_for_checkpoint(checkpoint, options.savepoint)
        .map_err(|e| state_error(name, e))?;
    // Timers in the backend's database travel with its snapshot, unless it is in memory.
    let timers = match timers {
        Some(t) => t
            .snapshot_beside(&mut keyed)
            .map_err(|e| state_error(name, e))?,
        None => None,
    };
    state.push(weir_runtime::checkpoint::OperatorSnapshot::keyed(
        uid, keyed, timers,
    )?);
    Ok(())
}

fn state_error(name: &str, e: weir_state_backends::StateError) -> TaskError {
    TaskError::user(name, e.to_string())
}

impl<K: StateKey + Send + Sync, T: Record> KeyedStream<K, T> {
    /// Returns the underlying (not yet partitioned) stream.
    pub fn stream(&self) -> &DataStream<T> {
        &self.stream
    }

    /// Returns the key selector.
    pub fn key_selector(&self) -> KeyFn<T, K> {
        self.key_fn.clone()
    }

    /// Adds a keyed one-input operator behind a hash exchange.
    pub(crate) fn add_keyed<O: Record>(
        &self,
        name: &str,
        make: impl Fn(&mut OperatorContext, Box<dyn Output<O>>) -> Result<Box<dyn Output<T>>, TaskError>
            + Send
            + Sync
            + 'static,
    ) -> DataStream<O> {
        self.stream
            .add_one_input(name, Some(key_hasher(&self.key_fn)), false, make)
    }

    /// Writes every record with `sink`, each key's records reaching the same sink subtask.
    pub fn add_sink<S: crate::sink::SinkFunction<T>>(&self, sink: S) -> crate::DataStreamSink {
        self.stream
            .add_sink_partitioned(sink, Some(key_hasher(&self.key_fn)))
    }

    /// Processes every record with keyed state and timers.
    pub fn process<O: Record, F: KeyedProcessFunction<K, T, O>>(&self, f: F) -> DataStream<O> {
        let key_fn = self.key_fn.clone();
        self.add_keyed("KeyedProcess", move |ctx, out| {
            let (backend, timers) = open_keyed::<K, _>(ctx)?;
            let sides = ctx.take_side_outputs();
            Ok(Box::new(KeyedProcessOperator::new(
                f.clone(),
                key_fn.clone(),
                backend,
                timers,
                out,
                sides,
                ctx.name.clone(),
                ctx.uid.clone(),
                ctx.index,
                ctx.subtask,
                ctx.parallelism,
            )?))
        })
        .emitting_side_outputs()
    }

    /// Combines the records of each key with `f`, emitting the running result per record.
    pub fn reduce<F: Fn(T, T) -> T + Send + Sync + 'static>(&self, f: F) -> DataStream<T>
    where
        T: StateValue,
    {
        self.aggregate(ReduceAggregate(f)).name("Keyed Reduce")
    }

    /// Aggregates the records of each key with `f`, emitting the running result per record.
    pub fn aggregate<ACC: StateValue, O: Record, A: AggregateFunction<T, ACC, O>>(
        &self,
        f: A,
    ) -> DataStream<O> {
        let key_fn = self.key_fn.clone();
        let f = Arc::new(f);
        self.add_keyed("Keyed Aggregate", move |ctx, out| {
            let backend = keyed_backend::<K>(ctx)?;
            restore_keyed::<K, weir_state_backends::VoidNamespace>(ctx, &backend, None)?;
            let state = backend
                .value_state("aggregate")
                .map_err(|e| state_error(&ctx.name, e))?;
            Ok(Box::new(RollingAggregate {
                key_fn: key_fn.clone(),
                backend,
                state,
                f: f.clone(),
                out,
                name: ctx.name.clone(),
                uid: ctx.uid.clone(),
                index: ctx.index,
            }))
        })
    }
}
