//! Typed operations on a stream of `T`, erased so the graph can hold streams of any type.
//!
//! Each stream node stores a [`TypeOps`] for its output type. When a task builds its chain,
//! these create the typed pieces that only the node's type knows how to make: network
//! outputs (serialize and pick a channel), fan-outs to several consumers, and the
//! deserializing head of a task whose input has this type.
//!
//! Invariant: every `AnyOutput` made for a node holds a `Box<dyn Output<T>>` of that node's
//! output type; downcasts that fail are bugs in graph construction, reported as errors.

use super::heads::OneInputHead;
use crate::record::Record;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;
use weir_runtime::exchange::{PartitionWriter, Partitioner, Route};
use weir_runtime::{Lifecycle, Output, Partitioning, TaskError, TaskInvokable, Timestamp};

/// A `Box<dyn Output<T>>` whose `T` is known only to the node that made it.
pub type AnyOutput = Box<dyn Any>;

/// Computes the key hash of a record for hash partitioning.
pub type KeyHashFn<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;

/// An erased [`KeyHashFn`].
pub type AnyKeyHash = Arc<dyn Any + Send + Sync>;

/// Downcasts an erased output to the typed one.
pub fn typed_output<T: 'static>(
    out: AnyOutput,
    what: &str,
) -> Result<Box<dyn Output<T>>, TaskError> {
    out.downcast::<Box<dyn Output<T>>>()
        .map(|b| *b)
        .map_err(|_| {
            TaskError::Configuration(format!("type mismatch building the chain at {what}"))
        })
}

/// Erases a typed output.
pub fn erase<T: 'static>(out: Box<dyn Output<T>>) -> AnyOutput {
    Box::new(out)
}

/// How one network output picks channels.
pub struct NetworkSpec {
    /// The writer of the edge.
    pub writer: PartitionWriter,
    /// The partitioning of the edge.
    pub partitioning: Partitioning,
    /// For hash partitioning: the key hash function.
    pub key_hash: Option<AnyKeyHash>,
    /// Number of key groups of the consumer.
    pub max_parallelism: u16,
    /// This producer's subtask index (for forward edges).
    pub subtask: u16,
}

/// Type-erased factory of typed chain pieces for records of one type.
pub trait TypeOps: Send + Sync {
    /// Builds the output of a node: an optional chained consumer plus network edges.
    fn fan_out(
        &self,
        chained: Option<AnyOutput>,
        network: Vec<NetworkSpec>,
    ) -> Result<AnyOutput, TaskError>;

    /// Wraps an erased output of this type as a side-output slot.
    fn side_slot(&self, out: AnyOutput) -> Result<Box<dyn crate::functions::SideSlot>, TaskError>;

    /// Builds the head of a task whose input records have this type.
    fn input_head(
        &self,
        op: AnyOutput,
        names: Vec<String>,
        operator: String,
    ) -> Result<Box<dyn TaskInvokable>, TaskError>;
}

/// The [`TypeOps`] of `T`.
pub struct TypeOpsOf<T>(PhantomData<fn() -> T>);

impl<T> TypeOpsOf<T> {
    /// Returns the ops for `T`.
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<T: Record> TypeOps for TypeOpsOf<T> {
    fn fan_out(
        &self,
        chained: Option<AnyOutput>,
        network: Vec<NetworkSpec>,
    ) -> Result<AnyOutput, TaskError> {
        let chained = chained
            .map(|c| typed_output::<T>(c, "chained output"))
            .transpose()?;
        let mut nets = Vec::with_capacity(network.len());
        for n in network {
            let key_hash = match n.key_hash {
                Some(h) => Some(
                    h.downcast::<KeyHashFn<T>>()
                        .map_err(|_| TaskError::Configuration("key selector type mismatch".into()))?
                        .as_ref()
                        .clone(),
                ),
                None => None,
            };
            let channels = n.writer.num_channels();
            nets.push(NetworkOutput::<T> {
                writer: n.writer,
                partitioner: Partitioner::new(
                    n.partitioning,
                    channels,
                    n.max_parallelism,
                    n.subtask as usize,
                ),
                key_hash,
            });
        }
        let out: Box<dyn Output<T>> = match (chained, nets.len()) {
            (Some(c), 0) => c,
            (None, 1) => Box::new(nets.pop().expect("one")),
            (chained, _) => Box::new(FanOut { nets, chained }),
        };
        Ok(erase(out))
    }

    fn side_slot(&self, out: AnyOutput) -> Result<Box<dyn crate::functions::SideSlot>, TaskError> {
        Ok(Box::new(crate::functions::Slot(typed_output::<T>(
            out,
            "side output",
        )?)))
    }

    fn input_head(
        &self,
        op: AnyOutput,
        names: Vec<String>,
        operator: String,
    ) -> Result<Box<dyn TaskInvokable>, TaskError> {
        let op = typed_output::<T>(op, "task head")?;
        Ok(Box::new(OneInputHead::<T>::new(op, names, operator)))
    }
}

/// Serializes records into one output edge.
pub struct NetworkOutput<T> {
    writer: PartitionWriter,
    partitioner: Partitioner,
    key_hash: Option<KeyHashFn<T>>,
}

impl<T: Record> NetworkOutput<T> {
    #[inline]
    fn write(&mut self, value: &T, ts: Timestamp) -> Result<(), TaskError> {
        let key_hash = &self.key_hash;
        let route = self
            .partitioner
            .route(|| (key_hash.as_ref().expect("hash edge has a key"))(value));
        match route {
            Route::Channel(channel) => Ok(self.writer.write_record(channel, value, ts)?),
            Route::Broadcast => Ok(self.writer.broadcast_record(value, ts)?),
        }
    }
}

impl<T: Record> Output<T> for NetworkOutput<T> {
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        self.write(&value, ts)
    }
}

/// The end of a chain: watermarks, idleness, barriers, the end of data and the end of the
/// partition go out as events to every channel; there is nothing downstream to forward the
/// rest to.
impl<T: Record> Lifecycle for NetworkOutput<T> {
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        Ok(self
            .writer
            .broadcast_event(&weir_runtime::element::Element::Watermark(wm))?)
    }
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        Ok(self
            .writer
            .broadcast_event(&weir_runtime::element::Element::Idle(idle))?)
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        Ok(self.writer.flush()?)
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        self.writer
            .broadcast_event(&weir_runtime::element::Element::EndOfData)?;
        Ok(self.writer.flush()?)
    }
    fn close(&mut self) -> Result<(), TaskError> {
        Ok(self.writer.finish()?)
    }
    fn checkpoint(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        // The barrier goes out at once: the checkpoint waits for it downstream. Unaligned,
        // it overtakes the queued buffers, which the checkpoint stores.
        if let Some(data) = self.writer.barrier(checkpoint, options)? {
            let uid = self.writer.in_flight_uid();
            state.push(weir_runtime::checkpoint::OperatorSnapshot::channels(
                uid, &data,
            )?);
        }
        Ok(())
    }
}

/// Sends each record to several network edges (by reference) and one chained consumer
/// (by value, last).
pub struct FanOut<T> {
    nets: Vec<NetworkOutput<T>>,
    chained: Option<Box<dyn Output<T>>>,
}

impl<T: Record> Output<T> for FanOut<T> {
    #[inline]
    fn emit(&mut self, value: T, ts: Timestamp) -> Result<(), TaskError> {
        for n in &mut self.nets {
            n.write(&value, ts)?;
        }
        match &mut self.chained {
            Some(c) => c.emit(value, ts),
            None => Ok(()),
        }
    }
}

/// Overrides every call: each network edge and the chained consumer get it.
impl<T: Record> Lifecycle for FanOut<T> {
    fn watermark(&mut self, wm: Timestamp) -> Result<(), TaskError> {
        self.each(|o| o.watermark(wm))
    }
    fn idle(&mut self, idle: bool) -> Result<(), TaskError> {
        self.each(|o| o.idle(idle))
    }
    fn processing_time(&mut self, now: Timestamp) -> Result<(), TaskError> {
        self.each(|o| o.processing_time(now))
    }
    fn next_processing_time(&mut self) -> Option<Timestamp> {
        self.chained.as_mut().and_then(|c| c.next_processing_time())
    }
    fn flush(&mut self) -> Result<(), TaskError> {
        self.each(|o| o.flush())
    }
    fn end_input(&mut self) -> Result<(), TaskError> {
        self.each(|o| o.end_input())
    }
    fn close(&mut self) -> Result<(), TaskError> {
        self.each(|o| o.close())
    }
    fn checkpoint(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
        options: weir_runtime::element::BarrierOptions,
        state: &mut Vec<weir_runtime::checkpoint::OperatorSnapshot>,
    ) -> Result<(), TaskError> {
        for n in &mut self.nets {
            n.checkpoint(checkpoint, options, state)?;
        }
        match &mut self.chained {
            Some(c) => c.checkpoint(checkpoint, options, state),
            None => Ok(()),
        }
    }
    fn checkpoint_complete(
        &mut self,
        checkpoint: weir_runtime::CheckpointId,
    ) -> Result<(), TaskError> {
        for n in &mut self.nets {
            n.checkpoint_complete(checkpoint)?;
        }
        match &mut self.chained {
            Some(c) => c.checkpoint_complete(checkpoint),
            None => Ok(()),
        }
    }
}

impl<T: Record> FanOut<T> {
    fn each(
        &mut self,
        mut f: impl FnMut(&mut dyn Lifecycle) -> Result<(), TaskError>,
    ) -> Result<(), TaskError> {
        for n in &mut self.nets {
            f(n)?;
        }
        if let Some(c) = &mut self.chained {
            f(&mut **c)?;
        }
        Ok(())
    }
}
