//! The Weir DataStream API.
//!
//! A job is a Rust program: it creates a [`StreamExecutionEnvironment`], defines sources,
//! transformations and sinks on [`DataStream`]s, and calls
//! [`StreamExecutionEnvironment::execute`]. Run directly, the job runs on the embedded local
//! mini-cluster.
//!
//! ```no_run
//! use weir_api::StreamExecutionEnvironment;
//! let env = StreamExecutionEnvironment::new();
//! let out = env.from_collection(vec![1u64, 2, 3]).map(|x| x * 2).collect();
//! env.execute("double").unwrap();
//! let mut got = out.take();
//! got.sort();
//! assert_eq!(got, vec![2, 4, 6]);
//! ```

mod datastream;
mod environment;
mod error;
mod graph;
mod minicluster;
mod operators;
mod record;
pub mod sink;
pub mod source;

pub use datastream::{DataStream, DataStreamSink};
pub use environment::{EnvSettings, JobExecutionResult, StreamExecutionEnvironment};
pub use error::ApiError;
pub use graph::{OperatorContext, TwoInputOperator};
pub use minicluster::LocalMiniCluster;
pub use record::Record;
pub use weir_runtime::{Timestamp, MAX_WATERMARK, NO_TIMESTAMP};
pub use weir_state_backends::StateBackendKind;
