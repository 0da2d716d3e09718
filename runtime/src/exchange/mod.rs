//! The data exchange between tasks: Flink-style credit-based network buffers.
//!
//! A producer task picks each record's channel with a [`Partitioner`] and writes through a
//! [`PartitionWriter`] into buffers of its own
//! [`BufferPool`], one [`Subpartition`] per consumer channel; a consumer task reads all its
//! channels from one [`InputGate`] queue and grants credits per channel
//! ([`InputCredits`], announced in batches by [`GateCredits`]). Channels inside a
//! TaskManager hand buffers over in memory; channels between TaskManagers share one TCP
//! connection per pair of TaskManagers (producer side [`ConnectionManager`], consumer side
//! [`DataServer`], frames in [`protocol`]). Every pool is reserved from the TaskManager's
//! [`NetworkBufferPool`], so the memory of the data plane is bounded whatever the input
//! rate.

mod buffer;
mod connection;
mod credit;
pub mod debloat;
mod gate;
mod partitioner;
pub mod protocol;
mod registry;
mod server;
mod server_handshake;
mod socket;
mod subpartition;
mod transport;
mod valve;
mod writer;

pub use buffer::{
    segment_capacity, Buffer, BufferPool, NetworkBufferPool, PoolStats, FLAG_BARRIER,
    FLAG_CONTINUES, FLAG_END, SPAN_SLACK,
};
pub use connection::{ConnectionError, ConnectionManager, WRITE_WAIT_SLICE};
pub use credit::{CreditViolation, GateCredits, InputCredits};
pub use gate::{CreditSink, GateSender, InputGate, InputMessage};
pub use partitioner::{Partitioner, Route};
pub use registry::{GateEntry, GateRegistry, CANCEL_CHECK};
pub use server::{DataServer, RemoteCredit};
pub use subpartition::{LocalChannel, Push, PushError, Subpartition};
pub use valve::{ValveOutput, WatermarkValve};
pub use writer::PartitionWriter;

/// The gate address the exchange's unit tests use.
#[cfg(test)]
pub(crate) fn test_gate_address() -> crate::types::GateAddress {
    crate::types::GateAddress {
        subtask: crate::types::SubtaskId {
            job: crate::types::JobId(1),
            vertex: 2,
            subtask: 0,
        },
        gate: 0,
        attempt: 0,
    }
}
