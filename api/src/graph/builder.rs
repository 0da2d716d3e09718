//! Translates the stream graph into a runtime job graph, fusing chainable operators.
//!
//! An edge is chained (its two operators run in one task, passing records by value) when it
//! is a forward edge between nodes of equal parallelism, the consumer is a one-input
//! operator with no other input, chaining is enabled for it, and the producer has no other
//! chained consumer. Every other edge becomes a network exchange. Side-output streams are
//! emitted by their parent's task and never chained.
//!
//! Checked here, before anything runs: unique uids, parallelism within
//! `1..=max_parallelism`, each sink's own check against the job's settings, and at least
//! one sink.

use super::context::OperatorContext;
use super::stream_graph::{NodeId, NodeKind, StreamEdge, StreamGraph};
use super::type_ops::{AnyKeyHash, NetworkSpec, TypeOps};
use crate::error::ApiError;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use weir_runtime::{
    JobConfig, JobEdge, JobGraph, JobVertex, Partitioning, TaskError, TaskInvokable, TaskSetup,
};
use weir_state_backends::KeyGroupRange;

/// Settings the translation needs from the environment.
#[derive(Clone)]
pub struct BuildSettings {
    /// Default number of key groups.
    pub max_parallelism: u16,
    /// Whether operators may be chained at all.
    pub chaining: bool,
    /// Runtime configuration of the job.
    pub config: JobConfig,
}

#[derive(Clone)]
struct NetOut {
    writer_index: usize,
    partitioning: Partitioning,
    key_hash: Option<AnyKeyHash>,
    consumer_max_parallelism: u16,
}

#[derive(Clone)]
struct SideOut {
    tag: String,
    ops: Arc<dyn TypeOps>,
    nets: Vec<NetOut>,
}

#[derive(Clone)]
struct ChainNode {
    name: String,
    /// The operator's `uid`, or a name derived from its position in the graph.
    uid: String,
    kind: NodeKind,
    out_type: Arc<dyn TypeOps>,
    in_type: Option<Arc<dyn TypeOps>>,
    nets: Vec<NetOut>,
    sides: Vec<SideOut>,
}

/// Returns the job graph for `graph`.
pub fn build_job_graph(
    name: &str,
    graph: &StreamGraph,
    settings: &BuildSettings,
) -> Result<JobGraph, ApiError> {
    let view = GraphView { graph, settings };
    view.validate(name)?;
    let links = view.chain_links();
    let chains = view.chains(&links);
    let exchanges = view.exchanges(&links, &chains);
    let vertices = chains
        .paths
        .iter()
        .enumerate()
        .map(|(vid, path)| view.job_vertex(vid as u32, path, &exchanges.net_of_node))
        .collect();
    let job = JobGraph {
        name: name.to_string(),
        vertices,
        edges: exchanges.job_edges,
        config: settings.config.clone(),
    };
    job.validate()
        .map_err(|e| ApiError::InvalidGraph(e.to_string()))?;
    Ok(job)
}

/// A stream graph seen with the environment's build settings applied.
struct GraphView<'a> {
    graph: &'a StreamGraph,
    settings: &'a BuildSettings,
}

/// The chained edges of a graph: each producer has at most one chained consumer, and each
/// chained consumer exactly one chained producer.
#[derive(Default)]
struct ChainLinks {
    next: HashMap<NodeId, NodeId>,
    prev: HashMap<NodeId, NodeId>,
    /// Indices into the stream graph's edges of the edges that are chained.
    edges: HashSet<usize>,
}

/// The maximal chains of a graph; each chain becomes one job vertex.
struct Chains {
    /// The vertex each operator node runs in.
    vertex_of: HashMap<NodeId, u32>,
    /// The nodes of each vertex, head first, in vertex order.
    paths: Vec<Vec<NodeId>>,
}

/// The network exchanges of a graph: the job edges and each node's network outputs.
struct Exchanges {
    job_edges: Vec<JobEdge>,
    net_of_node: HashMap<NodeId, Vec<NetOut>>,
}

impl GraphView<'_> {
    /// Returns the node's max parallelism, or the environment's default when it sets none.
    fn max_par(&self, id: NodeId) -> u16 {
        self.graph.nodes[id]
            .max_parallelism
            .unwrap_or(self.settings.max_parallelism)
    }

    /// Returns the operator node that emits `id`'s records (side outputs resolve to their
    /// parent).
    fn emitter(&self, id: NodeId) -> NodeId {
        match &self.graph.nodes[id].kind {
            NodeKind::SideOutput { parent, .. } => *parent,
            _ => id,
        }
    }

    /// Returns the edge's partitioning: the declared one, else forward between equal
    /// parallelisms and rebalance otherwise.
    fn resolve(&self, e: &StreamEdge) -> Partitioning {
        let nodes = &self.graph.nodes;
        let (a, b) = (&nodes[self.emitter(e.from)], &nodes[e.to]);
        e.partitioning.unwrap_or(if a.parallelism == b.parallelism {
            Partitioning::Forward
        } else {
            Partitioning::Rebalance
        })
    }

    /// Returns the number of edges into `id`.
    fn in_degree(&self, id: NodeId) -> usize {
        self.graph.edges.iter().filter(|e| e.to == id).count()
    }

    /// Checks unique uids, side outputs only from operators that emit them, parallelism
    /// within `1..=max_parallelism`, each operator's own check against the job's settings
    /// (a Kafka sink's transaction timeout), and at least one sink.
    fn validate(&self, name: &str) -> Result<(), ApiError> {
        let nodes = &self.graph.nodes;
        let mut uids = HashSet::new();
        for n in nodes {
            if let Some(u) = &n.uid {
                if !uids.insert(u.clone()) {
                    return Err(ApiError::InvalidGraph(format!(
                        "duplicate uid '{u}' (operator '{}'): every uid must be unique in a job",
                        n.name
                    )));
                }
            }
            if let NodeKind::SideOutput { parent, tag } = &n.kind {
                let p = &nodes[*parent];
                if !p.emits_side_outputs {
                    return Err(ApiError::InvalidGraph(format!(
                        "operator '{}' emits no side outputs: side output '{tag}' can only come from a process function or a window",
                        p.name
                    )));
                }
                continue;
            }
            if n.parallelism == 0 || n.parallelism > self.max_par(n.id) {
                return Err(ApiError::InvalidGraph(format!(
                    "operator '{}': parallelism {} must be between 1 and max parallelism {}",
                    n.name,
                    n.parallelism,
                    self.max_par(n.id)
                )));
            }
        }
        for n in nodes {
            if let Some(check) = &n.check {
                check(&n.name, &self.settings.config)
                    .map_err(|e| ApiError::InvalidGraph(format!("operator '{}': {e}", n.name)))?;
            }
        }
        if !nodes.iter().any(|n| n.is_sink) {
            return Err(ApiError::InvalidGraph(format!(
                "job '{name}' has no sink: add a sink (print, collect, file, ...) before execute"
            )));
        }
        Ok(())
    }

    /// Returns the edges to chain, choosing greedily in edge order.
    fn chain_links(&self) -> ChainLinks {
        let nodes = &self.graph.nodes;
        let mut links = ChainLinks::default();
        for (i, e) in self.graph.edges.iter().enumerate() {
            let (a, b) = (&nodes[e.from], &nodes[e.to]);
            let ok = self.settings.chaining
                && b.chainable
                && !matches!(a.kind, NodeKind::SideOutput { .. })
                && matches!(b.kind, NodeKind::OneInput(_))
                && self.resolve(e) == Partitioning::Forward
                && a.parallelism == b.parallelism
                && self.in_degree(b.id) == 1
                && !links.next.contains_key(&a.id);
            if ok {
                links.next.insert(a.id, b.id);
                links.prev.insert(b.id, a.id);
                links.edges.insert(i);
            }
        }
        links
    }

    /// Returns the vertices: maximal chains, numbered in order of their heads.
    fn chains(&self, links: &ChainLinks) -> Chains {
        let mut vertex_of: HashMap<NodeId, u32> = HashMap::new();
        let mut paths: Vec<Vec<NodeId>> = Vec::new();
        for n in &self.graph.nodes {
            if matches!(n.kind, NodeKind::SideOutput { .. }) || links.prev.contains_key(&n.id) {
                continue;
            }
            let mut path = vec![n.id];
            while let Some(next) = links.next.get(path.last().expect("non-empty")) {
                path.push(*next);
            }
            for id in &path {
                vertex_of.insert(*id, paths.len() as u32);
            }
            paths.push(path);
        }
        Chains { vertex_of, paths }
    }

    /// Returns the network edges, numbered per producing vertex and per consuming vertex.
    fn exchanges(&self, links: &ChainLinks, chains: &Chains) -> Exchanges {
        let vertex_of = &chains.vertex_of;
        let mut job_edges = Vec::new();
        let mut outs_per_vertex = vec![0u16; chains.paths.len()];
        let mut gates_per_vertex = vec![0u16; chains.paths.len()];
        let mut net_of_node: HashMap<NodeId, Vec<NetOut>> = HashMap::new();
        for (i, e) in self.graph.edges.iter().enumerate() {
            if links.edges.contains(&i) {
                continue;
            }
            let src_vertex = vertex_of[&self.emitter(e.from)];
            let dst_vertex = vertex_of[&e.to];
            let partitioning = self.resolve(e);
            let writer_index = outs_per_vertex[src_vertex as usize];
            outs_per_vertex[src_vertex as usize] += 1;
            let gate = gates_per_vertex[dst_vertex as usize];
            gates_per_vertex[dst_vertex as usize] += 1;
            job_edges.push(JobEdge {
                source: src_vertex,
                source_output: writer_index,
                target: dst_vertex,
                target_gate: gate,
                target_input: e.input,
                partitioning,
            });
            net_of_node.entry(e.from).or_default().push(NetOut {
                writer_index: writer_index as usize,
                partitioning,
                key_hash: e.key_hash.clone(),
                consumer_max_parallelism: self.max_par(e.to),
            });
        }
        Exchanges {
            job_edges,
            net_of_node,
        }
    }

    /// Returns the job vertex `vid` that runs the chain `path`.
    fn job_vertex(
        &self,
        vid: u32,
        path: &[NodeId],
        net_of_node: &HashMap<NodeId, Vec<NetOut>>,
    ) -> JobVertex {
        let nodes = &self.graph.nodes;
        let chain: Vec<ChainNode> = path
            .iter()
            .map(|id| self.chain_node(*id, net_of_node))
            .collect();
        let head = &nodes[path[0]];
        let names: Vec<String> = chain.iter().map(|c| c.name.clone()).collect();
        let display = if matches!(head.kind, NodeKind::Source(_)) {
            format!("Source: {}", names.join(" -> "))
        } else {
            names.join(" -> ")
        };
        let operator_uids: Vec<String> = chain.iter().map(|c| c.uid.clone()).collect();
        let vertex_max = self.max_par(path[0]);
        let factory = move |setup: TaskSetup| build_chain(&chain, setup);
        JobVertex {
            id: vid,
            name: display,
            parallelism: head.parallelism,
            max_parallelism: vertex_max,
            is_source: matches!(head.kind, NodeKind::Source(_)),
            is_sink: path.iter().any(|id| nodes[*id].is_sink),
            operator_uids,
            factory: Some(Arc::new(factory)),
        }
    }

    /// Returns the chain entry for node `id`, with its network and side outputs.
    fn chain_node(&self, id: NodeId, net_of_node: &HashMap<NodeId, Vec<NetOut>>) -> ChainNode {
        let n = &self.graph.nodes[id];
        ChainNode {
            name: n.name.clone(),
            uid: n
                .uid
                .clone()
                .unwrap_or_else(|| format!("{}#{}", n.name, id)),
            kind: n.kind.clone(),
            out_type: n.out_type.clone(),
            in_type: n.in_type.clone(),
            nets: net_of_node.get(&id).cloned().unwrap_or_default(),
            sides: self.side_outs(id, net_of_node),
        }
    }

    /// Returns the side outputs node `id` emits, in order of first appearance.
    fn side_outs(&self, id: NodeId, net_of_node: &HashMap<NodeId, Vec<NetOut>>) -> Vec<SideOut> {
        // One slot per tag, fanning out to every stream that reads it.
        let mut sides: Vec<SideOut> = Vec::new();
        for s in &self.graph.nodes {
            let NodeKind::SideOutput { parent, tag } = &s.kind else {
                continue;
            };
            if *parent != id {
                continue;
            }
            let nets = net_of_node.get(&s.id).cloned().unwrap_or_default();
            match sides.iter_mut().find(|x| &x.tag == tag) {
                Some(x) => x.nets.extend(nets),
                None => sides.push(SideOut {
                    tag: tag.clone(),
                    ops: s.out_type.clone(),
                    nets,
                }),
            }
        }
        sides
    }
}

fn build_chain(chain: &[ChainNode], setup: TaskSetup) -> Result<Box<dyn TaskInvokable>, TaskError> {
    let mut writers: Vec<_> = setup.writers.into_iter().map(Some).collect();
    let mut take_nets = |nets: &[NetOut]| -> Result<Vec<NetworkSpec>, TaskError> {
        nets.iter()
            .map(|n| {
                let writer = writers
                    .get_mut(n.writer_index)
                    .and_then(Option::take)
                    .ok_or_else(|| {
                        TaskError::Configuration(format!("missing writer {}", n.writer_index))
                    })?;
                Ok(NetworkSpec {
                    writer,
                    partitioning: n.partitioning,
                    key_hash: n.key_hash.clone(),
                    max_parallelism: n.consumer_max_parallelism,
                    subtask: setup.subtask.subtask,
                })
            })
            .collect()
    };
    let names: Vec<String> = chain.iter().map(|c| c.name.clone()).collect();
    let mut downstream = None;
    for (i, node) in chain.iter().enumerate().rev() {
        let mut ctx = OperatorContext {
            name: node.name.clone(),
            uid: node.uid.clone(),
            restored: setup.restore.clone(),
            index: i,
            subtask: setup.subtask.subtask,
            parallelism: setup.parallelism,
            max_parallelism: setup.max_parallelism,
            key_group_range: KeyGroupRange::for_operator(
                setup.max_parallelism,
                setup.parallelism,
                setup.subtask.subtask,
            ),
            config: setup.config.clone(),
            job: setup.subtask.job,
            metrics: setup.metrics.clone(),
            side_outputs: HashMap::new(),
        };
        for s in &node.sides {
            let nets = take_nets(&s.nets)?;
            ctx.side_outputs
                .insert(s.tag.clone(), s.ops.side_slot(s.ops.fan_out(None, nets)?)?);
        }
        let nets = take_nets(&node.nets)?;
        let out = node.out_type.fan_out(downstream.take(), nets)?;
        match (&node.kind, i) {
            (NodeKind::Source(make), 0) | (NodeKind::TwoInput(make), 0) => {
                return make(&mut ctx, out, names)
            }
            (NodeKind::OneInput(make), 0) => {
                let op = make(&mut ctx, out)?;
                let in_type = node.in_type.as_ref().ok_or_else(|| {
                    TaskError::Configuration(format!("operator '{}' has no input type", node.name))
                })?;
                return in_type.input_head(op, names, node.name.clone());
            }
            (NodeKind::OneInput(make), _) => {
                downstream = Some(make(&mut ctx, out)?);
                ensure_sides_taken(&ctx)?;
            }
            _ => {
                return Err(TaskError::Configuration(format!(
                    "operator '{}' cannot be chained",
                    node.name
                )))
            }
        }
    }
    Err(TaskError::Configuration("empty chain".into()))
}

/// Fails if an operator left side outputs unclaimed: their channels would never end.
fn ensure_sides_taken(ctx: &OperatorContext) -> Result<(), TaskError> {
    match ctx.side_outputs.keys().next() {
        None => Ok(()),
        Some(tag) => Err(TaskError::Configuration(format!(
            "operator '{}' does not emit side output '{tag}'",
            ctx.name
        ))),
    }
}
