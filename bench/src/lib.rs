//! Pieces the benchmark binaries (`weir-bench`, `weir-chaos`) share: servers started with
//! the project's scripts, the processes of a standalone cluster, Kafka topics, and the
//! chaos job's windows.

pub mod chaos_job;
pub mod kafka_topics;
pub mod procs;
pub mod server_script;
