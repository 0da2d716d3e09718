//! A TaskManager follows its JobManager. Under high availability that is the leader
//! published in ZooKeeper: it waits for a leader (also when started before any JobManager),
//! registers with it, and when the leader changes (a new one is published, or the
//! connection to the current one ends) stops its workers and registers with the leader
//! then, with backoff. With a fixed address it registers there, and again with backoff
//! whenever the connection ends, until no registration succeeded for
//! `taskmanager.registration.timeout`.
//!
//! Invariants: the fence learns every published leader's epoch before this TaskManager
//! serves it, so commands of a deposed leader are refused; every wait is bounded and
//! logged, and the retry delay grows only while registrations fail.

use crate::daemon::{serve, DaemonError, DaemonSettings, Leader};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};
use weir_runtime::ha::{connect, HaConfig, HaError, LeaderRetrieval, LeaderWatch};
use weir_runtime::rpc::{Fence, RpcError};

/// The first retry delay after a failed registration.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// The longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long one wait for a leader lasts before it is logged and started again.
const LEADER_WAIT: Duration = Duration::from_secs(30);

/// Serves the JobManager at `address`, registering again with backoff whenever the
/// connection ends; returns the error once no registration succeeded for the settings'
/// registration timeout.
pub(crate) async fn follow_address(
    settings: Arc<DaemonSettings>,
    address: String,
) -> Result<(), DaemonError> {
    let fence = Arc::new(Fence::default());
    let mut backoff = MIN_BACKOFF;
    let mut since = Instant::now();
    loop {
        let leader = Leader {
            address: address.clone(),
            epoch: 0,
        };
        let (registered, ended) = serve(
            settings.clone(),
            leader,
            fence.clone(),
            std::future::pending(),
        )
        .await;
        if registered {
            backoff = MIN_BACKOFF;
            since = Instant::now();
        }
        let last = match ended {
            Ok(()) => "the JobManager closed the connection".to_string(),
            // Retrying cannot help a refused secret or another protocol: fail at once.
            Err(DaemonError::Rpc(
                e @ (RpcError::Refused { .. }
                | RpcError::VersionMismatch { .. }
                | RpcError::NotWeir { .. }),
            )) => return Err(DaemonError::Rpc(e)),
            Err(DaemonError::Rpc(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        let left = settings
            .registration_timeout
            .saturating_sub(since.elapsed());
        if left.is_zero() {
            return Err(DaemonError::RegistrationTimeout {
                jobmanager: address,
                timeout_ms: settings.registration_timeout.as_millis() as u64,
                last,
            });
        }
        warn!(jobmanager = %address, error = %last, retry_ms = backoff.as_millis() as u64, "not registered with the JobManager; retrying");
        tokio::time::sleep(backoff.min(left)).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follows the leaders of `ha`'s cluster for good.
pub(crate) async fn follow(settings: Arc<DaemonSettings>, ha: HaConfig) {
    let fence = Arc::new(Fence::default());
    let mut backoff = MIN_BACKOFF;
    loop {
        let retrieval = match connect(&ha).await {
            Ok(client) => LeaderRetrieval::new(client),
            Err(e) => {
                warn!(error = %e, retry_ms = backoff.as_millis() as u64, "cannot reach ZooKeeper to find the JobManager leader");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let mut watch = LeaderWatch::new(ha.clone(), retrieval);
        if let Err(e) = follow_session(&settings, &mut watch, &fence, &mut backoff).await {
            warn!(error = %e, "lost track of the JobManager leader; opening a new ZooKeeper session");
        }
    }
}

/// Follows the leaders found through `watch` (which replaces a ZooKeeper session that
/// expired with a new one) until it fails.
async fn follow_session(
    settings: &Arc<DaemonSettings>,
    watch: &mut LeaderWatch,
    fence: &Arc<Fence>,
    backoff: &mut Duration,
) -> Result<(), HaError> {
    loop {
        let leader = match watch.next_leader(None, LEADER_WAIT).await {
            Ok(l) => l,
            Err(HaError::NoLeader { path, .. }) => {
                info!(cluster = %path, "waiting for a JobManager to lead");
                continue;
            }
            Err(e) => return Err(e),
        };
        fence.observe(leader.epoch);
        let epoch = leader.epoch;
        let target = Leader {
            address: leader.rpc_address,
            epoch,
        };
        let until = superseded(watch, fence, epoch);
        let (registered, ended) =
            serve(settings.clone(), target.clone(), fence.clone(), until).await;
        match ended {
            Ok(()) => info!(jobmanager = %target.address, epoch, "left the JobManager"),
            Err(e) => {
                warn!(jobmanager = %target.address, epoch, error = %e, "JobManager connection ended")
            }
        }
        if registered {
            *backoff = MIN_BACKOFF;
            continue;
        }
        // The published leader did not take the registration (it may be dead and its
        // session not yet expired): retry, at once if another leader is published.
        tokio::select! {
            () = tokio::time::sleep(*backoff) => {}
            () = superseded(watch, fence, epoch) => {}
        }
        *backoff = (*backoff * 2).min(MAX_BACKOFF);
    }
}

/// Resolves once a leader other than the one of `epoch` is published (its epoch is then
/// known to the fence); ZooKeeper trouble meanwhile keeps it waiting, and a session that
/// expires meanwhile is replaced by a new one (`watch`), so the TaskManager still sees
/// the next leader while it keeps serving the current one.
async fn superseded(watch: &mut LeaderWatch, fence: &Fence, epoch: u64) {
    loop {
        match watch.next_leader(Some(epoch), LEADER_WAIT).await {
            Ok(new) => {
                fence.observe(new.epoch);
                info!(epoch = new.epoch, rpc = %new.rpc_address, "a new JobManager leader is published");
                return;
            }
            Err(HaError::NoLeader { .. }) => {}
            Err(e) => {
                warn!(error = %e, "cannot watch the JobManager leader");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
