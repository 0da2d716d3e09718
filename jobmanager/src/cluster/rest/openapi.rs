//! The OpenAPI document of the REST API, generated from the routes' annotations and the
//! bodies' types, served at `GET /openapi.json`.
//!
//! Invariant: it lists exactly the routes of [`super::ROUTES`] (a test checks both ways).

use super::checkpoint_routes as checkpoints;
use super::{cluster_routes, job_routes, metric_routes, operations};
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::OpenApi;

/// The API's description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Weir JobManager REST API",
        description = "Jobs, checkpoints and TaskManagers of a Weir cluster, on Apache Flink's paths and, where sensible, in its JSON shapes."
    ),
    paths(
        cluster_routes::overview,
        cluster_routes::config,
        cluster_routes::taskmanagers,
        cluster_routes::taskmanager_by_id,
        job_routes::jobs,
        job_routes::overview,
        job_routes::job,
        job_routes::plan,
        job_routes::vertex,
        job_routes::exceptions,
        metric_routes::job,
        metric_routes::vertex,
        metric_routes::backpressure,
        metric_routes::watermarks,
        checkpoints::checkpoints,
        checkpoints::config,
        operations::cancel,
        operations::savepoint,
        operations::stop,
        operations::checkpoint,
        operations::status,
        operations::checkpoint_status,
        document,
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "the OpenAPI document", content_type = "application/json")))]
pub(super) async fn document() -> impl IntoResponse {
    let json = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    ([(header::CONTENT_TYPE, "application/json")], json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_lists_every_route_and_no_other() {
        let doc = ApiDoc::openapi();
        let mut documented: Vec<(String, String)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("PUT", item.put.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                methods
                    .into_iter()
                    .filter(|(_, present)| *present)
                    .map(move |(m, _)| (m.to_string(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut routes: Vec<(String, String)> = super::super::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
