//! The job graph: operator chains (vertices) connected by partitioned edges.
//!
//! The API turns a user's stream graph into a [`JobGraph`], fusing forward edges between
//! operators of equal parallelism into one vertex (operator chaining). Each vertex carries an
//! [`InvokableFactory`] that builds the chain's typed code inside the task thread, so nothing
//! in the runtime knows user types.
//!
//! Invariants checked by [`JobGraph::validate`]: vertex ids are dense indices, every edge
//! joins existing vertices and goes forward (the graph is acyclic), parallelism is in
//! `1..=max_parallelism`, forward edges join vertices of equal parallelism, and at least one
//! vertex is a sink.

use crate::config::JobConfig;
use crate::invokable::InvokableFactory;
use crate::types::VertexId;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// How records of an edge are distributed over the consumer's parallel subtasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Partitioning {
    /// Subtask `i` sends to subtask `i` (equal parallelism).
    Forward,
    /// By key group of the record's key.
    Hash,
    /// Round-robin over all consumers.
    Rebalance,
    /// Every record to every consumer.
    Broadcast,
}

impl fmt::Display for Partitioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Partitioning::Forward => "FORWARD",
            Partitioning::Hash => "HASH",
            Partitioning::Rebalance => "REBALANCE",
            Partitioning::Broadcast => "BROADCAST",
        };
        f.write_str(s)
    }
}

/// One operator chain, run by `parallelism` subtasks.
///
/// Serialized without its factory: a JobManager of a standalone cluster receives the
/// structure only, and the job's worker processes rebuild the code by running the program.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct JobVertex {
    /// Dense index of the vertex.
    pub id: VertexId,
    /// Human-readable name: the chained operators' names joined by ` -> `.
    pub name: String,
    /// Number of parallel subtasks.
    pub parallelism: u16,
    /// Number of key groups (upper bound for rescaling).
    pub max_parallelism: u16,
    /// Whether the chain starts with a source.
    pub is_source: bool,
    /// Whether the chain ends in a sink.
    pub is_sink: bool,
    /// The `uid` of every operator of the chain, in chain order (state in a savepoint is
    /// matched to operators by it).
    pub operator_uids: Vec<String>,
    /// Builds the chain's code for one subtask; `None` in a graph received over the wire.
    #[serde(skip)]
    pub factory: Option<Arc<dyn InvokableFactory>>,
}

impl fmt::Debug for JobVertex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobVertex")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("parallelism", &self.parallelism)
            .finish()
    }
}

/// A data exchange between two vertices.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobEdge {
    /// Producing vertex.
    pub source: VertexId,
    /// Index of this edge among the producer's output edges (the order of its writers).
    pub source_output: u16,
    /// Consuming vertex.
    pub target: VertexId,
    /// Index of this edge among the consumer's input gates.
    pub target_gate: u16,
    /// Which logical input of the consumer the gate feeds (0, or 1 for two-input operators).
    pub target_input: u8,
    /// Distribution of records over consumer subtasks.
    pub partitioning: Partitioning,
}

/// A job ready to be scheduled.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct JobGraph {
    /// The name given to `execute`.
    pub name: String,
    /// Operator chains, indexed by [`VertexId`].
    pub vertices: Vec<JobVertex>,
    /// Exchanges between chains.
    pub edges: Vec<JobEdge>,
    /// Execution settings.
    pub config: JobConfig,
}

/// Why a job graph is not runnable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GraphError {
    /// The job's execution settings are invalid.
    #[error("job '{job}' has an invalid configuration: {reason}")]
    BadConfig {
        /// The job's name.
        job: String,
        /// Which setting is wrong and why.
        reason: String,
    },
    /// A job without vertices.
    #[error("job '{job}' has no operators")]
    Empty {
        /// Job name.
        job: String,
    },
    /// A job without any sink.
    #[error("job '{job}' has no sink: add a sink (print, collect, file, ...) before execute")]
    NoSink {
        /// Job name.
        job: String,
    },
    /// Parallelism outside `1..=max_parallelism`.
    #[error("operator '{operator}': parallelism {parallelism} must be between 1 and max parallelism {max_parallelism}")]
    BadParallelism {
        /// Vertex name.
        operator: String,
        /// Configured parallelism.
        parallelism: u16,
        /// Configured max parallelism.
        max_parallelism: u16,
    },
    /// A forward edge between vertices of different parallelism.
    #[error("forward edge from '{source_vertex}' (parallelism {source_parallelism}) to '{target_vertex}' (parallelism {target_parallelism}) needs equal parallelism; use rebalance()")]
    ForwardParallelismMismatch {
        /// Producer name.
        source_vertex: String,
        /// Producer parallelism.
        source_parallelism: u16,
        /// Consumer name.
        target_vertex: String,
        /// Consumer parallelism.
        target_parallelism: u16,
    },
    /// An edge that names a missing vertex or goes backwards.
    #[error("edge {source_vertex} -> {target_vertex} is invalid: {reason}")]
    BadEdge {
        /// Producer id.
        source_vertex: VertexId,
        /// Consumer id.
        target_vertex: VertexId,
        /// What is wrong.
        reason: &'static str,
    },
}

impl JobGraph {
    /// Checks the invariants listed in the module docs.
    pub fn validate(&self) -> Result<(), GraphError> {
        if let Err(reason) = self.config.validate() {
            return Err(GraphError::BadConfig {
                job: self.name.clone(),
                reason: reason.to_string(),
            });
        }
        if self.vertices.is_empty() {
            return Err(GraphError::Empty {
                job: self.name.clone(),
            });
        }
        for (i, v) in self.vertices.iter().enumerate() {
            debug_assert_eq!(v.id as usize, i);
            if v.parallelism == 0 || v.parallelism > v.max_parallelism {
                return Err(GraphError::BadParallelism {
                    operator: v.name.clone(),
                    parallelism: v.parallelism,
                    max_parallelism: v.max_parallelism,
                });
            }
        }
        if !self.vertices.iter().any(|v| v.is_sink) {
            return Err(GraphError::NoSink {
                job: self.name.clone(),
            });
        }
        let n = self.vertices.len() as VertexId;
        for e in &self.edges {
            if e.source >= n || e.target >= n {
                return Err(GraphError::BadEdge {
                    source_vertex: e.source,
                    target_vertex: e.target,
                    reason: "unknown vertex",
                });
            }
            if e.source >= e.target {
                return Err(GraphError::BadEdge {
                    source_vertex: e.source,
                    target_vertex: e.target,
                    reason: "edges must point to a later vertex (no cycles)",
                });
            }
            let (s, t) = (
                &self.vertices[e.source as usize],
                &self.vertices[e.target as usize],
            );
            if e.partitioning == Partitioning::Forward && s.parallelism != t.parallelism {
                return Err(GraphError::ForwardParallelismMismatch {
                    source_vertex: s.name.clone(),
                    source_parallelism: s.parallelism,
                    target_vertex: t.name.clone(),
                    target_parallelism: t.parallelism,
                });
            }
        }
        Ok(())
    }

    /// Returns the edges leaving `vertex`, ordered by `source_output`.
    pub fn outputs_of(&self, vertex: VertexId) -> Vec<&JobEdge> {
        let mut v: Vec<_> = self.edges.iter().filter(|e| e.source == vertex).collect();
        v.sort_by_key(|e| e.source_output);
        v
    }

    /// Returns the edges entering `vertex`, ordered by `target_gate`.
    pub fn inputs_of(&self, vertex: VertexId) -> Vec<&JobEdge> {
        let mut v: Vec<_> = self.edges.iter().filter(|e| e.target == vertex).collect();
        v.sort_by_key(|e| e.target_gate);
        v
    }

    /// Returns the total number of subtasks over all vertices.
    pub fn subtask_count(&self) -> usize {
        self.vertices.iter().map(|v| v.parallelism as usize).sum()
    }

    /// Returns the number of slots the job needs with slot sharing: its highest
    /// parallelism.
    pub fn slots_needed(&self) -> u32 {
        self.vertices
            .iter()
            .map(|v| v.parallelism as u32)
            .max()
            .unwrap_or(0)
    }

    /// Encodes the graph (without code) as a job program hands it to `weir run`: versioned
    /// and checksummed by the codec.
    pub fn encode_plan(&self) -> Result<Vec<u8>, weir_state_backends::CodecError> {
        weir_state_backends::encode_versioned(self)
    }

    /// Decodes a graph [`Self::encode_plan`] wrote; its vertices have no code.
    pub fn decode_plan(bytes: &[u8]) -> Result<Self, weir_state_backends::CodecError> {
        weir_state_backends::decode_versioned(bytes, "job graph")
    }

    /// Returns a digest of the graph's structure and settings (not its code), equal in
    /// every process that builds the same graph: a job's worker processes check that
    /// they rebuilt the graph the JobManager scheduled.
    pub fn fingerprint(&self) -> u64 {
        let mut bytes = Vec::new();
        match weir_state_backends::encode_into(self, &mut bytes) {
            Ok(()) => weir_state_backends::key_hash(&bytes[..]),
            // Only a setting serde cannot encode gets here; such a graph cannot travel
            // either, and submission reports that.
            Err(_) => 0,
        }
    }
}
