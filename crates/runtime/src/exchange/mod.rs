//! The data exchange between tasks: partition writers on the producer side, input gates on
//! the consumer side, and the channels between them (in memory inside a TaskManager, TCP
//! between TaskManagers).
//!
//! Every exchange goes through [`PartitionWriter`] and [`InputGate`]; the transport of a
//! channel is hidden behind [`ChannelSink`], which is where the credit-based network stack
//! plugs in.

mod gate;
mod registry;
mod remote;
mod valve;
mod writer;

pub use gate::{InputGate, InputMessage};
pub use registry::{GateRegistry, CANCEL_CHECK};
pub use remote::{
    DataServer, RemoteChannel, HANDSHAKE_MAGIC, MAX_FRAME_BYTES, PROTOCOL_VERSION, WRITE_WAIT_SLICE,
};
pub use valve::{ValveOutput, WatermarkValve};
pub use writer::{ChannelSink, PartitionWriter};
