//! Fixtures shared by the JobManager's integration tests.

pub mod zookeeper;
