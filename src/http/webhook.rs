//! `POST /v1/notifications/{source}`: leak notifications pushed by Alibaba Cloud and others.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{ApiError, AppState, accepted, read_body};
use crate::intake::RawRequest;

pub async fn receive(
    State(state): State<AppState>,
    Path(source): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Unknown sources are refused before their body is read.
    if !state.intake.has_source(&source) {
        return Err(ApiError::NotFound(format!(
            "unknown notification source {source:?}"
        )));
    }
    let body = read_body(body, state.max_body_bytes).await?;
    let outcome = state
        .intake
        .receive(RawRequest {
            source: &source,
            peer: peer.ip(),
            headers: &headers,
            body: &body,
            received_at: chrono::Utc::now(),
        })
        .await
        .inspect_err(|err| tracing::info!(source = %source, peer = %peer.ip(), reason = %err, "notification refused"))?;
    Ok(accepted(outcome))
}
