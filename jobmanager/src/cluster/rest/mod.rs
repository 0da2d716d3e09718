//! The JobManager's REST API on Flink's paths and, where sensible, in Flink's JSON shapes
//! (the keys Flink's clients and dashboards read, beside the fields `weir --output json`
//! prints):
//!
//! - the cluster (`cluster_routes.rs`): `GET /overview`, `/config`, `/taskmanagers`,
//!   `/taskmanagers/{id}`;
//! - jobs (`job_routes.rs`): `GET /jobs`, `/jobs/overview`, `/jobs/{id}`, `/jobs/{id}/plan`,
//!   `/jobs/{id}/vertices/{vid}`, `/jobs/{id}/exceptions`;
//! - metrics (`metric_routes.rs`): `GET /jobs/{id}/metrics`,
//!   `/jobs/{id}/vertices/{vid}/metrics`, `/jobs/{id}/vertices/{vid}/backpressure`,
//!   `/jobs/{id}/vertices/{vid}/watermarks`, from the job workers' heartbeat reports;
//! - checkpoints (`checkpoint_routes.rs`): `GET /jobs/{id}/checkpoints`,
//!   `/jobs/{id}/checkpoints/config`;
//! - actions (`operations.rs`): `PATCH /jobs/{id}?mode=cancel`, and, answered at once with a
//!   trigger id and polled, `POST /jobs/{id}/savepoints`, `POST /jobs/{id}/stop`,
//!   `POST /jobs/{id}/checkpoints`, `GET /jobs/{id}/savepoints/{triggerid}` and
//!   `GET /jobs/{id}/checkpoints/{triggerid}`;
//! - `GET /openapi.json`, the OpenAPI document of all of them ([`openapi`]);
//! - the web dashboard at `/` (`dashboard.rs`), outside the API and its document.
//!
//! Who may ask, and over what (bearer token, TLS), is [`security`]'s.
//!
//! Invariants: a read answers from the cluster's state and the JobMasters' published
//! snapshots and never waits for a job; an action that takes time answers `202 Accepted`
//! with its trigger id before it completes; every error is `{"errors": [why]}` with the
//! status that says what went wrong (404 for an unknown job, vertex, TaskManager or
//! trigger; 400 for a malformed request; 409 for a job that cannot do what was asked).

mod checkpoint_routes;
mod cluster_routes;
mod dashboard;
mod job_routes;
mod metric_routes;
pub mod model;
pub mod openapi;
mod operations;
pub mod security;

use super::Cluster;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use operations::Operations;
use std::sync::Arc;
use weir_runtime::JobId;

/// What every route reads: the cluster and the asynchronous operations in flight.
#[derive(Clone)]
pub(crate) struct Rest {
    cluster: Arc<Cluster>,
    operations: Arc<Operations>,
}

/// Every route: method and path as the router and the OpenAPI document name them.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/overview"),
    ("GET", "/config"),
    ("GET", "/taskmanagers"),
    ("GET", "/taskmanagers/{id}"),
    ("GET", "/jobs"),
    ("GET", "/jobs/overview"),
    ("GET", "/jobs/{id}"),
    ("PATCH", "/jobs/{id}"),
    ("GET", "/jobs/{id}/plan"),
    ("GET", "/jobs/{id}/vertices/{vid}"),
    ("GET", "/jobs/{id}/exceptions"),
    ("GET", "/jobs/{id}/metrics"),
    ("GET", "/jobs/{id}/vertices/{vid}/metrics"),
    ("GET", "/jobs/{id}/vertices/{vid}/backpressure"),
    ("GET", "/jobs/{id}/vertices/{vid}/watermarks"),
    ("GET", "/jobs/{id}/checkpoints"),
    ("POST", "/jobs/{id}/checkpoints"),
    ("GET", "/jobs/{id}/checkpoints/config"),
    ("GET", "/jobs/{id}/checkpoints/{triggerid}"),
    ("POST", "/jobs/{id}/savepoints"),
    ("GET", "/jobs/{id}/savepoints/{triggerid}"),
    ("POST", "/jobs/{id}/stop"),
    ("GET", "/openapi.json"),
];

/// The routes over `cluster`, each asking for `token` as a bearer token if set.
pub fn router(cluster: Arc<Cluster>, token: Option<weir_runtime::Secret>) -> Router {
    let state = Rest {
        cluster,
        operations: Arc::new(Operations::default()),
    };
    let routes = Router::new()
        .route("/overview", get(cluster_routes::overview))
        .route("/config", get(cluster_routes::config))
        .route("/taskmanagers", get(cluster_routes::taskmanagers))
        .route("/taskmanagers/{id}", get(cluster_routes::taskmanager_by_id))
        .route("/jobs", get(job_routes::jobs))
        .route("/jobs/overview", get(job_routes::overview))
        .route("/jobs/{id}", get(job_routes::job).patch(operations::cancel))
        .route("/jobs/{id}/plan", get(job_routes::plan))
        .route("/jobs/{id}/vertices/{vid}", get(job_routes::vertex))
        .route("/jobs/{id}/exceptions", get(job_routes::exceptions))
        .route("/jobs/{id}/metrics", get(metric_routes::job))
        .route(
            "/jobs/{id}/vertices/{vid}/metrics",
            get(metric_routes::vertex),
        )
        .route(
            "/jobs/{id}/vertices/{vid}/backpressure",
            get(metric_routes::backpressure),
        )
        .route(
            "/jobs/{id}/vertices/{vid}/watermarks",
            get(metric_routes::watermarks),
        )
        .route(
            "/jobs/{id}/checkpoints",
            get(checkpoint_routes::checkpoints).post(operations::checkpoint),
        )
        .route(
            "/jobs/{id}/checkpoints/config",
            get(checkpoint_routes::config),
        )
        .route(
            "/jobs/{id}/checkpoints/{triggerid}",
            get(operations::checkpoint_status),
        )
        .route("/jobs/{id}/savepoints", post(operations::savepoint))
        .route("/jobs/{id}/savepoints/{triggerid}", get(operations::status))
        .route("/jobs/{id}/stop", post(operations::stop))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found_route)
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state);
    let api = match token {
        Some(t) => routes.layer(axum::middleware::from_fn_with_state(
            Arc::new(t),
            security::require_token,
        )),
        None => routes,
    };
    dashboard::routes().merge(api)
}

/// A REST error: a status and why.
#[derive(Debug)]
pub(crate) struct RestError {
    status: StatusCode,
    why: String,
}

impl RestError {
    pub(crate) fn not_found(why: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            why: why.into(),
        }
    }

    pub(crate) fn bad_request(why: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            why: why.into(),
        }
    }

    pub(crate) fn conflict(why: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            why: why.into(),
        }
    }
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.status, Json(model::ErrorBody::new(self.why))).into_response()
    }
}

/// Puts the plain-text rejections of axum's extractors (a malformed JSON body or query, a
/// missing content type) into the API's error shape, `{"errors": [why]}`.
async fn json_errors(response: Response) -> Response {
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/plain"));
    if !(response.status().is_client_error() && plain) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let why = String::from_utf8_lossy(&bytes).into_owned();
    (parts.status, Json(model::ErrorBody::new(why))).into_response()
}

async fn not_found_route(uri: axum::http::Uri) -> RestError {
    RestError::not_found(format!(
        "no such route: {} (GET /openapi.json lists them)",
        uri.path()
    ))
}

/// Parses a job id of the path.
pub(crate) fn job_id(id: &str) -> Result<JobId, RestError> {
    JobId::from_hex(id)
        .filter(|_| id.len() <= 16)
        .ok_or_else(|| RestError::not_found(format!("'{id}' is not a job id")))
}

/// The view of the job the path names.
pub(crate) async fn job_view(r: Rest, id: &str) -> Result<super::views::JobView, RestError> {
    let job = job_id(id)?;
    blocking(move || r.cluster.job_view(job))
        .await
        .ok_or_else(|| RestError::not_found(format!("unknown job {job}")))
}

/// The vertex the path's `vid` (its index) names in job view `v`.
pub(crate) fn vertex_of<'a>(
    v: &'a super::views::JobView,
    vid: &str,
) -> Result<&'a weir_runtime::graph::JobVertex, RestError> {
    vid.parse::<usize>()
        .ok()
        .and_then(|i| v.graph.vertices.get(i))
        .ok_or_else(|| RestError::not_found(format!("job {} has no vertex '{vid}'", v.summary.id)))
}

/// Runs `f` (which may take the cluster lock) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a REST query panicked")
}
