//! `GET /metrics`: the Prometheus exposition text, behind `metrics.token` when one is set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::views::ErrorBody;
use crate::monitoring::Exporter;

/// Prometheus's text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Prometheus metrics, in its text format. Served on `server.listen` unless `metrics.listen`
/// gives it an address of its own, and not at all with `metrics.enabled = false`.
#[utoipa::path(get, path = "/metrics", tag = "status", security((), ("metrics" = [])),
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain", body = String),
        (status = 401, description = "`metrics.token` is set and the request does not carry it.",
            body = ErrorBody),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address; see `Retry-After`.",
            body = ErrorBody),
        (status = 503, description = "The request timed out or akguard is shutting down.", body = ErrorBody),
    ))]
pub async fn scrape(
    State(exporter): State<Arc<Exporter>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if exporter.needs_token() {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        if !exporter.accepts(presented) {
            return Err(ApiError::Unauthorized(
                "the bearer token is not valid".into(),
            ));
        }
    }
    let body = exporter.render().await;
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    Ok(response)
}
