//! Pieces the benchmark binaries (`weir-bench`, `weir-chaos`) share: servers started with
//! the project's scripts, and the processes of a standalone cluster.

pub mod procs;
pub mod server_script;
