//! The HTTP surface: webhooks in, the status API and event stream out, health probes,
//! metrics, and the API's OpenAPI document and reference page.

mod auth_limit;
mod connection;
mod console;
mod docs;
mod error;
mod events;
mod extract;
mod health;
mod incidents;
mod metrics;
mod openapi;
mod report;
mod server;
mod status;
mod tokens;
mod trace;
mod views;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::{ApiToken, ServerLimits};
use crate::intake::Intake;
use crate::monitoring::Exporter;
use crate::store::{AuditGate, IntakeOutcome, Store};

pub use console::Sessions;
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
    /// Console sign-ins; `None` when the console is off.
    pub console: Option<Arc<Sessions>>,
    /// This replica's id, as the status API names it.
    pub replica: Arc<str>,
}

/// The API's routes, with `/metrics` among them when `metrics` is given.
pub fn router(
    state: AppState,
    limits: &ServerLimits,
    request_timeout: Duration,
    metrics: Option<Arc<Exporter>>,
) -> Router {
    let mut routes = Router::new()
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
        .route("/v1/incidents/{id}/actions/{action}", post(incidents::act));
    if state.console.is_some() {
        routes = routes.merge(console::routes());
    }
    if let Some(exporter) = metrics {
        routes = routes.route("/metrics", get(metrics::scrape).with_state(exporter));
    }
    let max_body_bytes = state.max_body_bytes;
    guard(routes, limits, request_timeout, max_body_bytes).with_state(state)
}

/// `/metrics` alone, for its own listener (`metrics.listen`).
pub fn metrics_router(
    exporter: Arc<Exporter>,
    limits: &ServerLimits,
    request_timeout: Duration,
) -> Router {
    let routes = Router::new().route("/metrics", get(metrics::scrape));
    // A scrape sends no body.
    const SCRAPE_BODY_BYTES: usize = 1024;
    guard(routes, limits, request_timeout, SCRAPE_BODY_BYTES).with_state(exporter)
}

/// The answer for unknown paths, the body limit, the request timeout, the failed-authentication
/// limit and the request's id and span.
fn guard<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    limits: &ServerLimits,
    request_timeout: Duration,
    max_body_bytes: usize,
) -> Router<S> {
    let auth_limiter = Arc::new(auth_limit::AuthLimiter::new(
        limits.max_auth_failures,
        limits.auth_failure_window,
    ));
    // The last layer added is the outermost: a request meets them from the bottom up.
    routes
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(middleware::map_response(
            move |response: Response| async move { error::in_api_shape(response, max_body_bytes) },
        ))
        .layer(middleware::from_fn_with_state(
            auth_limiter,
            auth_limit::limit_failed_auth,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::request_span)
                .on_request(())
                .on_response(trace::log_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(trace::X_REQUEST_ID))
        .layer(SetRequestIdLayer::new(trace::X_REQUEST_ID, MakeRequestUuid))
        .layer(middleware::map_request(|mut request: Request| async move {
            trace::clean_request_id(request.headers_mut());
            request
        }))
}

/// Reads a whole body. `RequestBodyLimitLayer` has already refused a declared length over the
/// limit and cuts a longer stream, which is a 413 here.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(body, usize::MAX).await {
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
