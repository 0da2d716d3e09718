//! The JobManager's REST API (read-only): `GET /jobs`, `GET /jobs/{id}`,
//! `GET /jobs/{id}/checkpoints` and `GET /taskmanagers`, answering JSON in the shapes of
//! [`super::json`]. An unknown or malformed job id is a 404 with an `error` field.

use super::Cluster;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use weir_runtime::JobId;

type Reply = (StatusCode, Json<Value>);

fn not_found(why: String) -> Reply {
    (StatusCode::NOT_FOUND, Json(json!({ "error": why })))
}

fn parse(id: &str) -> Result<JobId, Reply> {
    JobId::from_hex(id)
        .filter(|_| id.len() <= 16)
        .ok_or_else(|| not_found(format!("'{id}' is not a job id")))
}

/// The routes over `cluster`.
pub fn router(cluster: Arc<Cluster>) -> Router {
    Router::new()
        .route("/jobs", get(jobs))
        .route("/jobs/{id}", get(job))
        .route("/jobs/{id}/checkpoints", get(checkpoints))
        .route("/taskmanagers", get(taskmanagers))
        .with_state(cluster)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a REST query panicked")
}

async fn jobs(State(c): State<Arc<Cluster>>) -> Json<Value> {
    Json(blocking(move || super::json::jobs(&c.list())).await)
}

async fn job(State(c): State<Arc<Cluster>>, Path(id): Path<String>) -> Reply {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match blocking(move || c.summary(id)).await {
        Some(s) => (StatusCode::OK, Json(super::json::job(&s))),
        None => not_found(format!("unknown job {id}")),
    }
}

async fn checkpoints(State(c): State<Arc<Cluster>>, Path(id): Path<String>) -> Reply {
    let id = match parse(&id) {
        Ok(id) => id,
        Err(r) => return r,
    };
    match blocking(move || c.checkpoints(id)).await {
        Ok(list) => (StatusCode::OK, Json(super::json::checkpoints(id, &list))),
        Err(e) => not_found(e.to_string()),
    }
}

async fn taskmanagers(State(c): State<Arc<Cluster>>) -> Json<Value> {
    let list = blocking(move || c.taskmanagers()).await;
    Json(json!({
        "taskmanagers": list.iter().map(|(id, slots)| json!({ "id": id, "slots": slots })).collect::<Vec<_>>()
    }))
}
