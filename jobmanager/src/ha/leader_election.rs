//! Leader election among JobManagers, ZooKeeper's recipe without herd effect.
//!
//! Each candidate creates an ephemeral sequential znode `latch-<seq>` under
//! [`LEADER_LATCH`]. The candidate with the lowest sequence leads; every other one watches
//! only the znode just below its own, so a leader's end wakes exactly one candidate, which
//! then lists the latch again (its predecessor may have been a candidate that left, not
//! the leader). The leader publishes its [`LeaderInfo`] in the ephemeral [`LEADER_ADDRESS`];
//! its epoch is its own sequence number, so epochs only grow from leader to leader.
//!
//! Invariant: a candidate leads only while its latch znode is the lowest; when its session
//! ends (closed, expired) both its znodes vanish with it, and [`LeaderElection::lost`]
//! tells the leader to stop acting.

use weir_runtime::ha::zk::{Acls, Client, CreateMode, Error as ZkError};
use weir_runtime::ha::{HaError, LeaderInfo, LEADER_ADDRESS, LEADER_LATCH};

/// Prefix of a latch znode's name; ZooKeeper appends a 10-digit sequence.
const LATCH_PREFIX: &str = "latch-";

/// One JobManager's candidacy.
pub struct LeaderElection {
    client: Client,
    /// The path of this candidate's latch znode.
    latch: String,
    /// Its sequence (the epoch if it leads).
    sequence: u64,
    /// The latch znode this candidate watched last, if it did not lead at once.
    watched: Option<String>,
}

impl LeaderElection {
    /// Joins the election of the cluster `client` is rooted at.
    pub async fn join(client: Client) -> Result<Self, HaError> {
        let dir = CreateMode::Persistent.with_acls(Acls::anyone_all());
        client
            .mkdir(LEADER_LATCH, &dir)
            .await
            .map_err(|e| HaError::request("create", LEADER_LATCH, e))?;
        let path = format!("{LEADER_LATCH}/{LATCH_PREFIX}");
        let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let (_, sequence) = client
            .create(&path, &[], &options)
            .await
            .map_err(|e| HaError::request("create", &path, e))?;
        let sequence = sequence.into_i64() as u64;
        Ok(Self {
            client,
            latch: format!("{LEADER_LATCH}/{LATCH_PREFIX}{sequence:010}"),
            sequence,
            watched: None,
        })
    }

    /// This candidate's sequence: its epoch once it leads.
    pub fn epoch(&self) -> u64 {
        self.sequence
    }

    /// The path of this candidate's latch znode (it exists while its session lives).
    pub fn latch_path(&self) -> &str {
        &self.latch
    }

    /// The session this candidate runs in.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The latch znode this candidate waited on last (its predecessor), if any.
    pub fn watched(&self) -> Option<&str> {
        self.watched.as_deref()
    }

    /// Waits until this candidate leads and returns its epoch (then it should start
    /// serving and [`Self::publish`] its addresses). Fails if its session ended (its latch
    /// znode is gone).
    pub async fn lead(&mut self) -> Result<u64, HaError> {
        loop {
            let mut latches: Vec<(u64, String)> = self
                .client
                .list_children(LEADER_LATCH)
                .await
                .map_err(|e| HaError::request("list", LEADER_LATCH, e))?
                .into_iter()
                .filter_map(|n| Some((n.strip_prefix(LATCH_PREFIX)?.parse().ok()?, n)))
                .collect();
            latches.sort();
            let Some(me) = latches.iter().position(|(s, _)| *s == self.sequence) else {
                return Err(HaError::BadData {
                    path: self.latch.clone(),
                    reason: "this candidate's latch znode is gone (its session ended)".into(),
                });
            };
            if me == 0 {
                tracing::info!(epoch = self.sequence, "JobManager leads");
                return Ok(self.sequence);
            }
            let predecessor = format!("{LEADER_LATCH}/{}", latches[me - 1].1);
            match self.client.check_and_watch_stat(&predecessor).await {
                Ok((None, _)) => continue, // gone before the watch was set
                Ok((Some(_), watcher)) => {
                    tracing::info!(sequence = self.sequence, watching = %predecessor, "JobManager candidate waits for its predecessor");
                    self.watched = Some(predecessor);
                    watcher.changed().await;
                }
                Err(e) => return Err(HaError::request("watch", &predecessor, e)),
            }
        }
    }

    /// Writes this leader's addresses and epoch into [`LEADER_ADDRESS`] (ephemeral, this
    /// session's), where TaskManagers and the CLI find them. Call it once [`Self::lead`]
    /// returned and the addresses serve.
    pub async fn publish(
        &self,
        rpc_address: &str,
        rest_address: &str,
    ) -> Result<LeaderInfo, HaError> {
        let info = LeaderInfo {
            rpc_address: rpc_address.to_string(),
            rest_address: rest_address.to_string(),
            epoch: self.sequence,
        };
        let options = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
        let bytes = info.encode();
        match self.client.create(LEADER_ADDRESS, &bytes, &options).await {
            Ok(_) => {}
            // A znode left by an earlier leader whose session has not ended yet cannot
            // be: it leads only while its latch is the lowest. Whatever is there is
            // replaced.
            Err(ZkError::NodeExists) => {
                self.client
                    .set_data(LEADER_ADDRESS, &bytes, None)
                    .await
                    .map_err(|e| HaError::request("write", LEADER_ADDRESS, e))?;
            }
            Err(e) => return Err(HaError::request("create", LEADER_ADDRESS, e)),
        }
        tracing::info!(epoch = info.epoch, rpc = %info.rpc_address, "JobManager published its address");
        Ok(info)
    }

    /// Resolves when this candidate's session has ended (expired, closed or refused):
    /// from then on it neither leads nor runs; a leader must stop acting at once.
    pub async fn lost(&self) {
        let mut states = self.client.state_watcher();
        let mut state = self.client.state();
        while !state.is_terminated() {
            state = states.changed().await;
        }
        tracing::warn!(
            sequence = self.sequence,
            ?state,
            "JobManager lost its ZooKeeper session"
        );
    }

    /// Leaves the election: removes the published address (if this candidate leads) and
    /// its latch znode, so the next candidate takes over at once.
    pub async fn resign(self) -> Result<(), HaError> {
        if let Ok((bytes, _)) = self.client.get_data(LEADER_ADDRESS).await {
            if LeaderInfo::decode(LEADER_ADDRESS, &bytes).is_ok_and(|i| i.epoch == self.sequence) {
                delete(&self.client, LEADER_ADDRESS).await?;
            }
        }
        delete(&self.client, &self.latch).await
    }
}

/// Deletes `path`; a znode already gone is fine.
async fn delete(client: &Client, path: &str) -> Result<(), HaError> {
    match client.delete(path, None).await {
        Ok(()) | Err(ZkError::NoNode) => Ok(()),
        Err(e) => Err(HaError::request("delete", path, e)),
    }
}
