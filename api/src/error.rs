//! Errors of building and executing jobs.

use thiserror::Error;

/// An error from the DataStream API.
#[derive(Debug, Error)]
pub enum ApiError {
    /// The job graph is not runnable (found before anything runs).
    #[error("invalid job: {0}")]
    InvalidGraph(String),
    /// The job ran and failed; the message names the operator, subtask and cause.
    #[error("job '{job}' failed: {message}")]
    JobFailed {
        /// Job name.
        job: String,
        /// The first failure.
        message: String,
    },
    /// A savepoint could not be taken, or the job cannot start from the one it names.
    #[error("{0}")]
    Savepoint(String),
    /// The cluster could not run the job.
    #[error("cluster error: {0}")]
    Cluster(String),
    /// A configuration key (from `weir.toml`, a `WEIR_*` variable or `-D`) is unusable.
    #[error("configuration: {0}")]
    Config(#[from] weir_runtime::ConfigError),
    /// An input or output path is unusable.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}
