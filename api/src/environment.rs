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
use weir_runtime::config::{Configuration, JobSettings};
use weir_runtime::{
    CheckpointConfig, CheckpointId, ConfigError, JobConfig, JobGraph, JobId,
    SavepointRestoreSettings, TaskInvokable, TaskManagerConfig,
};
use weir_state_backends::{StateBackendKind, DEFAULT_MAX_PARALLELISM};

/// Settings of an environment; every field has a Flink-like default.
#[derive(Clone)]
pub struct EnvSettings {
    /// Default parallelism of new operators (`parallelism.default`, else the number of CPU
    /// cores).
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
    /// The checkpoint settings [`StreamExecutionEnvironment::enable_checkpointing`] starts
    /// from (the configured `execution.checkpointing.*` and `state.*` keys).
    pub checkpoint_defaults: CheckpointConfig,
}

impl EnvSettings {
    /// The defaults with every job key of `c` applied (see
    /// [`weir_runtime::config::keys::JOB`]).
    pub fn from_configuration(c: &Configuration) -> Result<Self, ConfigError> {
        let js = JobSettings::from_configuration(c)?;
        let mut s = Self::default();
        s.max_parallelism = js.max_parallelism;
        s.parallelism = js
            .parallelism
            .unwrap_or(s.parallelism.min(js.max_parallelism));
        s.job = js.job;
        s.checkpoint_defaults = js.checkpoint_defaults;
        Ok(s)
    }
}

impl Default for EnvSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get().min(DEFAULT_MAX_PARALLELISM as usize) as u16)
            .unwrap_or(1);
        Self {
            parallelism: cores,
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            chaining: true,
            job: JobConfig::default(),
            taskmanagers: 2,
            slots_per_taskmanager: None,
            taskmanager: TaskManagerConfig::default(),
            checkpoint_defaults: CheckpointConfig::new(Duration::ZERO, ""),
        }
    }
}

/// The settings of a job program's configuration with `properties` (its `-D` flags) on top;
/// also installs the configuration's S3 settings, if it sets any, for the stores this
/// process opens (settings installed before stay otherwise).
fn configured(properties: &[String]) -> Result<EnvSettings, ConfigError> {
    let c = Configuration::for_job_program(properties)?;
    let s3 = weir_runtime::checkpoint::S3Settings::from_configuration(&c)?;
    if !s3.is_empty() {
        s3.install();
    }
    EnvSettings::from_configuration(&c)
}

pub(crate) struct EnvInner {
    pub(crate) graph: StreamGraph,
    pub(crate) settings: EnvSettings,
    /// Why the configuration could not be read, reported when the job is built.
    pub(crate) config_error: Option<ConfigError>,
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
    /// Creates an environment with the settings configuration gives: `weir.toml` (in
    /// `$WEIR_CONF_DIR` or the working directory) and `WEIR_*` variables, or the job
    /// configuration `weir run` handed the program. Calls on the environment override
    /// them, as in Flink. A configuration that cannot be read fails the job when it is
    /// built, naming the key.
    pub fn new() -> Self {
        match configured(&[]) {
            Ok(settings) => Self::with_settings(settings),
            Err(e) => {
                let env = Self::with_settings(EnvSettings::default());
                env.inner.borrow_mut().config_error = Some(e);
                env
            }
        }
    }

    /// As [`Self::new`], with `properties` (`key=value`, the program's own `-D` flags)
    /// overriding every other source.
    pub fn with_properties(properties: &[String]) -> Result<Self, ApiError> {
        Ok(Self::with_settings(configured(properties)?))
    }

    /// Creates an environment with `settings` (configuration is not read).
    pub fn with_settings(settings: EnvSettings) -> Self {
        Self {
            inner: Rc::new(RefCell::new(EnvInner {
                graph: StreamGraph::default(),
                settings,
                config_error: None,
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
    /// `state.checkpoints.dir`); the other settings keep their configured values and can be
    /// changed through [`Self::configure`] (`s.job.checkpointing`).
    pub fn enable_checkpointing(&self, interval: Duration, dir: &str) -> &Self {
        self.configure(|s| {
            s.job.checkpointing = Some(CheckpointConfig {
                interval,
                dir: dir.to_string(),
                ..s.checkpoint_defaults.clone()
            })
        })
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
                    ctx.metrics.clone(),
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
        if let Some(e) = &inner.config_error {
            return Err(ApiError::Config(e.clone()));
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_overrides_configuration_and_keeps_the_keys_it_does_not_set() {
        let env = StreamExecutionEnvironment::with_properties(&[
            "parallelism.default=3".into(),
            "execution.checkpointing.timeout=7 s".into(),
            "execution.checkpointing.interval=1 s".into(),
            "state.checkpoints.dir=file:///tmp/configured".into(),
        ])
        .unwrap();
        let s = env.settings();
        assert_eq!(s.parallelism, 3);
        let ck = s.job.checkpointing.unwrap();
        assert_eq!(
            (ck.interval, ck.timeout),
            (Duration::from_secs(1), Duration::from_secs(7))
        );
        env.set_parallelism(5)
            .enable_checkpointing(Duration::from_secs(2), "file:///tmp/code");
        let s = env.settings();
        assert_eq!(s.parallelism, 5);
        let ck = s.job.checkpointing.unwrap();
        assert_eq!(ck.interval, Duration::from_secs(2));
        assert_eq!(ck.dir, "file:///tmp/code");
        assert_eq!(
            ck.timeout,
            Duration::from_secs(7),
            "the configured timeout stays"
        );
    }

    #[test]
    fn a_bad_key_fails_naming_it() {
        let err =
            StreamExecutionEnvironment::with_properties(&["pipeline.max-parallelism=0".into()])
                .err()
                .unwrap()
                .to_string();
        assert!(
            err.contains("pipeline.max-parallelism = '0' (from -D pipeline.max-parallelism)"),
            "{err}"
        );
    }
}
