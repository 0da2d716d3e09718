//! The web dashboard: three static files compiled into the binary and served at `/`,
//! `/dashboard/app.js` and `/dashboard/style.css`. The page reads the REST API like any
//! client (the overview, jobs, each job's graph with records/s, back-pressure and
//! watermarks per vertex, the checkpoint history as a chart, exceptions, TaskManagers) and
//! acts through it (cancel, savepoint, stop with savepoint).
//!
//! Invariants: the files hold no data, so they are served without the bearer token (the
//! page asks for it and sends it with every API request); the page may load scripts, styles
//! and data only from this origin (`Content-Security-Policy`), and the script puts API values
//! into the page only as text.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("dashboard/index.html");
const APP: &str = include_str!("dashboard/app.js");
const STYLE: &str = include_str!("dashboard/style.css");

/// Only this origin's scripts, styles and API; no framing by other sites.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

/// The dashboard's routes.
pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/app.js", get(app))
        .route("/dashboard/style.css", get(style))
}

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        INDEX,
    )
}

async fn app() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        APP,
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        STYLE,
    )
}
