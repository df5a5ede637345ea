//! Liveness and readiness probes; no token needed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::views::{ErrorBody, ErrorCode, ErrorDetail, Health, Readiness};

/// Liveness: the process answers. Nothing else is checked, so a restart never follows from
/// a dependency being down.
/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "probes",
    responses(
        (status = 200, description = "Alive.", body = Health),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
    ))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: 200 only when every check passes; otherwise 503 naming each failing check
/// in `error.message`, with every check's status and reason in `checks`.
/// Readiness: the database, the audit chain and the cloud credentials.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Every check passes.", body = Readiness),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        (status = 503, description = "A check fails; `error.message` names it.", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let report = state
        .readiness
        .report(state.store.as_ref(), &state.audit)
        .await;
    if report.ready() {
        let body = Readiness {
            status: "ready".into(),
            error: None,
            checks: report.to_json(),
        };
        return (StatusCode::OK, Json(body)).into_response();
    }
    let body = Readiness {
        status: "unready".into(),
        error: Some(ErrorDetail {
            code: ErrorCode::Unavailable,
            message: report.reasons(),
        }),
        checks: report.to_json(),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
