//! The stream graph the API builds: one node per operator, edges with partitioning.
//!
//! Nodes are created in topological order (a node's inputs always exist before it), so node
//! ids order the graph. Every node records the typed factories that build its operator in a
//! task; no operator is instantiated until a subtask starts.

use super::context::OperatorContext;
use super::type_ops::{AnyKeyHash, AnyOutput, TypeOps};
use std::sync::Arc;
use weir_runtime::{Partitioning, TaskError, TaskInvokable};

/// Index of a node in the stream graph.
pub type NodeId = usize;

/// Builds a one-input operator in front of its (erased) output; returns its erased input.
pub type MakeOneInput =
    Arc<dyn Fn(&mut OperatorContext, AnyOutput) -> Result<AnyOutput, TaskError> + Send + Sync>;

/// Builds a task head (source or two-input) in front of its (erased) output.
pub type MakeHead = Arc<
    dyn Fn(
            &mut OperatorContext,
            AnyOutput,
            Vec<String>,
        ) -> Result<Box<dyn TaskInvokable>, TaskError>
        + Send
        + Sync,
>;

/// What a node does.
#[derive(Clone)]
pub enum NodeKind {
    /// Produces records; always heads its task.
    Source(MakeHead),
    /// Consumes one logical input.
    OneInput(MakeOneInput),
    /// Consumes two logical inputs; always heads its task.
    TwoInput(MakeHead),
    /// The stream of a side-output tag of `parent`; not an operator.
    SideOutput {
        /// The node emitting the side output.
        parent: NodeId,
        /// The tag id.
        tag: String,
    },
}

/// One operator of the stream graph.
#[derive(Clone)]
pub struct StreamNode {
    /// Its id.
    pub id: NodeId,
    /// Display name.
    pub name: String,
    /// Stable user-given id (for state matching).
    pub uid: Option<String>,
    /// Parallelism.
    pub parallelism: u16,
    /// Number of key groups, if set on this operator.
    pub max_parallelism: Option<u16>,
    /// What it does.
    pub kind: NodeKind,
    /// Operations on its output type.
    pub out_type: Arc<dyn TypeOps>,
    /// Operations on its input type (one-input nodes).
    pub in_type: Option<Arc<dyn TypeOps>>,
    /// Whether the node ends a pipeline.
    pub is_sink: bool,
    /// Whether the node may be chained to its predecessor.
    pub chainable: bool,
    /// Whether the operator can emit side outputs (process functions and windows).
    pub emits_side_outputs: bool,
    /// Checked when the job is built (a sink's [`crate::sink::SinkFunction::check`]),
    /// with the operator's name and the job's settings.
    pub check: Option<SubmissionCheck>,
}

/// A check of one operator against the job's settings, run when the job is built.
pub type SubmissionCheck =
    Arc<dyn Fn(&str, &weir_runtime::JobConfig) -> Result<(), TaskError> + Send + Sync>;

/// A connection between two nodes.
#[derive(Clone)]
pub struct StreamEdge {
    /// Producer.
    pub from: NodeId,
    /// Consumer.
    pub to: NodeId,
    /// Requested partitioning; `None` means forward when parallelism matches, else rebalance.
    pub partitioning: Option<Partitioning>,
    /// Logical input of the consumer.
    pub input: u8,
    /// Key hash for hash partitioning.
    pub key_hash: Option<AnyKeyHash>,
}

/// The whole graph under construction.
#[derive(Default)]
pub struct StreamGraph {
    /// Nodes by id.
    pub nodes: Vec<StreamNode>,
    /// All edges.
    pub edges: Vec<StreamEdge>,
}

impl StreamGraph {
    /// Adds a node and returns its id.
    #[allow(clippy::too_many_arguments)]
    pub fn add_node(
        &mut self,
        name: &str,
        parallelism: u16,
        kind: NodeKind,
        out_type: Arc<dyn TypeOps>,
        in_type: Option<Arc<dyn TypeOps>>,
        is_sink: bool,
    ) -> NodeId {
        let id = self.nodes.len();
        self.nodes.push(StreamNode {
            id,
            name: name.to_string(),
            uid: None,
            parallelism,
            max_parallelism: None,
            kind,
            out_type,
            in_type,
            is_sink,
            chainable: true,
            emits_side_outputs: false,
            check: None,
        });
        id
    }

    /// Connects `from` to input `input` of `to`.
    pub fn add_edge(
        &mut self,
        from: NodeId,
        to: NodeId,
        partitioning: Option<Partitioning>,
        input: u8,
        key_hash: Option<AnyKeyHash>,
    ) {
        self.edges.push(StreamEdge {
            from,
            to,
            partitioning,
            input,
            key_hash,
        });
    }
}
