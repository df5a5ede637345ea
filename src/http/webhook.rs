//! `POST /v1/notifications/{source}`: leak notifications pushed by Alibaba Cloud and others.

use std::net::SocketAddr;

use super::extract::Path;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::views::{Accepted, ErrorBody};
use super::{ApiError, AppState, accepted, read_body};
use crate::intake::{RawRequest, intake_outcome};
use crate::monitoring::record;

/// A leak notification pushed by a configured source (Security Center via EventBridge,
/// CloudMonitor, a SIEM in the generic schema, ...). The body is checked against the
/// source's authentication on its raw bytes before it is parsed.
#[utoipa::path(post, path = "/v1/notifications/{source}", tag = "intake",
    security(("webhook_hmac" = []), ("webhook_api_key" = []), ("webhook_basic" = [])),
    params(("source" = String, Path, description = "A source configured under `intake.sources`.")),
    request_body(content = Object, content_type = "application/json",
        description = "The source's format: the generic schema (`LeakReport`), an EventBridge \
        event, or a CloudMonitor alert."),
    responses(
        (status = 202, description = "Recorded (or recognised as a replay).", body = Accepted),
        (status = 400, description = "The body does not parse in the source's format.", body = ErrorBody),
        (status = 401, description = "The signature, key or password does not match, or is missing.", body = ErrorBody),
        (status = 403, description = "The sender's address is not allowed, or the account is out of scope.", body = ErrorBody),
        (status = 404, description = "No source by that name.", body = ErrorBody),
        (status = 413, description = "The body is larger than `intake.max_body_bytes`.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address; see `Retry-After`.", body = ErrorBody),
        (status = 503, description = "The request timed out, akguard is shutting down, or the audit chain is broken.", body = ErrorBody),
    ))]
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
