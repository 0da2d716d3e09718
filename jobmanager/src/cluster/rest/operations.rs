//! The REST API's actions: `PATCH /jobs/{id}?mode=cancel`, and the asynchronous ones,
//! as Flink runs them: `POST /jobs/{id}/savepoints`, `/stop` and `/checkpoints` answer
//! `202` with a trigger id at once; `GET /jobs/{id}/savepoints/{triggerid}` (or
//! `.../checkpoints/{triggerid}`) says `IN_PROGRESS` until the operation completed, then
//! its location or why it failed.
//!
//! Invariants: a POST carries a JSON body (`Content-Type: application/json`, which a page
//! of another site cannot send without the browser asking first), so no web page can take
//! actions on a local JobManager; a trigger id names one operation of one job; the outcome of an operation is
//! kept until [`KEPT`] newer ones completed; an operation waits (on a blocking thread) at
//! most [`WAIT`], after which a request not triggered yet is withdrawn and the operation
//! fails.

use super::model::{
    CheckpointBody, Empty, FailureCause, OperationOutcome, OperationResult, OperationStatus,
    SavepointBody, StopBody, TriggerResponse,
};
use super::{job_id, Rest, RestError};
use crate::cluster::Cluster;
use crate::TriggerRequest;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tracing::info;
use weir_runtime::JobId;

/// The longest an operation waits for its savepoint or checkpoint.
const WAIT: Duration = Duration::from_secs(600);
/// How many completed operations keep their outcome.
const KEPT: usize = 256;

/// Where one operation is.
#[derive(Clone, Debug)]
enum Outcome {
    InProgress,
    Done(Result<String, (String, String)>),
}

/// The asynchronous operations of this REST API, by trigger id.
#[derive(Default)]
pub(crate) struct Operations {
    next: AtomicU64,
    state: Mutex<OperationTable>,
}

#[derive(Default)]
struct OperationTable {
    by_id: HashMap<String, (JobId, Outcome)>,
    /// Completed operations, oldest first.
    completed: VecDeque<String>,
}

impl Operations {
    fn start(&self, job: JobId) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Unique per server; unguessable enough to not be mistaken for another's.
        let salt = weir_runtime::now_ms() as u64 ^ (u64::from(std::process::id()) << 32);
        let id = format!("{:016x}{:016x}", job.0 ^ salt.rotate_left(17), n);
        self.table()
            .by_id
            .insert(id.clone(), (job, Outcome::InProgress));
        id
    }

    fn finish(&self, id: &str, result: Result<String, (String, String)>) {
        let mut t = self.table();
        if let Some(entry) = t.by_id.get_mut(id) {
            entry.1 = Outcome::Done(result);
            t.completed.push_back(id.to_string());
        }
        while t.completed.len() > KEPT {
            if let Some(old) = t.completed.pop_front() {
                t.by_id.remove(&old);
            }
        }
    }

    fn get(&self, job: JobId, id: &str) -> Option<Outcome> {
        match self.table().by_id.get(id) {
            Some((j, o)) if *j == job => Some(o.clone()),
            _ => None,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, OperationTable> {
        self.state.lock().expect("operations poisoned")
    }
}

/// Starts `request` on `job` on a blocking thread; answers its trigger id.
fn trigger(r: &Rest, job: JobId, request: TriggerRequest) -> (StatusCode, Json<TriggerResponse>) {
    let id = r.operations.start(job);
    info!(job_id = %job, trigger = %id, ?request, "REST trigger");
    let (cluster, operations, trigger) = (r.cluster.clone(), r.operations.clone(), id.clone());
    tokio::task::spawn_blocking(move || {
        let result = run(&cluster, job, request);
        operations.finish(&trigger, result);
    });
    (
        StatusCode::ACCEPTED,
        Json(TriggerResponse { request_id: id }),
    )
}

/// Asks the job and waits (bounded) for the answer.
fn run(cluster: &Cluster, job: JobId, request: TriggerRequest) -> Result<String, (String, String)> {
    let failed = |class: &str, e: &dyn std::fmt::Display| (class.to_string(), e.to_string());
    let handle = cluster
        .dispatcher()
        .trigger(job, request)
        .map_err(|e| failed("refused", &e))?;
    match handle.wait(WAIT) {
        Some(Ok(location)) => Ok(location),
        Some(Err(e)) => Err(failed("failed", &e)),
        None => {
            cluster.dispatcher().withdraw_savepoint(&handle);
            let why = format!("no answer within {} s", WAIT.as_secs());
            Err(failed("timed-out", &why))
        }
    }
}

/// Checks that job `id` exists and has not ended.
async fn running(r: &Rest, id: &str) -> Result<JobId, RestError> {
    let job = job_id(id)?;
    let c = r.cluster.clone();
    let summary = super::blocking(move || c.summary(job))
        .await
        .ok_or_else(|| RestError::not_found(format!("unknown job {job}")))?;
    if summary.status.is_terminal() {
        return Err(RestError::conflict(format!(
            "job {job} has already ended ({})",
            summary.status.name()
        )));
    }
    Ok(job)
}

/// The query of `PATCH /jobs/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(super) struct CancelQuery {
    /// `cancel` (the default; Flink's deprecated `stop` is refused: use `POST /jobs/{id}/stop`).
    mode: Option<String>,
}

/// Cancels a job.
#[utoipa::path(patch, path = "/jobs/{id}", params(("id" = String, Path, description = "job id"), CancelQuery),
    responses((status = 202, body = Empty), (status = 400, body = super::model::ErrorBody),
        (status = 404, body = super::model::ErrorBody), (status = 409, body = super::model::ErrorBody)))]
pub(super) async fn cancel(
    State(r): State<Rest>,
    Path(id): Path<String>,
    Query(q): Query<CancelQuery>,
) -> Result<(StatusCode, Json<Empty>), RestError> {
    match q.mode.as_deref() {
        None | Some("cancel") => {}
        Some(other) => {
            return Err(RestError::bad_request(format!(
                "mode '{other}' is not supported: use mode=cancel, or POST /jobs/{id}/stop"
            )))
        }
    }
    let job = running(&r, &id).await?;
    let c = r.cluster.clone();
    super::blocking(move || c.cancel(job))
        .await
        .map_err(|e| RestError::conflict(e.to_string()))?;
    Ok((StatusCode::ACCEPTED, Json(Empty {})))
}

/// Takes a savepoint (`cancel-job`: then stops the job); poll the trigger id.
#[utoipa::path(post, path = "/jobs/{id}/savepoints", params(("id" = String, Path, description = "job id")),
    request_body(content = SavepointBody, description = "a JSON object; its fields are optional"),
    responses((status = 202, body = TriggerResponse), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)))]
pub(super) async fn savepoint(
    State(r): State<Rest>,
    Path(id): Path<String>,
    Json(body): Json<SavepointBody>,
) -> Result<(StatusCode, Json<TriggerResponse>), RestError> {
    let job = running(&r, &id).await?;
    let target = body.target_directory;
    let request = if body.cancel_job {
        TriggerRequest::Stop {
            target,
            drain: false,
        }
    } else {
        TriggerRequest::Savepoint { target }
    };
    Ok(trigger(&r, job, request))
}

/// Stops a job with a savepoint (`drain`: after the final watermark); poll the trigger id.
#[utoipa::path(post, path = "/jobs/{id}/stop", params(("id" = String, Path, description = "job id")),
    request_body(content = StopBody, description = "a JSON object; its fields are optional"),
    responses((status = 202, body = TriggerResponse), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)))]
pub(super) async fn stop(
    State(r): State<Rest>,
    Path(id): Path<String>,
    Json(body): Json<StopBody>,
) -> Result<(StatusCode, Json<TriggerResponse>), RestError> {
    let job = running(&r, &id).await?;
    let request = TriggerRequest::Stop {
        target: body.target_directory,
        drain: body.drain,
    };
    Ok(trigger(&r, job, request))
}

/// Triggers a checkpoint; poll the trigger id.
#[utoipa::path(post, path = "/jobs/{id}/checkpoints", params(("id" = String, Path, description = "job id")),
    request_body(content = CheckpointBody, description = "a JSON object"),
    responses((status = 202, body = TriggerResponse), (status = 404, body = super::model::ErrorBody),
        (status = 409, body = super::model::ErrorBody)))]
pub(super) async fn checkpoint(
    State(r): State<Rest>,
    Path(id): Path<String>,
    Json(_): Json<CheckpointBody>,
) -> Result<(StatusCode, Json<TriggerResponse>), RestError> {
    let job = running(&r, &id).await?;
    Ok(trigger(&r, job, TriggerRequest::Checkpoint))
}

/// Where an asynchronous operation (savepoint, stop, checkpoint) is.
#[utoipa::path(get, path = "/jobs/{id}/savepoints/{triggerid}",
    params(("id" = String, Path, description = "job id"), ("triggerid" = String, Path, description = "trigger id")),
    responses((status = 200, body = OperationResult), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn status(
    State(r): State<Rest>,
    Path((id, trigger)): Path<(String, String)>,
) -> Result<Json<OperationResult>, RestError> {
    let job = job_id(&id)?;
    let outcome = r
        .operations
        .get(job, &trigger)
        .ok_or_else(|| RestError::not_found(format!("job {job} has no operation '{trigger}'")))?;
    Ok(Json(match outcome {
        Outcome::InProgress => OperationResult {
            status: OperationStatus {
                id: "IN_PROGRESS".into(),
            },
            operation: None,
        },
        Outcome::Done(result) => OperationResult {
            status: OperationStatus {
                id: "COMPLETED".into(),
            },
            operation: Some(outcome_of(result)),
        },
    }))
}

/// The same as `GET /jobs/{id}/savepoints/{triggerid}`, on Flink's path for checkpoints.
#[utoipa::path(get, path = "/jobs/{id}/checkpoints/{triggerid}",
    params(("id" = String, Path, description = "job id"), ("triggerid" = String, Path, description = "trigger id")),
    responses((status = 200, body = OperationResult), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn checkpoint_status(
    state: State<Rest>,
    path: Path<(String, String)>,
) -> Result<Json<OperationResult>, RestError> {
    status(state, path).await
}

fn outcome_of(result: Result<String, (String, String)>) -> OperationOutcome {
    match result {
        Ok(location) => OperationOutcome {
            checkpoint_id: checkpoint_id(&location),
            location: Some(location),
            failure_cause: None,
        },
        Err((class, why)) => OperationOutcome {
            location: None,
            checkpoint_id: None,
            failure_cause: Some(FailureCause {
                class,
                stack_trace: why,
            }),
        },
    }
}

/// The id of a checkpoint location (`.../chk-<n>`); `None` for a savepoint.
fn checkpoint_id(location: &str) -> Option<u64> {
    location.rsplit_once("/chk-")?.1.parse().ok()
}
