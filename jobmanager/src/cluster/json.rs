//! The JSON shapes of jobs and checkpoints, shared by the REST API and `weir --output json`.
//!
//! Job ids are 16 hex digits and statuses upper-case names, as the tables show them.

use serde_json::{json, Value};
use weir_runtime::rpc::messages::{CheckpointSummary, JobSummary};
use weir_runtime::JobId;

/// One job.
pub fn job(s: &JobSummary) -> Value {
    json!({
        "job_id": s.id.to_string(),
        "name": s.name,
        "status": s.status.name(),
        "slots": s.slots,
        "subtasks": s.subtasks,
        "restarts": s.restarts,
        "submitted_ms": s.submitted_ms,
        "ended_ms": s.ended_ms,
        "taskmanagers": s.taskmanagers,
        "message": s.message,
        "last_checkpoint": s.last_checkpoint,
    })
}

/// Every job.
pub fn jobs(list: &[JobSummary]) -> Value {
    json!({ "jobs": list.iter().map(job).collect::<Vec<_>>() })
}

/// A job's completed checkpoints.
pub fn checkpoints(id: JobId, list: &[CheckpointSummary]) -> Value {
    json!({
        "job_id": id.to_string(),
        "checkpoints": list.iter().map(|c| json!({
            "id": c.id,
            "size": c.size,
            "incremental_size": c.incremental_size,
            "duration_ms": c.duration_ms,
            "alignment_ms": c.alignment_ms,
        })).collect::<Vec<_>>(),
    })
}
