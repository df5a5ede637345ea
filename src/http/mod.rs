//! The HTTP surface: webhooks in, the status API and event stream out, health probes, and
//! the API's OpenAPI document and reference page.

mod auth_limit;
mod connection;
mod docs;
mod error;
mod events;
mod extract;
mod health;
mod incidents;
mod openapi;
mod report;
mod server;
mod status;
mod tokens;
mod views;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::config::{ApiToken, ServerLimits};
use crate::intake::Intake;
use crate::store::{AuditGate, IntakeOutcome, Store};

pub use error::ApiError;
pub use events::EventHub;
pub use server::serve;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// Wakes the workers after an operator makes an incident runnable again.
    pub wake: Arc<tokio::sync::Notify>,
    pub intake: Arc<Intake>,
    pub tokens: Arc<[ApiToken]>,
    pub max_body_bytes: usize,
    /// Which sinks `set-rotation` may name.
    pub sinks: Arc<crate::config::SinkPolicy>,
    /// The audit chain's last verdict: nothing is appended while it is broken.
    pub audit: AuditGate,
    /// The checks `/readyz` and `/v1/status` show.
    pub readiness: crate::readiness::Readiness,
    /// The live event streams' cap and shutdown signal.
    pub events: EventHub,
}

pub fn router(state: AppState, limits: &ServerLimits, request_timeout: Duration) -> Router {
    let auth_limiter = Arc::new(auth_limit::AuthLimiter::new(
        limits.max_auth_failures,
        limits.auth_failure_window,
    ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/openapi.json", get(openapi::serve))
        .route("/docs", get(docs::page))
        .route("/docs/docs.css", get(docs::stylesheet))
        .route("/readyz", get(health::readyz))
        .route("/v1/notifications/{source}", post(webhook::receive))
        .route("/v1/status", get(status::show))
        .route("/v1/events", get(events::stream))
        .route(
            "/v1/incidents",
            get(incidents::list).post(incidents::report),
        )
        .route("/v1/incidents/{id}", get(incidents::show))
        .route("/v1/incidents/{id}/audit", get(incidents::audit))
        .route("/v1/incidents/{id}/report", get(report::show))
        .route("/v1/incidents/{id}/actions/{action}", post(incidents::act))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(middleware::from_fn(
            move |req: Request, next: Next| async move {
                match tokio::time::timeout(request_timeout, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::Unavailable("the request timed out".into()).into_response(),
                }
            },
        ))
        .layer(middleware::from_fn_with_state(
            auth_limiter,
            auth_limit::limit_failed_auth,
        ))
        .with_state(state)
}

/// Reads a body up to `limit` bytes; a longer one is a 413 before it is all read.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(err) if is_over_limit(&err) => Err(ApiError::PayloadTooLarge(limit)),
        // A broken chunked encoding or a body cut short: the client's fault, not its size.
        Err(_) => Err(ApiError::BadRequest(
            "the request body could not be read: malformed or incomplete".into(),
        )),
    }
}

fn is_over_limit(err: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = cause {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// The answer to an accepted notification, whichever way it came.
fn accepted(outcome: IntakeOutcome) -> Response {
    let duplicate = matches!(
        outcome,
        IntakeOutcome::Sighting(_) | IntakeOutcome::Retriaged(_) | IntakeOutcome::Replay(_)
    );
    let body = views::Accepted {
        incident_id: outcome.incident_id().map(|id| id.0),
        duplicate,
        outcome: outcome.as_str(),
    };
    (axum::http::StatusCode::ACCEPTED, axum::Json(body)).into_response()
}
