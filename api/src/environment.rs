//! The entry point of every job: configuration, sources, and `execute`.
//!
//! `execute` runs the job on the embedded local mini-cluster (a JobManager and N
//! TaskManagers in this process, their subtasks exchanging data over loopback TCP).

use crate::datastream::DataStream;
use crate::error::ApiError;
use crate::graph::builder::{build_job_graph, BuildSettings};
use crate::graph::stream_graph::{NodeKind, StreamGraph};
use crate::graph::type_ops::{typed_output, TypeOpsOf};
use crate::minicluster::LocalMiniCluster;
use crate::record::Record;
use crate::source::{CollectionSource, SourceContext, SourceFunction, SplitRestore};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use weir_runtime::{
    CheckpointConfig, CheckpointId, JobConfig, JobGraph, JobId, SavepointRestoreSettings,
    TaskInvokable, TaskManagerConfig,
};
use weir_state_backends::{StateBackendKind, DEFAULT_MAX_PARALLELISM};

/// Environment variable that overrides the default parallelism (set by `weir run --parallelism`).
pub const PARALLELISM_ENV: &str = "WEIR_PARALLELISM";

/// Settings of an environment; every field has a Flink-like default.
#[derive(Clone)]
pub struct EnvSettings {
    /// Default parallelism of new operators (default: `WEIR_PARALLELISM`, else the number of CPU cores).
    pub parallelism: u16,
    /// Default number of key groups (default 128).
    pub max_parallelism: u16,
    /// Whether forward-connected operators are chained into one task (default true).
    pub chaining: bool,
    /// Runtime settings (buffers, timeouts, watermark interval).
    pub job: JobConfig,
    /// TaskManagers of the local mini-cluster (default 2).
    pub taskmanagers: u32,
    /// Slots per TaskManager (default: enough for the job's highest parallelism).
    pub slots_per_taskmanager: Option<u32>,
    /// Settings of the local mini-cluster's TaskManagers (network buffer pool).
    pub taskmanager: TaskManagerConfig,
}

impl Default for EnvSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get().min(DEFAULT_MAX_PARALLELISM as usize) as u16)
            .unwrap_or(1);
        let parallelism = std::env::var(PARALLELISM_ENV)
            .ok()
            .and_then(|v| v.parse::<u16>().ok())
            .filter(|p| *p > 0)
            .unwrap_or(cores);
        Self {
            parallelism,
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            chaining: true,
            job: JobConfig::default(),
            taskmanagers: 2,
            slots_per_taskmanager: None,
            taskmanager: TaskManagerConfig::default(),
        }
    }
}

pub(crate) struct EnvInner {
    pub(crate) graph: StreamGraph,
    pub(crate) settings: EnvSettings,
}

/// Builds and runs a streaming job, as Flink's `StreamExecutionEnvironment`.
#[derive(Clone)]
pub struct StreamExecutionEnvironment {
    pub(crate) inner: Rc<RefCell<EnvInner>>,
}

/// What a finished job reports.
#[derive(Clone, Debug)]
pub struct JobExecutionResult {
    /// The job's id.
    pub job_id: JobId,
    /// The job's name.
    pub job_name: String,
    /// Wall time from deployment to the end of the last subtask.
    pub net_runtime: Duration,
    /// The checkpoints that completed while the job ran (duration, size, alignment).
    pub checkpoints: Vec<weir_jobmanager::CompletedCheckpoint>,
    /// The checkpoint or savepoint each restart after a failure restored from, in order
    /// (`None`: the restart started without state).
    pub restored_from: Vec<Option<CheckpointId>>,
}

impl Default for StreamExecutionEnvironment {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamExecutionEnvironment {
    /// Creates an environment with default settings.
    pub fn new() -> Self {
        Self::with_settings(EnvSettings::default())
    }

    /// Creates an environment with `settings`.
    pub fn with_settings(settings: EnvSettings) -> Self {
        Self {
            inner: Rc::new(RefCell::new(EnvInner {
                graph: StreamGraph::default(),
                settings,
            })),
        }
    }

    /// Returns a copy of the current settings.
    pub fn settings(&self) -> EnvSettings {
        self.inner.borrow().settings.clone()
    }

    /// Changes the settings of operators created from now on and of `execute`.
    pub fn configure(&self, f: impl FnOnce(&mut EnvSettings)) -> &Self {
        f(&mut self.inner.borrow_mut().settings);
        self
    }

    /// Sets the default parallelism.
    pub fn set_parallelism(&self, parallelism: u16) -> &Self {
        self.configure(|s| s.parallelism = parallelism)
    }

    /// Sets the default number of key groups.
    pub fn set_max_parallelism(&self, max_parallelism: u16) -> &Self {
        self.configure(|s| s.max_parallelism = max_parallelism)
    }

    /// Takes a checkpoint every `interval` into `dir`, an `object_store` URL such as
    /// `file:///var/weir/checkpoints` (`execution.checkpointing.interval`,
    /// `state.checkpoints.dir`); the other settings keep their defaults and can be changed
    /// through [`Self::configure`] (`s.job.checkpointing`).
    pub fn enable_checkpointing(&self, interval: Duration, dir: &str) -> &Self {
        self.configure(|s| s.job.checkpointing = Some(CheckpointConfig::new(interval, dir)))
    }

    /// Starts the job from a savepoint (`execution.savepoint.path`): operators get their
    /// state by `uid`; state of operators the job does not have fails the submission unless
    /// `settings.allow_non_restored_state`. The parallelism may differ from the savepoint's:
    /// keyed state is redistributed by key group, operator state round-robin.
    pub fn restore_from_savepoint(&self, settings: SavepointRestoreSettings) -> &Self {
        self.configure(|s| s.job.savepoint_restore = Some(settings))
    }

    /// Sets the network buffer timeout (zero flushes after every record).
    pub fn set_buffer_timeout(&self, timeout: Duration) -> &Self {
        self.configure(|s| s.job.buffer_timeout = timeout)
    }

    /// Sets how often watermark generators emit (zero: after every record).
    pub fn set_auto_watermark_interval(&self, interval: Duration) -> &Self {
        self.configure(|s| s.job.auto_watermark_interval = interval)
    }

    /// Turns operator chaining off for the whole job.
    pub fn disable_operator_chaining(&self) -> &Self {
        self.configure(|s| s.chaining = false)
    }

    /// Sets the number of TaskManagers of the local mini-cluster.
    pub fn set_local_taskmanagers(&self, n: u32) -> &Self {
        self.configure(|s| s.taskmanagers = n.max(1))
    }

    /// Sets the keyed state backend.
    pub fn set_state_backend(&self, kind: StateBackendKind) -> &Self {
        self.configure(|s| s.job.state_backend.kind = kind)
    }

    /// Creates a stream from a source function.
    pub fn add_source<T: Record, S: SourceFunction<T>>(
        &self,
        source: S,
        name: &str,
    ) -> DataStream<T> {
        let source = Arc::new(source);
        let mut inner = self.inner.borrow_mut();
        let parallelism = match source.max_parallelism() {
            Some(m) => inner.settings.parallelism.min(m),
            None => inner.settings.parallelism,
        };
        let batch = inner.settings.job.source_batch_size;
        let src_name = name.to_string();
        let make = Arc::new(
            move |ctx: &mut crate::graph::OperatorContext,
                  out: crate::graph::type_ops::AnyOutput,
                  names: Vec<String>|
                  -> Result<Box<dyn TaskInvokable>, weir_runtime::TaskError> {
                let out = typed_output::<T>(out, &ctx.name)?;
                let mut reader = source.create_reader(&SourceContext {
                    name: src_name.clone(),
                    subtask: ctx.subtask,
                    parallelism: ctx.parallelism,
                })?;
                if let Some(restored) = &ctx.restored {
                    let splits = match source.split_restore() {
                        SplitRestore::RoundRobin => {
                            restored.operator_list(&ctx.uid, ctx.subtask, ctx.parallelism)?
                        }
                        SplitRestore::Union => restored.union_list(&ctx.uid)?,
                    };
                    if let Some(splits) = splits {
                        let n = splits.len();
                        reader.restore_splits(splits)?;
                        tracing::info!(source = %ctx.name, subtask = ctx.subtask, checkpoint = restored.checkpoint(), splits = n, "source position restored");
                    }
                }
                Ok(Box::new(crate::graph::heads::SourceHead::new(
                    reader,
                    out,
                    names,
                    batch,
                    ctx.uid.clone(),
                )))
            },
        );
        let id = inner.graph.add_node(
            name,
            parallelism,
            NodeKind::Source(make),
            Arc::new(TypeOpsOf::<T>::new()),
            None,
            false,
        );
        drop(inner);
        DataStream::new(self.clone(), id)
    }

    /// Creates a bounded stream of `items` (parallelism 1, as Flink's `fromCollection`).
    pub fn from_collection<T: Record + Clone + Sync>(&self, items: Vec<T>) -> DataStream<T> {
        self.add_source(CollectionSource::new(items), "Collection Source")
            .set_parallelism(1)
    }

    /// Builds the job graph of everything defined so far (for inspection and tests).
    pub fn job_graph(&self, name: &str) -> Result<JobGraph, ApiError> {
        let inner = self.inner.borrow();
        let s = &inner.settings;
        build_job_graph(
            name,
            &inner.graph,
            &BuildSettings {
                max_parallelism: s.max_parallelism,
                chaining: s.chaining,
                config: s.job.clone(),
            },
        )
    }

    /// Runs the job and waits for it to end.
    pub fn execute(&self, name: &str) -> Result<JobExecutionResult, ApiError> {
        self.execute_async(name)?.wait()
    }

    /// Starts the job on a new local mini-cluster and returns at once with a client that
    /// takes savepoints of it, stops or cancels it, and waits for its result (as Flink's
    /// `executeAsync`).
    ///
    /// A program launched by `weir run` or by a TaskManager as a job worker does not
    /// return from here: it hands its graph to `weir run`, or runs its share of the job on
    /// the standalone cluster, and exits (see the `launch` module).
    pub fn execute_async(&self, name: &str) -> Result<crate::JobClient, ApiError> {
        crate::launch::run_if_launched(|| self.job_graph(name))?;
        let graph = self.job_graph(name)?;
        let settings = self.settings();
        let needed = graph
            .vertices
            .iter()
            .map(|v| v.parallelism as u32)
            .max()
            .unwrap_or(1);
        let slots = settings
            .slots_per_taskmanager
            .unwrap_or_else(|| needed.div_ceil(settings.taskmanagers));
        let cluster = LocalMiniCluster::start_with_config(
            settings.taskmanagers,
            slots,
            &settings.taskmanager,
        )?;
        let savepoint_wait = settings
            .job
            .checkpointing
            .as_ref()
            .map_or(Duration::ZERO, |c| c.timeout * 2 + Duration::from_secs(60));
        let (id, name, handle) = cluster.submit(graph)?;
        Ok(crate::JobClient::new(
            cluster,
            id,
            name,
            handle,
            savepoint_wait,
        ))
    }
}
