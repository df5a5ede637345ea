//! `GET /v1/status`: the version, the database backend, the audit chain's state and the
//! readiness checks.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use super::tokens::authorize;
use super::{ApiError, AppState};
use crate::config::Role;

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let checks = state
        .readiness
        .report(state.store.as_ref(), &state.audit)
        .await;
    let (report, checked_at) = state.audit.last();
    // While the chain holds, every append moves the anchor, so the anchor is the live head;
    // once broken, the report says what the check found.
    let (rows, head) = match (report.is_intact(), state.store.audit_head().await?) {
        (true, Some(anchor)) => (anchor.rows, anchor.hash),
        _ => (report.rows, report.head.clone()),
    };
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "database": {"backend": state.store.backend()},
        "audit_chain": {
            "intact": report.is_intact(),
            "rows": rows,
            "head": head,
            "reason": report.reason(),
            "checked_at": checked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        "ready": checks.ready(),
        "checks": checks.to_json(),
    })))
}
