//! The metric routes, on Flink's paths and shapes: `GET /jobs/{id}/metrics` (the job's
//! metrics), `/jobs/{id}/vertices/{vid}/metrics` (per subtask, `0.numRecordsIn`, ...),
//! `/jobs/{id}/vertices/{vid}/backpressure` and `/jobs/{id}/vertices/{vid}/watermarks`.
//!
//! Invariants: the metric lists answer `[{"id": ...}]` without `get` and
//! `[{"id": ..., "value": "..."}]` for the ids `?get=a,b` names (unknown ids are left out,
//! as in Flink); task values are the job workers' latest heartbeat reports, so a job that
//! runs no task (ended, restarting) has none.

use super::{blocking, job_view, Rest, RestError};
use crate::cluster::metrics::job_metrics;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use weir_runtime::metrics::TaskMetricsReport;

/// One metric: its id and, when asked for with `get`, its value.
#[derive(Debug, Serialize, ToSchema, PartialEq)]
pub struct Metric {
    /// The metric's id (`uptime`, `0.numRecordsIn`).
    pub id: String,
    /// Its value, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `?get=a,b`: the metrics whose values to return.
#[derive(Debug, Deserialize)]
pub(super) struct MetricQuery {
    get: Option<String>,
}

/// One subtask's back-pressure.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubtaskBackPressure {
    /// The subtask's index.
    pub subtask: u32,
    /// `ok` (ratio at most 0.1), `low` (at most 0.5) or `high`.
    #[serde(rename = "backpressure-level")]
    pub level: String,
    /// Share of the last interval spent back-pressured, `0.0..=1.0`.
    pub ratio: f64,
    /// Share spent idle.
    #[serde(rename = "idleRatio")]
    pub idle_ratio: f64,
    /// Share spent busy.
    #[serde(rename = "busyRatio")]
    pub busy_ratio: f64,
}

/// `GET /jobs/{id}/vertices/{vid}/backpressure`.
#[derive(Debug, Serialize, ToSchema)]
pub struct VertexBackPressure {
    /// `ok` when the vertex has running subtasks, else `deprecated` (nothing measured).
    pub status: String,
    /// The highest level of its subtasks.
    #[serde(rename = "backpressure-level")]
    pub level: String,
    /// When the values were read (milliseconds since the epoch).
    #[serde(rename = "end-timestamp")]
    pub end_timestamp: i64,
    /// Per subtask.
    pub subtasks: Vec<SubtaskBackPressure>,
}

/// Flink's back-pressure level of a ratio.
fn level(ratio: f64) -> &'static str {
    if ratio <= 0.10 {
        "ok"
    } else if ratio <= 0.5 {
        "low"
    } else {
        "high"
    }
}

/// The metric list for `names` and their values, filtered by `get`.
fn answer(all: Vec<(String, String)>, q: &MetricQuery) -> Vec<Metric> {
    match &q.get {
        None => all
            .into_iter()
            .map(|(id, _)| Metric { id, value: None })
            .collect(),
        Some(get) => get
            .split(',')
            .map(str::trim)
            .filter_map(|want| {
                all.iter().find(|(id, _)| id == want).map(|(id, v)| Metric {
                    id: id.clone(),
                    value: Some(v.clone()),
                })
            })
            .collect(),
    }
}

/// The job's metrics: `uptime`, `numRestarts`, `lastCheckpointDuration`,
/// `lastCheckpointSize`, `numberOfCompletedCheckpoints`, `numberOfFailedCheckpoints`.
#[utoipa::path(get, path = "/jobs/{id}/metrics",
    params(("id" = String, Path, description = "job id"), ("get" = Option<String>, Query, description = "comma-separated metric ids whose values to return")),
    responses((status = 200, body = Vec<Metric>), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn job(
    State(r): State<Rest>,
    Path(id): Path<String>,
    Query(q): Query<MetricQuery>,
) -> Result<Json<Vec<Metric>>, RestError> {
    let v = job_view(r, &id).await?;
    let all = job_metrics(&v.snapshot, weir_runtime::now_ms())
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Ok(Json(answer(all, &q)))
}

/// The running subtasks' reports of the vertex the path names.
async fn vertex_reports(r: Rest, id: &str, vid: &str) -> Result<Vec<TaskMetricsReport>, RestError> {
    let store = r.clone();
    let v = job_view(r, id).await?;
    let vertex = super::vertex_of(&v, vid)?.id;
    let job = v.summary.id;
    let reports = blocking(move || store.cluster.task_metrics().of_job(job)).await;
    Ok(reports
        .into_iter()
        .map(|(_, r)| r)
        .filter(|r| r.subtask.vertex == vertex)
        .collect())
}

/// A task's metrics by Flink's names, `N.` prefixed with its subtask index.
fn task_values(r: &TaskMetricsReport) -> Vec<(String, String)> {
    let n = r.subtask.subtask;
    let mut values = vec![
        ("numRecordsIn", r.records_in.to_string()),
        ("numRecordsOut", r.records_out.to_string()),
        ("numRecordsInPerSecond", r.records_in_per_second.to_string()),
        (
            "numRecordsOutPerSecond",
            r.records_out_per_second.to_string(),
        ),
        (
            "backPressuredTimeMsPerSecond",
            r.back_pressured_ms_per_second.to_string(),
        ),
        ("busyTimeMsPerSecond", r.busy_ms_per_second.to_string()),
        ("idleTimeMsPerSecond", r.idle_ms_per_second.to_string()),
        ("buffers.inPoolUsage", r.in_pool_usage.to_string()),
        ("buffers.outPoolUsage", r.out_pool_usage.to_string()),
    ];
    values.extend(watermark_values(r));
    if let Some(p) = r.pending_records {
        values.push(("pendingRecords", p.to_string()));
    }
    values
        .into_iter()
        .map(|(name, v)| (format!("{n}.{name}"), v))
        .collect()
}

/// A task's watermarks (`i64::MIN`, as Flink shows "none", before the first).
fn watermark_values(r: &TaskMetricsReport) -> [(&'static str, String); 2] {
    [
        (
            "currentInputWatermark",
            r.input_watermark.unwrap_or(i64::MIN).to_string(),
        ),
        (
            "currentOutputWatermark",
            r.output_watermark.unwrap_or(i64::MIN).to_string(),
        ),
    ]
}

/// The vertex's subtask metrics (`0.numRecordsIn`, `1.busyTimeMsPerSecond`, ...).
#[utoipa::path(get, path = "/jobs/{id}/vertices/{vid}/metrics",
    params(("id" = String, Path, description = "job id"), ("vid" = String, Path, description = "vertex id"),
        ("get" = Option<String>, Query, description = "comma-separated metric ids whose values to return")),
    responses((status = 200, body = Vec<Metric>), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn vertex(
    State(r): State<Rest>,
    Path((id, vid)): Path<(String, String)>,
    Query(q): Query<MetricQuery>,
) -> Result<Json<Vec<Metric>>, RestError> {
    let reports = vertex_reports(r, &id, &vid).await?;
    let all = reports.iter().flat_map(task_values).collect();
    Ok(Json(answer(all, &q)))
}

/// The vertex's subtasks' input watermarks (`0.currentInputWatermark`, ...), with values.
#[utoipa::path(get, path = "/jobs/{id}/vertices/{vid}/watermarks",
    params(("id" = String, Path, description = "job id"), ("vid" = String, Path, description = "vertex id")),
    responses((status = 200, body = Vec<Metric>), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn watermarks(
    State(r): State<Rest>,
    Path((id, vid)): Path<(String, String)>,
) -> Result<Json<Vec<Metric>>, RestError> {
    let reports = vertex_reports(r, &id, &vid).await?;
    let list = reports
        .iter()
        .map(|t| Metric {
            id: format!("{}.currentInputWatermark", t.subtask.subtask),
            value: Some(watermark_values(t)[0].1.clone()),
        })
        .collect();
    Ok(Json(list))
}

/// The back-pressure of the vertex's subtasks over the last heartbeat interval.
#[utoipa::path(get, path = "/jobs/{id}/vertices/{vid}/backpressure",
    params(("id" = String, Path, description = "job id"), ("vid" = String, Path, description = "vertex id")),
    responses((status = 200, body = VertexBackPressure), (status = 404, body = super::model::ErrorBody)))]
pub(super) async fn backpressure(
    State(r): State<Rest>,
    Path((id, vid)): Path<(String, String)>,
) -> Result<Json<VertexBackPressure>, RestError> {
    let reports = vertex_reports(r, &id, &vid).await?;
    let subtasks: Vec<SubtaskBackPressure> = reports
        .iter()
        .map(|t| {
            let ratio = (t.back_pressured_ms_per_second / 1000.0).clamp(0.0, 1.0);
            SubtaskBackPressure {
                subtask: u32::from(t.subtask.subtask),
                level: level(ratio).into(),
                ratio,
                idle_ratio: (t.idle_ms_per_second / 1000.0).clamp(0.0, 1.0),
                busy_ratio: (t.busy_ms_per_second / 1000.0).clamp(0.0, 1.0),
            }
        })
        .collect();
    let worst = subtasks.iter().map(|s| s.ratio).fold(0.0, f64::max);
    Ok(Json(VertexBackPressure {
        status: if subtasks.is_empty() {
            "deprecated"
        } else {
            "ok"
        }
        .into(),
        level: level(worst).into(),
        end_timestamp: weir_runtime::now_ms(),
        subtasks,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lists_name_every_id_and_values_only_for_the_ids_asked_for() {
        let all = vec![
            ("uptime".to_string(), "5".to_string()),
            ("numRestarts".into(), "1".into()),
        ];
        let ids = answer(all.clone(), &MetricQuery { get: None });
        assert_eq!(ids.len(), 2);
        assert!(ids.iter().all(|m| m.value.is_none()));
        let got = answer(
            all,
            &MetricQuery {
                get: Some("numRestarts, nope".into()),
            },
        );
        assert_eq!(
            got,
            vec![Metric {
                id: "numRestarts".into(),
                value: Some("1".into())
            }]
        );
    }

    #[test]
    fn back_pressure_levels_follow_flinks_thresholds() {
        assert_eq!(level(0.0), "ok");
        assert_eq!(level(0.1), "ok");
        assert_eq!(level(0.3), "low");
        assert_eq!(level(0.51), "high");
    }
}
