//! The JobManager's high-availability services on ZooKeeper (see `weir_runtime::ha` for
//! the layout under the cluster's path): leader election. Job graph store, checkpoint id
//! counter and completed-checkpoint pointers come next (see ARCHITECTURE.md).

mod leader_election;

pub use leader_election::LeaderElection;
