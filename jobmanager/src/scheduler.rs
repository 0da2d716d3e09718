//! Places subtasks into TaskManager slots and computes where every channel ends.
//!
//! Slot sharing, as in Flink: subtask `i` of every vertex goes into shared slot `i`, so a job
//! needs as many slots as its highest parallelism. Slots are taken round-robin over
//! TaskManagers (first slot of each, then the second, ...) so that parallel subtasks spread
//! over machines. The result is a pure function of the graph and the TaskManager list.

use thiserror::Error;
use weir_runtime::control::{
    ChannelTarget, GateSpec, OutputSpec, TaskDeployment, TaskManagerId, TaskManagerInfo,
};
use weir_runtime::{GateAddress, JobGraph, JobId, SubtaskId, VertexId};

/// Why a job cannot be scheduled.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ScheduleError {
    /// Fewer free slots than the job's highest parallelism.
    #[error("job '{job}' needs {needed} slots but the cluster offers {available}")]
    NotEnoughSlots {
        /// Job name.
        job: String,
        /// Slots required.
        needed: usize,
        /// Slots offered.
        available: usize,
    },
}

/// Returns one deployment per subtask, with the TaskManager that should run it.
pub fn schedule(
    job: JobId,
    graph: &JobGraph,
    taskmanagers: &[TaskManagerInfo],
) -> Result<Vec<(TaskManagerId, TaskDeployment)>, ScheduleError> {
    let needed = graph
        .vertices
        .iter()
        .map(|v| v.parallelism as usize)
        .max()
        .unwrap_or(0);
    let slots = round_robin_slots(taskmanagers);
    if slots.len() < needed {
        return Err(ScheduleError::NotEnoughSlots {
            job: graph.name.clone(),
            needed,
            available: slots.len(),
        });
    }
    let mut out = Vec::with_capacity(graph.subtask_count());
    for v in &graph.vertices {
        let gates = gate_specs(graph, v.id);
        for s in 0..v.parallelism {
            let deployment = TaskDeployment {
                subtask: SubtaskId {
                    job,
                    vertex: v.id,
                    subtask: s,
                },
                name: v.name.clone(),
                parallelism: v.parallelism,
                max_parallelism: v.max_parallelism,
                is_source: v.is_source,
                gates: gates.clone(),
                outputs: output_specs(job, graph, &slots, v.id, s),
                attempt: 0,
                restore: None,
            };
            out.push((slots[s as usize].id, deployment));
        }
    }
    Ok(out)
}

/// Returns the cluster's slots in the order shared slots take them: the first slot of each
/// TaskManager, then the second, and so on.
fn round_robin_slots(taskmanagers: &[TaskManagerInfo]) -> Vec<&TaskManagerInfo> {
    let max_slots = taskmanagers.iter().map(|t| t.slots).max().unwrap_or(0);
    let mut slots: Vec<&TaskManagerInfo> = Vec::new();
    for round in 0..max_slots {
        for tm in taskmanagers {
            if round < tm.slots {
                slots.push(tm);
            }
        }
    }
    slots
}

/// Returns the input gates of every subtask of `vertex`, one per input edge, each with one
/// channel per producer subtask.
fn gate_specs(graph: &JobGraph, vertex: VertexId) -> Vec<GateSpec> {
    graph
        .inputs_of(vertex)
        .iter()
        .map(|e| GateSpec {
            channels: graph.vertices[e.source as usize].parallelism as u32,
            input: e.target_input,
        })
        .collect()
}

/// Returns the outputs of subtask `subtask` of `vertex`: for each output edge, a channel to
/// every consumer subtask, in the slot that subtask shares.
fn output_specs(
    job: JobId,
    graph: &JobGraph,
    slots: &[&TaskManagerInfo],
    vertex: VertexId,
    subtask: u16,
) -> Vec<OutputSpec> {
    graph
        .outputs_of(vertex)
        .into_iter()
        .map(|e| {
            let consumer = &graph.vertices[e.target as usize];
            let targets = (0..consumer.parallelism)
                .map(|c| {
                    let tm = slots[c as usize];
                    ChannelTarget {
                        gate: GateAddress {
                            subtask: SubtaskId {
                                job,
                                vertex: consumer.id,
                                subtask: c,
                            },
                            gate: e.target_gate,
                            // The TaskManager stamps the deployment's attempt.
                            attempt: 0,
                        },
                        channel: subtask as u32,
                        taskmanager: tm.id,
                        data_address: tm.data_address,
                    }
                })
                .collect();
            OutputSpec {
                partitioning: e.partitioning,
                targets,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use weir_runtime::invokable::{TaskInvokable, TaskSetup};
    use weir_runtime::{JobConfig, JobEdge, JobVertex, Partitioning, TaskError};

    fn vertex(id: u32, p: u16) -> JobVertex {
        JobVertex {
            id,
            name: format!("v{id}"),
            parallelism: p,
            max_parallelism: 128,
            is_source: id == 0,
            is_sink: id == 1,
            operator_uids: Vec::new(),
            factory: Some(Arc::new(
                |_s: TaskSetup| -> Result<Box<dyn TaskInvokable>, TaskError> {
                    Err(TaskError::Configuration("unused".into()))
                },
            )),
        }
    }

    fn tm(id: u32, slots: u32) -> TaskManagerInfo {
        TaskManagerInfo {
            id,
            slots,
            data_address: format!("127.0.0.1:{}", 7000 + id).parse().unwrap(),
        }
    }

    fn graph() -> JobGraph {
        JobGraph {
            name: "g".into(),
            vertices: vec![vertex(0, 2), vertex(1, 3)],
            edges: vec![JobEdge {
                source: 0,
                source_output: 0,
                target: 1,
                target_gate: 0,
                target_input: 0,
                partitioning: Partitioning::Hash,
            }],
            config: JobConfig::default(),
        }
    }

    #[test]
    fn subtasks_spread_round_robin_over_taskmanagers() {
        let d = schedule(JobId(1), &graph(), &[tm(0, 2), tm(1, 2)]).unwrap();
        let placed: Vec<_> = d
            .iter()
            .map(|(t, d)| (d.subtask.vertex, d.subtask.subtask, *t))
            .collect();
        assert_eq!(
            placed,
            vec![(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 1, 1), (1, 2, 0)]
        );
    }

    #[test]
    fn every_producer_has_a_channel_to_every_consumer_named_by_its_index() {
        let d = schedule(JobId(1), &graph(), &[tm(0, 2), tm(1, 2)]).unwrap();
        let (_, producer1) = &d[1];
        assert_eq!(producer1.outputs[0].targets.len(), 3);
        assert!(producer1.outputs[0].targets.iter().all(|t| t.channel == 1));
        let (_, consumer) = &d[2];
        assert_eq!(
            consumer.gates,
            vec![GateSpec {
                channels: 2,
                input: 0
            }]
        );
    }

    #[test]
    fn too_few_slots_is_an_error_naming_the_numbers() {
        let err = schedule(JobId(1), &graph(), &[tm(0, 1), tm(1, 1)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job 'g' needs 3 slots but the cluster offers 2"
        );
    }
}
