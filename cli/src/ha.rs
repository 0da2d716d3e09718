//! The CLI's side of JobManager high availability: a `weir jobmanager` runs for leadership
//! through ZooKeeper before it serves, and every other command finds the leading
//! JobManager there when `high-availability.*` is configured instead of `--jobmanager`.
//!
//! Invariant: a JobManager serves only while it leads; when its ZooKeeper session ends it
//! executes itself anew ([`rejoin`]), so a deposed JobManager keeps nothing it served and
//! never goes on acting; the new process stands by.

use crate::client::Client;
use anyhow::{Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use weir_jobmanager::ha::{HaServices, LeaderElection};
use weir_runtime::ha::{connect, HaConfig, LeaderRetrieval};

/// A runtime for the ZooKeeper client's session tasks (pings, watches), which must keep
/// running while the caller's thread blocks.
fn runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("weir-zookeeper")
        .enable_all()
        .build()
        .context("cannot start the ZooKeeper client's runtime")
}

/// The leading JobManager's RPC address, found through ZooKeeper (waiting at most the
/// connection timeout for one to be published).
pub fn leader_address(ha: &HaConfig) -> Result<String> {
    let rt = runtime()?;
    let leader = rt.block_on(async {
        let client = connect(ha).await?;
        LeaderRetrieval::new(client)
            .next_leader(None, ha.connection_timeout)
            .await
    })?;
    Ok(leader.rpc_address)
}

/// Connects to the leading JobManager of `ha`'s cluster, waiting up to `timeout` for one
/// that answers (after a leader change the old leader's address stays published until
/// its session expires).
pub fn reconnect(ha: &HaConfig, secret: Option<&str>, timeout: Duration) -> Result<Client> {
    let rt = runtime()?;
    let deadline = Instant::now() + timeout;
    // One session for every lookup, opened again only after it failed.
    let mut session: Option<LeaderRetrieval> = None;
    loop {
        let attempt = lookup(&rt, ha, &mut session).and_then(|a| Client::connect(&a, secret));
        match attempt {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "no JobManager leader answered within {} s",
                    timeout.as_secs()
                )))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// The published leader's RPC address, through `session` (opened if `None`, dropped
/// when a lookup fails).
fn lookup(rt: &Runtime, ha: &HaConfig, session: &mut Option<LeaderRetrieval>) -> Result<String> {
    let retrieval = match session.take() {
        Some(r) => r,
        None => LeaderRetrieval::new(rt.block_on(connect(ha))?),
    };
    let leader = rt.block_on(retrieval.next_leader(None, ha.connection_timeout))?;
    *session = Some(retrieval);
    Ok(leader.rpc_address)
}

/// Joins the election through `client` and waits until this candidate leads.
async fn join_and_lead(
    client: weir_runtime::ha::zk::Client,
    ha: &HaConfig,
) -> Result<LeaderElection, weir_runtime::ha::HaError> {
    let mut election = LeaderElection::join(client).await?;
    eprintln!(
        "JobManager candidate {} of cluster {} on ZooKeeper {}: serving once it leads",
        election.epoch(),
        ha.cluster_path(),
        ha.quorum
    );
    election.lead().await?;
    Ok(election)
}

/// Starts this `weir jobmanager` again, with the same arguments, to run for leadership
/// anew: a leader that lost its session drops everything it served at once (the new
/// process shares nothing with it) and stands by. Returns only if that fails.
pub fn rejoin() -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return anyhow::Error::from(e).context("cannot find this program to rejoin"),
    };
    let e = std::process::Command::new(&exe)
        .args(std::env::args_os().skip(1))
        .env(ENV_REJOIN, "1")
        .exec();
    anyhow::Error::from(e).context(format!("cannot start {} again to rejoin", exe.display()))
}

/// This JobManager's leadership of its cluster.
pub struct Leadership {
    rt: Runtime,
    election: LeaderElection,
}

/// Set in the environment of a `weir jobmanager` that runs for leadership again after it
/// lost its session: it then waits for the quorum instead of failing when it is away.
const ENV_REJOIN: &str = "WEIR_JOBMANAGER_REJOIN";
/// The longest wait between two attempts to run for leadership.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Leadership {
    /// Joins the election of `ha`'s cluster and waits until this JobManager leads. An
    /// unreachable quorum fails the first attempt (unless the JobManager is rejoining);
    /// once it was reached, a session lost while standing by is opened again.
    pub fn acquire(ha: &HaConfig) -> Result<Self> {
        let rt = runtime()?;
        let mut retrying = std::env::var_os(ENV_REJOIN).is_some();
        let mut backoff = Duration::from_secs(1);
        loop {
            let client = match rt.block_on(connect(ha)) {
                Ok(c) => c,
                Err(e) if !retrying => return Err(e.into()),
                Err(e) => {
                    eprintln!("weir: {e}; trying again in {} s", backoff.as_secs());
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            retrying = true;
            match rt.block_on(join_and_lead(client, ha)) {
                Ok(election) => return Ok(Self { rt, election }),
                Err(e) => {
                    eprintln!("weir: {e}; running for leadership again");
                    std::thread::sleep(backoff);
                }
            }
        }
    }

    /// This leader's epoch.
    pub fn epoch(&self) -> u64 {
        self.election.epoch()
    }

    /// This leader's high-availability services for the cluster of `ha`.
    pub fn services(&self, ha: &HaConfig) -> Result<Arc<HaServices>> {
        let services = HaServices::new(&self.election, ha, self.rt.handle().clone())?;
        Ok(Arc::new(services))
    }

    /// Publishes the addresses this leader serves on.
    pub fn publish(&self, rpc: &str, rest: &str) -> Result<()> {
        self.rt.block_on(self.election.publish(rpc, rest))?;
        Ok(())
    }

    /// Blocks until this JobManager's ZooKeeper session ends (it no longer leads).
    pub fn wait_until_lost(&self) {
        self.rt.block_on(self.election.lost());
    }
}
