//! `GET /v1/status`: the version, the database backend, the audit chain's state, the
//! readiness checks, the live replicas and who holds each singleton job.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;

use chrono::SecondsFormat;

use super::tokens::authorize;
use super::views::{
    AuditChain, Database, ErrorBody, ReplicaView, SingletonJob, Status, TokenRefusals,
};
use super::{ApiError, AppState};
use crate::config::Role;
use crate::replicas::LIVE_WITHIN;

/// Version, database backend, audit chain head and intactness, readiness checks.
#[utoipa::path(get, path = "/v1/status", tag = "status", security(("viewer" = [])),
    responses(
        (status = 200, description = "The daemon's state.", body = Status),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Status>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    gather(&state).await.map(Json)
}

/// The status the API and the console show.
pub(super) async fn gather(state: &AppState) -> Result<Status, ApiError> {
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
    let now = chrono::Utc::now();
    let live_since = now - chrono::Duration::from_std(LIVE_WITHIN).unwrap_or_default();
    let stamp = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let replicas = state
        .store
        .replicas_since(live_since)
        .await?
        .into_iter()
        .map(|r| ReplicaView {
            started_at: stamp(r.started_at),
            last_heartbeat: stamp(r.heartbeat_at),
            id: r.id,
            host: r.host,
            version: r.version,
            account_id: r.account_id,
        })
        .collect();
    let singleton_jobs = state
        .store
        .job_holders(now)
        .await?
        .into_iter()
        .map(|j| SingletonJob {
            lease_expires_at: stamp(j.expires_at),
            name: j.name,
            holder: j.holder,
            fencing_token: j.token,
        })
        .collect();
    Ok(Status {
        version: env!("CARGO_PKG_VERSION"),
        database: Database {
            backend: state.store.backend(),
        },
        audit_chain: AuditChain {
            intact: report.is_intact(),
            rows,
            head,
            reason: report.reason(),
            checked_at: checked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
        ready: checks.ready(),
        checks: checks.to_json(),
        replica: state.replica.to_string(),
        replicas,
        singleton_jobs,
    })
}
