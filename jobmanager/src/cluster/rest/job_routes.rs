//! The job routes: `GET /jobs`, `/jobs/overview`, `/jobs/{id}`, `/jobs/{id}/plan`,
//! `/jobs/{id}/vertices/{vid}` and `/jobs/{id}/exceptions`.
//!
//! Invariant: each answers from one job view (graph and snapshot taken together), so the
//! vertices, subtasks and counts of one answer belong to the same run.

use super::model::{
    ExceptionHistory, ExceptionInfo, JobDetails, JobExceptions, JobOverview, JobPlan, JobsList,
    JobsOverview, SubtaskDetails, TaskCounts, TaskTotals, VertexDetails, VertexSummary,
};
use super::{blocking, job_view, Rest, RestError};
use crate::{JobSnapshot, SubtaskStatus};
use axum::extract::{Path, State};
use axum::Json;
use weir_runtime::control::ExecutionState;
use weir_runtime::rpc::messages::{JobStatus, JobSummary};

/// Every job in `weir list --output json`'s shape, each also with Flink's `id` and
/// `status`.
#[utoipa::path(get, path = "/jobs", responses((status = 200, body = JobsList)))]
pub(super) async fn jobs(State(r): State<Rest>) -> Json<JobsList> {
    let list = blocking(move || r.cluster.list()).await;
    let jobs = list
        .iter()
        .map(|s| {
            let mut j = crate::cluster::json::job(s);
            j["id"] = j["job_id"].clone();
            j
        })
        .collect();
    Json(JobsList { jobs })
}

/// Every job with its subtasks by state.
#[utoipa::path(get, path = "/jobs/overview", responses((status = 200, body = JobsOverview)))]
pub(super) async fn overview(State(r): State<Rest>) -> Json<JobsOverview> {
    let jobs = blocking(move || {
        let list = r.cluster.list();
        list.iter()
            .map(|s| overview_of(s, r.cluster.dispatcher().status(s.id).as_ref()))
            .collect()
    })
    .await;
    Json(JobsOverview { jobs })
}

/// One job of the overview; without a snapshot (a job that ended under an earlier leader)
/// its subtasks are unknown.
fn overview_of(s: &JobSummary, snapshot: Option<&JobSnapshot>) -> JobOverview {
    let subtasks = snapshot.map_or(&[][..], |n| &n.subtasks[..]);
    JobOverview {
        jid: s.id.to_string(),
        name: s.name.clone(),
        state: s.status.name().into(),
        start_time: s.submitted_ms,
        end_time: s.ended_ms.unwrap_or(-1),
        duration: duration(s.submitted_ms, s.ended_ms),
        last_modification: s
            .ended_ms
            .or(snapshot.and_then(|n| n.run_started_ms))
            .unwrap_or(s.submitted_ms),
        tasks: TaskTotals {
            total: s.subtasks as usize,
            counts: counts(subtasks.iter()),
        },
    }
}

fn duration(from: i64, to: Option<i64>) -> i64 {
    to.unwrap_or_else(weir_runtime::now_ms) - from
}

fn counts<'a>(subtasks: impl Iterator<Item = &'a SubtaskStatus>) -> TaskCounts {
    let mut c = TaskCounts::default();
    for s in subtasks {
        match s.state {
            ExecutionState::Deploying => c.deploying += 1,
            ExecutionState::Running => c.running += 1,
            ExecutionState::Finished => c.finished += 1,
            ExecutionState::Cancelled => c.canceled += 1,
            ExecutionState::Failed => c.failed += 1,
        }
    }
    c
}

fn state_name(s: ExecutionState) -> &'static str {
    match s {
        ExecutionState::Deploying => "DEPLOYING",
        ExecutionState::Running => "RUNNING",
        ExecutionState::Finished => "FINISHED",
        ExecutionState::Cancelled => "CANCELED",
        ExecutionState::Failed => "FAILED",
    }
}

/// A job with its vertices and subtask counts, and `weir info --output json`'s fields.
#[utoipa::path(get, path = "/jobs/{id}", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobDetails), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn job(
    State(r): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<JobDetails>, RestError> {
    let v = job_view(r, &id).await?;
    let s = &v.summary;
    let started = v.snapshot.run_started_ms.unwrap_or(-1);
    let vertices = v
        .graph
        .vertices
        .iter()
        .map(|vertex| {
            let tasks = counts(
                v.snapshot
                    .subtasks
                    .iter()
                    .filter(|t| t.subtask.vertex == vertex.id),
            );
            VertexSummary {
                id: vertex.id.to_string(),
                name: vertex.name.clone(),
                parallelism: vertex.parallelism,
                max_parallelism: vertex.max_parallelism,
                status: vertex_status(&tasks).into(),
                start_time: started,
                tasks,
            }
        })
        .collect();
    Ok(Json(JobDetails {
        jid: s.id.to_string(),
        name: s.name.clone(),
        state: s.status.name().into(),
        is_stoppable: s.status == JobStatus::Running && v.graph.config.checkpointing.is_some(),
        start_time: s.submitted_ms,
        end_time: s.ended_ms.unwrap_or(-1),
        duration: duration(s.submitted_ms, s.ended_ms),
        now: weir_runtime::now_ms(),
        vertices,
        status_counts: counts(v.snapshot.subtasks.iter()),
        summary: crate::cluster::json::job(s),
    }))
}

/// The least advanced state any subtask of a vertex is in.
fn vertex_status(c: &TaskCounts) -> &'static str {
    if c.failed > 0 {
        "FAILED"
    } else if c.deploying > 0 {
        "DEPLOYING"
    } else if c.running > 0 {
        "RUNNING"
    } else if c.canceled > 0 {
        "CANCELED"
    } else if c.finished > 0 {
        "FINISHED"
    } else {
        "CREATED"
    }
}

/// A job's dataflow: its vertices and the exchanges between them.
#[utoipa::path(get, path = "/jobs/{id}/plan", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobPlan), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn plan(
    State(r): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<JobPlan>, RestError> {
    let v = job_view(r, &id).await?;
    Ok(Json(JobPlan::of(v.summary.id, &v.graph)))
}

/// One vertex with its subtasks: state, run and TaskManager of each.
#[utoipa::path(get, path = "/jobs/{id}/vertices/{vid}",
    params(("id" = String, Path, description = "job id"), ("vid" = String, Path, description = "vertex id")),
    responses((status = 200, body = VertexDetails), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn vertex(
    State(r): State<Rest>,
    Path((id, vid)): Path<(String, String)>,
) -> Result<Json<VertexDetails>, RestError> {
    let hosts = r.clone();
    let v = job_view(r, &id).await?;
    let vertex = super::vertex_of(&v, &vid)?;
    let tms = blocking(move || hosts.cluster.taskmanager_views()).await;
    let started = v.snapshot.run_started_ms.unwrap_or(-1);
    let mut subtasks: Vec<SubtaskDetails> = v
        .snapshot
        .subtasks
        .iter()
        .filter(|t| t.subtask.vertex == vertex.id)
        .map(|t| SubtaskDetails {
            subtask: t.subtask.subtask,
            status: state_name(t.state).into(),
            attempt: v.snapshot.attempt,
            taskmanager_id: t.taskmanager.into(),
            host: tms
                .iter()
                .find(|m| m.id == t.taskmanager)
                .map(|m| m.peer.clone()),
            start_time: started,
        })
        .collect();
    subtasks.sort_by_key(|s| s.subtask);
    Ok(Json(VertexDetails {
        id: vertex.id.to_string(),
        name: vertex.name.clone(),
        parallelism: vertex.parallelism,
        max_parallelism: vertex.max_parallelism,
        now: weir_runtime::now_ms(),
        subtasks,
    }))
}

/// The root causes of the job's failed runs, newest first.
#[utoipa::path(get, path = "/jobs/{id}/exceptions", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = JobExceptions), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn exceptions(
    State(r): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<JobExceptions>, RestError> {
    let v = job_view(r, &id).await?;
    let entries: Vec<ExceptionInfo> = v
        .snapshot
        .exceptions
        .iter()
        .rev()
        .map(|e| ExceptionInfo {
            exception_name: e.cause.kind.name().into(),
            stacktrace: e.cause.to_string(),
            timestamp: e.timestamp_ms,
            task_name: e.cause.operator.clone(),
            subtask: e.cause.subtask,
            attempt: e.attempt,
        })
        .collect();
    let truncated = v.snapshot.exception_count > entries.len() as u64;
    Ok(Json(JobExceptions {
        root_exception: entries.first().map(|e| e.stacktrace.clone()),
        timestamp: entries.first().map(|e| e.timestamp),
        exception_history: ExceptionHistory { entries, truncated },
    }))
}
