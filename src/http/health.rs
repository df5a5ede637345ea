//! Liveness and readiness probes; no token needed.

use axum::Json;
use axum::extract::State;

use super::{ApiError, AppState};

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    state.store.ping().await.map_err(|err| {
        tracing::warn!(error = %err, "readiness check: database unreachable");
        ApiError::Unavailable("database unreachable".into())
    })?;
    if let Some(reason) = state.audit.last().0.reason() {
        return Err(ApiError::Unavailable(format!(
            "the audit chain is broken: {reason}"
        )));
    }
    Ok(Json(serde_json::json!({"status": "ready"})))
}
