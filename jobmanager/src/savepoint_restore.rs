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
    let mut unmatched = Vec::new();
    for op in &metadata.operators {
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
