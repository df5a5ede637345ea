//! `POST /v1/notifications/{source}`: leak notifications pushed by Alibaba Cloud and others.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{ApiError, AppState, accepted, read_body};
use crate::intake::{RawRequest, intake_outcome};
use crate::monitoring::record;

pub async fn receive(
    State(state): State<AppState>,
    Path(source): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Unknown sources are refused before their body is read, and counted under one label:
    // the path is the caller's text.
    if !state.intake.has_source(&source) {
        record::intake("unknown", "unknown_source");
        return Err(ApiError::NotFound(format!(
            "unknown notification source {source:?}"
        )));
    }
    let body = read_body(body, state.max_body_bytes)
        .await
        .inspect_err(|err| {
            let outcome = match err {
                ApiError::PayloadTooLarge(_) => "too_large",
                _ => "malformed",
            };
            record::intake(&source, outcome);
        })?;
    let outcome = state
        .intake
        .receive(RawRequest {
            source: &source,
            peer: peer.ip(),
            headers: &headers,
            body: &body,
            received_at: chrono::Utc::now(),
        })
        .await;
    record::intake(&source, intake_outcome(&outcome));
    let outcome = outcome.inspect_err(|err| tracing::info!(source = %source, peer = %peer.ip(), reason = %err, "notification refused"))?;
    Ok(accepted(outcome))
}
