//! High-availability services shared by the JobManager, the TaskManagers and the CLI:
//! the `high-availability.*` configuration, ZooKeeper sessions under the cluster's path,
//! and the leader's published address (what a JobManager that leads writes and what
//! everyone else reads to find it).
//!
//! Layout under `<high-availability.zookeeper.path.root>/<high-availability.cluster-id>`:
//! - `leader/latch/latch-<seq>`: one ephemeral sequential znode per JobManager candidate;
//!   the lowest sequence leads, and each other candidate watches only its predecessor.
//! - `leader/address`: ephemeral, written by the leader: its RPC and REST addresses and its
//!   epoch (the sequence of its latch znode, a fencing token that only grows).
//!
//! Invariant: a znode of one cluster id is never read or written by another (every client
//! is rooted at its cluster's path), so two clusters share one ZooKeeper and stay apart.

mod config;
mod error;
mod leader;
mod session;
pub mod znode;

pub use config::{HaConfig, HA_KEYS};
pub use error::HaError;
pub use leader::{LeaderInfo, LeaderRetrieval, LeaderWatch, LEADER_ADDRESS, LEADER_LATCH};
pub use session::connect;
pub use zookeeper_client as zk;
