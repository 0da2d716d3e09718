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

pub mod broadcast;
mod connected;
mod datastream;
mod datastream_sinks;
mod environment;
mod environment_sources;
mod error;
pub mod functions;
mod graph;
mod job_client;
pub mod join;
mod keyed_stream;
pub mod launch;
mod minicluster;
mod operators;
mod record;
pub mod sink;
pub mod source;
pub mod time;
pub mod window;

pub use connected::{ConnectWith, ConnectedStreams};
pub use datastream::{DataStream, DataStreamSink};
pub use environment::{EnvSettings, JobExecutionResult, StreamExecutionEnvironment};
pub use error::ApiError;
pub use functions::{
    CoProcessFunction, Context, FnResult, KeyedContext, KeyedProcessFunction, OutputTag,
    ProcessFunction, RuntimeContext,
};
pub use graph::{OperatorContext, TwoInputOperator};
pub use job_client::JobClient;
pub use keyed_stream::KeyedStream;
pub use minicluster::LocalMiniCluster;
pub use record::Record;
pub use sink::FileSink;
pub use source::{BadRecordPolicy, CsvSource, GeneratorSource};
/// Checkpoint storage and metadata, as jobs write them.
pub use weir_runtime::checkpoint;
/// How a job program logs: text or JSON lines, as the `weir` process that started it.
pub use weir_runtime::logging;
/// Task metrics, as the TaskManagers publish them.
pub use weir_runtime::metrics;
pub use weir_runtime::{
    BufferDebloatConfig, CheckpointConfig, CheckpointId, CheckpointingMode, JobConfig, Lifecycle,
    Output, Partitioning, RestartStrategy, SavepointRestoreSettings, SourceStep, TaskError,
    TaskManagerConfig, Timestamp, MAX_WATERMARK, NO_TIMESTAMP,
};
pub use weir_state_backends::{
    AggregateFunction, AggregatingState, KeyedState, ListState, MapState, ReducingState,
    RocksDbOptions, StateBackendConfig, StateBackendKind, StateKey, StateTtlConfig,
    StateTtlConfigBuilder, StateValue, StateVisibility, SystemTimeProvider, TtlAggregatingState,
    TtlListState, TtlMapState, TtlReducingState, TtlTimeProvider, TtlValueState, UpdateType,
    ValueState, VoidNamespace,
};
