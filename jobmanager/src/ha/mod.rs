//! The JobManager's high-availability services on ZooKeeper (see `weir_runtime::ha` for
//! the leader's znodes and `services` for the rest of the layout): leader election, the
//! job graph and job result stores, and each job's checkpoint id counter and
//! completed-checkpoint pointer.

mod checkpoint_record;
mod job_store;
mod leader_election;
mod services;

pub use checkpoint_record::CheckpointRecord;
pub use job_store::StoredJob;
pub use leader_election::LeaderElection;
pub use services::HaServices;
