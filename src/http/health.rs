//! Liveness and readiness probes; no token needed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Liveness: the process answers. Nothing else is checked, so a restart never follows from
/// a dependency being down.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: 200 only when every check passes; otherwise 503 naming each failing check
/// in `error.message`, with every check's status and reason in `checks`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let report = state
        .readiness
        .report(state.store.as_ref(), &state.audit)
        .await;
    if report.ready() {
        let body = serde_json::json!({"status": "ready", "checks": report.to_json()});
        return (StatusCode::OK, Json(body)).into_response();
    }
    let body = serde_json::json!({
        "status": "unready",
        "error": {"code": "unavailable", "message": report.reasons()},
        "checks": report.to_json(),
    });
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
