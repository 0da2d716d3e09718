//! A leader's high-availability services (Flink's `HighAvailabilityServices` as one
//! leader uses them): its ZooKeeper session, the `high-availability.storageDir` of its
//! cluster, and fenced writes.
//!
//! Layout, in ZooKeeper under the cluster's path and in storage under
//! `<storageDir>/<cluster-id>`:
//! - `jobgraphs/<job-id>` (ZooKeeper): a pointer to the stored submission `jobs/<job-id>`
//!   (storage), see `job_store`;
//! - `jobresults/<job-id>` (ZooKeeper): how a job ended, see `job_store`;
//! - `checkpoints/<job-id>/counter` and `checkpoints/<job-id>/latest` (ZooKeeper): the
//!   next checkpoint id no leader handed out and the newest checkpoint recorded complete,
//!   see `checkpoint_record`;
//! - `artifacts/` (storage, a local directory): the job programs, by digest.
//!
//! Every znode's data is `weir_runtime::ha::znode`'s JSON with a `format` field.
//!
//! Invariants: every write is one ZooKeeper multi-op whose first operation checks this
//! leader's latch znode, so a deposed leader (its latch went with its session) writes
//! nothing; every call waits at most the connection timeout.

use super::LeaderElection;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use weir_runtime::checkpoint::CheckpointStorage;
use weir_runtime::ha::zk::{Acls, Client, CreateMode, Error as ZkError, MultiWriteResult};
use weir_runtime::ha::znode::decode;
use weir_runtime::ha::{HaConfig, HaError};

/// One write of a fenced multi-op.
pub(crate) enum Write<'a> {
    /// Create a persistent znode (its parents must exist).
    Create(&'a str, Vec<u8>),
    /// Replace a znode's data, creating nothing.
    Set(&'a str, Vec<u8>),
    /// Delete a znode (it must exist).
    Delete(&'a str),
}

/// The high-availability services of the JobManager that leads.
pub struct HaServices {
    client: Client,
    runtime: tokio::runtime::Handle,
    storage: CheckpointStorage,
    /// This leader's latch znode, checked by every write.
    latch: String,
    /// Its epoch (the latch's sequence).
    epoch: u64,
    timeout: Duration,
}

impl std::fmt::Debug for HaServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HaServices(epoch {}, {})",
            self.epoch,
            self.storage.url()
        )
    }
}

impl HaServices {
    /// The services of `election`'s leader for the cluster of `config`, whose session runs
    /// on `runtime`. Opens the storage directory and checks that it is writable; creates
    /// the parent znodes.
    pub fn new(
        election: &LeaderElection,
        config: &HaConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Self, HaError> {
        let url = format!(
            "{}/{}",
            config.storage_dir.trim_end_matches('/'),
            config.cluster_id
        );
        let storage = CheckpointStorage::open(&url).map_err(|e| HaError::Storage {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let services = Self {
            client: election.client().clone(),
            runtime,
            storage,
            latch: election.latch_path().to_string(),
            epoch: election.epoch(),
            timeout: config.connection_timeout,
        };
        services.probe_storage()?;
        for dir in [
            super::job_store::JOB_GRAPHS,
            super::job_store::JOB_RESULTS,
            super::checkpoint_record::CHECKPOINTS,
        ] {
            let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
            services
                .call(services.client.mkdir(dir, &options))
                .map_err(|e| HaError::request("create", dir, e))?;
        }
        Ok(services)
    }

    /// Writes and removes a probe file, so an unwritable directory fails the start.
    fn probe_storage(&self) -> Result<(), HaError> {
        let probe = format!(".probe-{}", self.epoch);
        let unwritable = |e: weir_runtime::checkpoint::StorageError| HaError::Storage {
            url: self.storage.url().to_string(),
            reason: format!("not writable: {e}"),
        };
        self.storage
            .write_file(&probe, &self.epoch)
            .map_err(unwritable)?;
        self.storage.delete_file(&probe).map_err(unwritable)
    }

    /// This leader's epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The storage under `<storageDir>/<cluster-id>`.
    pub fn storage(&self) -> &CheckpointStorage {
        &self.storage
    }

    /// Where job artifacts are stored: `artifacts/` in the storage directory, which must
    /// be a `file://` URL for them.
    pub fn artifacts_dir(&self) -> Result<PathBuf, HaError> {
        let dir = self.storage.local_root().ok_or_else(|| HaError::Storage {
            url: self.storage.url().to_string(),
            reason: "job artifacts need a file:// storage directory".into(),
        })?;
        Ok(dir.join("artifacts"))
    }

    /// Wraps a storage error on `file` (relative to the storage directory).
    pub(crate) fn storage_error(
        &self,
        file: &str,
    ) -> impl Fn(weir_runtime::checkpoint::StorageError) -> HaError + '_ {
        let url = self.storage.file_url(file);
        move |e| HaError::Storage {
            url: url.clone(),
            reason: e.to_string(),
        }
    }

    /// Runs `request` (`what` on `path`) on the session's runtime, waiting at most the
    /// connection timeout. Must not be called from inside an asynchronous task.
    pub(crate) fn call<T>(
        &self,
        request: impl Future<Output = Result<T, ZkError>>,
    ) -> Result<T, ZkError> {
        self.runtime
            .block_on(async { tokio::time::timeout(self.timeout, request).await })
            .unwrap_or(Err(ZkError::Timeout))
    }

    /// Reads the JSON znode at `path`: `None` if it does not exist.
    pub(crate) fn read<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, HaError> {
        match self.call(self.client.get_data(path)) {
            Ok((bytes, _)) => decode(path, &bytes).map(Some),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(HaError::request("read", path, e)),
        }
    }

    /// The children of `path` (none if it does not exist).
    pub(crate) fn children(&self, path: &str) -> Result<Vec<String>, HaError> {
        match self.call(self.client.list_children(path)) {
            Ok(c) => Ok(c),
            Err(ZkError::NoNode) => Ok(Vec::new()),
            Err(e) => Err(HaError::request("list", path, e)),
        }
    }

    /// Writes `data` into the znode at `path`, creating it if missing (its parent must
    /// exist), only while this JobManager leads.
    pub(crate) fn put(&self, what: &'static str, path: &str, data: Vec<u8>) -> Result<(), HaError> {
        match self.write(what, &[Write::Set(path, data.clone())]) {
            Err(HaError::Request {
                source: ZkError::NoNode,
                ..
            }) => self.write(what, &[Write::Create(path, data)]),
            other => other,
        }
    }

    /// Deletes the znode at `path` if it exists (not fenced: only what a fenced write
    /// already retired is deleted this way).
    pub(crate) fn delete(&self, path: &str) -> Result<(), HaError> {
        match self.call(self.client.delete(path, None)) {
            Ok(()) | Err(ZkError::NoNode) => Ok(()),
            Err(e) => Err(HaError::request("delete", path, e)),
        }
    }

    /// Applies `writes` in one multi-op, only while this JobManager leads.
    pub(crate) fn write(&self, what: &'static str, writes: &[Write<'_>]) -> Result<(), HaError> {
        let first = writes.first().map_or("", |w| match w {
            Write::Create(p, _) | Write::Set(p, _) | Write::Delete(p) => *p,
        });
        let failed = |e| HaError::request(what, first, e);
        let mut multi = self
            .client
            .new_check_writer(&self.latch, Some(0))
            .map_err(failed)?;
        let options = CreateMode::Persistent.with_acls(Acls::anyone_all());
        for w in writes {
            match w {
                Write::Create(p, data) => multi.add_create(p, data, &options),
                Write::Set(p, data) => multi.add_set_data(p, data, None),
                Write::Delete(p) => multi.add_delete(p, None),
            }
            .map_err(failed)?;
        }
        let result: Result<Vec<MultiWriteResult>, ZkError> =
            self.call(async { multi.commit().await.map_err(ZkError::from) });
        match result {
            Ok(_) => Ok(()),
            Err(ZkError::RuntimeInconsistent | ZkError::SessionExpired) => {
                Err(HaError::NotLeader {
                    epoch: self.epoch,
                    what,
                    path: first.to_string(),
                })
            }
            Err(e) => Err(failed(e)),
        }
    }
}
