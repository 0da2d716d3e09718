//! Checks a savepoint against the job that is to start from it.
//!
//! Invariant: a job starts from a savepoint only if every operator state in it belongs to
//! an operator of the job (matched by `uid`), unless non-restored state is allowed, and
//! keyed state keeps its number of key groups.

use crate::JobManagerError;
use tracing::{info, warn};
use weir_runtime::control::RestoreSpec;
use weir_runtime::JobGraph;

/// Opens and checks the savepoint `settings` names for `graph`: every operator state in it
/// must belong to an operator of the job (matched by `uid`) unless
/// `allow_non_restored_state`, and keyed state keeps its number of key groups.
pub(crate) fn savepoint_restore(
    graph: &JobGraph,
    settings: &weir_runtime::SavepointRestoreSettings,
) -> Result<RestoreSpec, JobManagerError> {
    let refuse = |reason: String| JobManagerError::Savepoint {
        job: graph.name.clone(),
        path: settings.path.clone(),
        reason,
    };
    let (url, metadata) = weir_runtime::checkpoint::open_savepoint(&settings.path)
        .map_err(|e| refuse(e.to_string()))?;
    check_in_flight(graph, &metadata).map_err(refuse)?;
    let mut unmatched = Vec::new();
    for op in &metadata.operators {
        // Data in flight of an unaligned checkpoint belongs to a job vertex; its tasks
        // refuse it at another parallelism.
        if let Some(vertex) = weir_runtime::checkpoint::channel_state::vertex_of(&op.uid) {
            if (vertex as usize) >= graph.vertices.len() {
                unmatched.push(op.uid.as_str());
            }
            continue;
        }
        // Broadcast state belongs to the operator whose uid its name starts with.
        let owner = weir_runtime::checkpoint::broadcast_state::owner_of(&op.uid).unwrap_or(&op.uid);
        let Some(v) = graph
            .vertices
            .iter()
            .find(|v| v.operator_uids.iter().any(|u| u == owner))
        else {
            unmatched.push(op.uid.as_str());
            continue;
        };
        let keyed = op
            .subtasks
            .iter()
            .any(|h| h.key_group_end > h.key_group_start);
        if keyed && op.max_parallelism != v.max_parallelism {
            return Err(refuse(format!(
                "operator '{}' was snapshotted with max parallelism {} and has {} now; the number of key groups cannot change",
                op.uid, op.max_parallelism, v.max_parallelism
            )));
        }
    }
    if !unmatched.is_empty() {
        let ours: Vec<&str> = graph
            .vertices
            .iter()
            .flat_map(|v| v.operator_uids.iter().map(String::as_str))
            .collect();
        let note = if metadata.job_name == graph.name {
            String::new()
        } else {
            format!(" (it was taken from job '{}')", metadata.job_name)
        };
        if settings.allow_non_restored_state {
            warn!(job = %graph.name, savepoint = %settings.path, operators = ?unmatched, "skipping savepoint state of operators the job does not have (allow_non_restored_state)");
        } else {
            return Err(refuse(format!(
                "it has state for operators this job does not have: {}{note}; this job's operators are: {}; allow non-restored state (--allow-non-restored-state) to skip it",
                unmatched.join(", "),
                ours.join(", ")
            )));
        }
    }
    info!(job = %graph.name, savepoint = %url, checkpoint = metadata.checkpoint, "restoring from savepoint");
    Ok(RestoreSpec {
        storage: url,
        dir: String::new(),
        metadata,
    })
}

/// Refuses a checkpoint that holds data in flight (an unaligned checkpoint's) unless every
/// job vertex it has in-flight data for runs at the parallelism it was taken at: the data
/// belongs to channels between subtasks, which change with any vertex's parallelism.
fn check_in_flight(
    graph: &JobGraph,
    metadata: &weir_runtime::checkpoint::CheckpointMetadata,
) -> Result<(), String> {
    use weir_runtime::checkpoint::channel_state::{empty_state_file_size, vertex_of};
    let empty = empty_state_file_size();
    let channel_states = || {
        metadata
            .operators
            .iter()
            .filter_map(|op| Some((vertex_of(&op.uid)?, op)))
    };
    let holds_data = channel_states().any(|(_, op)| op.subtasks.iter().any(|h| h.size > empty));
    if !holds_data {
        return Ok(());
    }
    for (vertex, op) in channel_states() {
        let now = graph.vertices.get(vertex as usize).map(|v| v.parallelism);
        if now != Some(op.parallelism) {
            return Err(format!(
                "checkpoint {} holds data in flight of an unaligned checkpoint ('{}', taken at parallelism {}), which restores only into the same job at the same parallelism{}; restore from a savepoint (savepoints are aligned) to change it",
                metadata.checkpoint,
                op.uid,
                op.parallelism,
                match now {
                    Some(p) => format!(" (the vertex now runs at {p})"),
                    None => " (the job has no such vertex now)".into(),
                }
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_runtime::checkpoint::channel_state::{empty_state_file_size, input_uid, output_uid};
    use weir_runtime::checkpoint::{CheckpointMetadata, OperatorStateHandles, SubtaskStateHandle};
    use weir_runtime::{JobConfig, JobId, JobVertex};

    fn graph(parallelism: [u16; 2]) -> JobGraph {
        let vertex = |id: u32| JobVertex {
            id,
            name: format!("v{id}"),
            parallelism: parallelism[id as usize],
            max_parallelism: 128,
            is_source: id == 0,
            is_sink: id == 1,
            operator_uids: Vec::new(),
            factory: None,
        };
        JobGraph {
            name: "unaligned".into(),
            vertices: vec![vertex(0), vertex(1)],
            edges: Vec::new(),
            config: JobConfig::default(),
        }
    }

    /// A checkpoint of vertex 0's outputs and vertex 1's inputs at parallelism 2, whose
    /// in-flight state files have `sizes`.
    fn metadata(sizes: [u64; 2]) -> CheckpointMetadata {
        let op = |uid: String, size: u64| OperatorStateHandles {
            uid,
            parallelism: 2,
            max_parallelism: 128,
            subtasks: (0..2)
                .map(|i| SubtaskStateHandle::new(&format!("f{i}"), i, size, (0, 0)))
                .collect(),
        };
        CheckpointMetadata {
            job: JobId(3),
            job_name: "unaligned".into(),
            checkpoint: 9,
            timestamp_ms: 0,
            savepoint: false,
            operators: vec![op(output_uid(0, 0), sizes[0]), op(input_uid(1), sizes[1])],
        }
    }

    #[test]
    fn data_in_flight_restores_only_at_the_parallelism_it_was_taken_at() {
        let empty = empty_state_file_size();
        assert!(check_in_flight(&graph([2, 2]), &metadata([empty + 40, empty])).is_ok());
        // Without data in flight any parallelism goes.
        assert!(check_in_flight(&graph([3, 1]), &metadata([empty, empty])).is_ok());
        let err = check_in_flight(&graph([2, 3]), &metadata([empty, empty + 40])).unwrap_err();
        assert!(
            err.contains("parallelism 2")
                && err.contains("now runs at 3")
                && err.contains("savepoint"),
            "{err}"
        );
        let mut one_vertex = graph([2, 2]);
        one_vertex.vertices.pop();
        let err = check_in_flight(&one_vertex, &metadata([empty + 40, empty])).unwrap_err();
        assert!(err.contains("no such vertex"), "{err}");
    }
}
