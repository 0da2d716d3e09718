//! The cluster routes: `GET /overview`, `/config`, `/taskmanagers` and
//! `/taskmanagers/{id}`.

use super::model::{
    ClusterOverview, DashboardConfig, DashboardFeatures, TaskManager, TaskManagerList,
};
use super::{blocking, Rest, RestError};
use crate::cluster::views::TaskManagerView;
use axum::extract::{Path, State};
use axum::Json;
use weir_runtime::rpc::messages::JobStatus;

/// How often the dashboard refreshes.
const REFRESH_INTERVAL_MS: u64 = 3000;

/// The cluster in numbers: TaskManagers, slots, jobs by outcome.
#[utoipa::path(get, path = "/overview", responses((status = 200, body = ClusterOverview)))]
pub(super) async fn overview(State(r): State<Rest>) -> Json<ClusterOverview> {
    let (tms, jobs) = blocking(move || (r.cluster.taskmanager_views(), r.cluster.list())).await;
    let count = |s: JobStatus| jobs.iter().filter(|j| j.status == s).count();
    Json(ClusterOverview {
        taskmanagers: tms.len(),
        slots_total: tms.iter().map(|t| t.slots).sum(),
        slots_available: tms.iter().map(|t| t.free_slots).sum(),
        jobs_running: jobs.iter().filter(|j| !j.status.is_terminal()).count(),
        jobs_finished: count(JobStatus::Finished),
        jobs_cancelled: count(JobStatus::Cancelled),
        jobs_failed: count(JobStatus::Failed),
        weir_version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// What the dashboard needs to know about this server.
#[utoipa::path(get, path = "/config", responses((status = 200, body = DashboardConfig)))]
pub(super) async fn config() -> Json<DashboardConfig> {
    Json(DashboardConfig {
        refresh_interval: REFRESH_INTERVAL_MS,
        timezone_name: "UTC".into(),
        timezone_offset: 0,
        weir_version: env!("CARGO_PKG_VERSION").into(),
        features: DashboardFeatures {
            web_submit: false,
            web_cancel: true,
            web_savepoint: true,
        },
    })
}

fn taskmanager(t: TaskManagerView) -> TaskManager {
    TaskManager {
        id: t.id.into(),
        path: t.peer,
        slots_number: t.slots,
        slots: t.slots,
        free_slots: t.free_slots,
        time_since_last_heartbeat: t.since_heartbeat_ms,
    }
}

/// Every registered TaskManager with its slots.
#[utoipa::path(get, path = "/taskmanagers", responses((status = 200, body = TaskManagerList)))]
pub(super) async fn taskmanagers(State(r): State<Rest>) -> Json<TaskManagerList> {
    let tms = blocking(move || r.cluster.taskmanager_views()).await;
    Json(TaskManagerList {
        taskmanagers: tms.into_iter().map(taskmanager).collect(),
    })
}

/// One registered TaskManager.
#[utoipa::path(get, path = "/taskmanagers/{id}", params(("id" = u64, Path, description = "TaskManager id")),
    responses((status = 200, body = TaskManager), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn taskmanager_by_id(
    State(r): State<Rest>,
    Path(id): Path<String>,
) -> Result<Json<TaskManager>, RestError> {
    let unknown = || RestError::not_found(format!("no TaskManager '{id}' is registered"));
    let wanted: u64 = id.parse().map_err(|_| unknown())?;
    let tms = blocking(move || r.cluster.taskmanager_views()).await;
    tms.into_iter()
        .find(|t| u64::from(t.id) == wanted)
        .map(|t| Json(taskmanager(t)))
        .ok_or_else(unknown)
}
