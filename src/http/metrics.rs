//! `GET /metrics`: the Prometheus exposition text, behind `metrics.token` when one is set.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::ApiError;
use crate::monitoring::Exporter;

/// Prometheus's text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

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
