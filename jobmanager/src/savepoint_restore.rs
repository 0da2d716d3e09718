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
        let Some(v) = graph
            .vertices
            .iter()
            .find(|v| v.operator_uids.contains(&op.uid))
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
