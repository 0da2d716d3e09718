//! `GET /jobs/{id}/checkpoints` (counts, a summary of the completed ones, the latest of
//! each kind and the history, failed ones included, in Flink's shape, beside the list of
//! completed checkpoints that `weir checkpoints --output json` prints) and
//! `GET /jobs/{id}/checkpoints/config`.
//!
//! Invariant: both read the job's published snapshot and graph only, so they answer the
//! same after the job ended, cancelled or failed.

use super::{job_view, Rest, RestError};
use crate::{CheckpointHistory, CheckpointState, CheckpointStats, CompletedCheckpoint};
use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use weir_runtime::CheckpointingMode;

/// Checkpoints by outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointCounts {
    /// Runs that restored a checkpoint or savepoint.
    pub restored: u64,
    /// Checkpoints triggered.
    pub total: u64,
    /// Neither completed nor failed yet.
    pub in_progress: u64,
    /// Completed.
    pub completed: u64,
    /// Failed.
    pub failed: u64,
}

/// Minimum, maximum and average of one figure over the completed checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct MinMaxAvg {
    /// The least.
    pub min: u64,
    /// The greatest.
    pub max: u64,
    /// The mean, rounded down.
    pub avg: u64,
}

impl MinMaxAvg {
    fn of(values: impl Iterator<Item = u64>) -> Self {
        let (mut min, mut max, mut sum, mut n) = (u64::MAX, 0, 0u128, 0u64);
        for v in values {
            min = min.min(v);
            max = max.max(v);
            sum += u128::from(v);
            n += 1;
        }
        match n {
            0 => Self {
                min: 0,
                max: 0,
                avg: 0,
            },
            _ => Self {
                min,
                max,
                avg: (sum / u128::from(n)) as u64,
            },
        }
    }
}

/// Figures over every completed checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointsSummary {
    /// Bytes each checkpoint stored itself.
    pub checkpointed_size: MinMaxAvg,
    /// Bytes of each checkpoint's whole state.
    pub state_size: MinMaxAvg,
    /// Trigger to completion, in milliseconds.
    pub end_to_end_duration: MinMaxAvg,
    /// The longest alignment of any task, in milliseconds.
    pub alignment_duration: MinMaxAvg,
}

/// One checkpoint of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointEntry {
    /// Its id.
    pub id: u64,
    /// `IN_PROGRESS`, `COMPLETED` or `FAILED`.
    pub status: CheckpointState,
    /// Whether it is a savepoint.
    pub is_savepoint: bool,
    /// `CHECKPOINT` or `SAVEPOINT`.
    pub checkpoint_type: String,
    /// When it was triggered.
    pub trigger_timestamp: i64,
    /// When the latest acknowledgement arrived, or -1.
    pub latest_ack_timestamp: i64,
    /// Bytes of its whole state.
    pub state_size: u64,
    /// Bytes it stored itself.
    pub checkpointed_size: u64,
    /// Trigger to completion (or failure), in milliseconds; -1 while in progress.
    pub end_to_end_duration: i64,
    /// The longest alignment of any task, in milliseconds.
    pub alignment_duration: u64,
    /// Subtasks that take part.
    pub num_subtasks: usize,
    /// Subtasks that acknowledged it.
    pub num_acknowledged_subtasks: usize,
    /// Where it is stored, once completed.
    pub external_path: Option<String>,
    /// Why it failed.
    pub failure_message: Option<String>,
}

impl From<&CheckpointStats> for CheckpointEntry {
    fn from(s: &CheckpointStats) -> Self {
        Self {
            id: s.id,
            status: s.state,
            is_savepoint: s.savepoint,
            checkpoint_type: if s.savepoint {
                "SAVEPOINT"
            } else {
                "CHECKPOINT"
            }
            .into(),
            trigger_timestamp: s.trigger_timestamp_ms,
            latest_ack_timestamp: s.latest_ack_timestamp_ms.unwrap_or(-1),
            state_size: s.size,
            checkpointed_size: s.incremental_size,
            end_to_end_duration: s.duration_ms.map_or(-1, |d| d as i64),
            alignment_duration: s.alignment_ms,
            num_subtasks: s.num_subtasks,
            num_acknowledged_subtasks: s.num_acknowledged,
            external_path: s.external_path.clone(),
            failure_message: s.failure.clone(),
        }
    }
}

/// The checkpoint a run restored.
#[derive(Debug, Serialize, ToSchema)]
pub struct RestoredEntry {
    /// Its id.
    pub id: u64,
    /// When it was restored.
    pub restore_timestamp: i64,
    /// Whether it was a savepoint.
    pub is_savepoint: bool,
    /// Where it is stored.
    pub external_path: String,
}

/// The latest checkpoint of each kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestCheckpoints {
    /// The latest completed checkpoint.
    pub completed: Option<CheckpointEntry>,
    /// The latest completed savepoint.
    pub savepoint: Option<CheckpointEntry>,
    /// The latest failed one.
    pub failed: Option<CheckpointEntry>,
    /// The latest restore.
    pub restored: Option<RestoredEntry>,
}

/// One completed checkpoint as `weir checkpoints --output json` prints it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompletedEntry {
    /// Its id.
    pub id: u64,
    /// Bytes of its whole state.
    pub size: u64,
    /// Bytes it stored itself.
    pub incremental_size: u64,
    /// Trigger to completion.
    pub duration_ms: u64,
    /// The longest alignment.
    pub alignment_ms: u64,
}

/// `GET /jobs/{id}/checkpoints`.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobCheckpoints {
    /// The job's id.
    pub job_id: String,
    /// Checkpoints by outcome.
    pub counts: CheckpointCounts,
    /// Figures over the completed checkpoints.
    pub summary: CheckpointsSummary,
    /// The latest of each kind.
    pub latest: LatestCheckpoints,
    /// The most recent checkpoints, newest first.
    pub history: Vec<CheckpointEntry>,
    /// Every completed checkpoint, oldest first.
    pub checkpoints: Vec<CompletedEntry>,
}

/// Builds the checkpoints body of job `id` from its history and completed checkpoints.
pub(crate) fn job_checkpoints(
    id: &str,
    h: &CheckpointHistory,
    completed: &[CompletedCheckpoint],
) -> JobCheckpoints {
    let latest = |f: &dyn Fn(&CheckpointStats) -> bool| {
        h.entries().rev().find(|e| f(e)).map(CheckpointEntry::from)
    };
    JobCheckpoints {
        job_id: id.to_string(),
        counts: CheckpointCounts {
            restored: h.restored,
            total: h.triggered,
            in_progress: h.in_progress(),
            completed: h.completed,
            failed: h.failed,
        },
        summary: CheckpointsSummary {
            checkpointed_size: MinMaxAvg::of(completed.iter().map(|c| c.incremental_size)),
            state_size: MinMaxAvg::of(completed.iter().map(|c| c.size)),
            end_to_end_duration: MinMaxAvg::of(
                completed.iter().map(|c| c.duration.as_millis() as u64),
            ),
            alignment_duration: MinMaxAvg::of(completed.iter().map(|c| c.max_alignment_ms)),
        },
        latest: LatestCheckpoints {
            completed: latest(&|e| e.state == CheckpointState::Completed && !e.savepoint),
            savepoint: latest(&|e| e.state == CheckpointState::Completed && e.savepoint),
            failed: latest(&|e| e.state == CheckpointState::Failed),
            restored: h.latest_restore.as_ref().map(|r| RestoredEntry {
                id: r.id,
                restore_timestamp: r.restore_timestamp_ms,
                is_savepoint: r.savepoint,
                external_path: r.external_path.clone(),
            }),
        },
        history: h.entries().rev().map(CheckpointEntry::from).collect(),
        checkpoints: completed
            .iter()
            .map(|c| CompletedEntry {
                id: c.checkpoint,
                size: c.size,
                incremental_size: c.incremental_size,
                duration_ms: c.duration.as_millis() as u64,
                alignment_ms: c.max_alignment_ms,
            })
            .collect(),
    }
}

/// A job's checkpoint counts, summary, latest checkpoints and history.
#[utoipa::path(get, path = "/jobs/{id}/checkpoints", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobCheckpoints), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn checkpoints(
    State(r): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<JobCheckpoints>, RestError> {
    let v = job_view(r, &id).await?;
    let s = &v.snapshot;
    Ok(Json(job_checkpoints(
        &v.summary.id.to_string(),
        &s.history,
        &s.checkpoints,
    )))
}

/// Externalized checkpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct Externalization {
    /// Completed checkpoints stay in storage (`state.checkpoints.num-retained` of them).
    pub enabled: bool,
    /// Whether they are deleted when the job is cancelled (no: they are kept).
    pub delete_on_cancellation: bool,
}

/// `GET /jobs/{id}/checkpoints/config`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointConfigBody {
    /// `exactly_once` or `at_least_once`.
    pub mode: String,
    /// `execution.checkpointing.interval`, in milliseconds.
    pub interval: u64,
    /// `execution.checkpointing.timeout`, in milliseconds.
    pub timeout: u64,
    /// `execution.checkpointing.min-pause`, in milliseconds.
    pub min_pause: u64,
    /// `execution.checkpointing.max-concurrent-checkpoints`.
    pub max_concurrent: usize,
    /// `execution.checkpointing.tolerable-failed-checkpoints`.
    pub tolerable_failed_checkpoints: u32,
    /// `state.checkpoints.num-retained`.
    pub num_retained: usize,
    /// Externalized checkpoints.
    pub externalization: Externalization,
    /// The state backend (`memory` or `rocksdb`, `state.backend.type`).
    pub state_backend: String,
    /// `state.checkpoints.dir`.
    pub checkpoint_storage: String,
    /// `state.savepoints.dir`.
    pub savepoint_storage: Option<String>,
    /// Whether checkpoints are unaligned (`execution.checkpointing.unaligned.enabled`).
    pub unaligned_checkpoints: bool,
    /// Whether checkpoints go on after some tasks finished.
    pub checkpoints_after_tasks_finish: bool,
}

/// A job's checkpointing settings; 404 if it does not checkpoint.
#[utoipa::path(get, path = "/jobs/{id}/checkpoints/config", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = CheckpointConfigBody), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn config(
    State(r): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<CheckpointConfigBody>, RestError> {
    let v = job_view(r, &id).await?;
    let job = v.summary.id;
    let Some(c) = &v.graph.config.checkpointing else {
        return Err(RestError::not_found(format!(
            "job {job} does not checkpoint (execution.checkpointing.interval is not set)"
        )));
    };
    Ok(Json(CheckpointConfigBody {
        mode: match c.mode {
            CheckpointingMode::ExactlyOnce => "exactly_once",
            CheckpointingMode::AtLeastOnce => "at_least_once",
        }
        .into(),
        interval: c.interval.as_millis() as u64,
        timeout: c.timeout.as_millis() as u64,
        min_pause: c.min_pause.as_millis() as u64,
        max_concurrent: c.max_concurrent,
        tolerable_failed_checkpoints: c.tolerable_failures,
        num_retained: c.retained,
        externalization: Externalization {
            enabled: true,
            delete_on_cancellation: false,
        },
        state_backend: v.graph.config.state_backend.kind.name().to_string(),
        checkpoint_storage: c.dir.clone(),
        savepoint_storage: c.savepoint_dir.clone(),
        unaligned_checkpoints: c.unaligned,
        checkpoints_after_tasks_finish: true,
    }))
}
