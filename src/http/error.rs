//! API errors as JSON: `{"error": {"code", "message"}}`. Server faults get an opaque
//! message; their cause is logged once, here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::views::{ErrorBody, ErrorCode, ErrorDetail};
use crate::intake::IntakeError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(
        "too many failed authentications from this address; retry in {} s",
        retry_after_secs(*.0)
    )]
    TooManyAuthFailures(std::time::Duration),
    #[error("internal error; see the akguard log")]
    Internal,
}

impl ApiError {
    pub(super) fn status(&self) -> StatusCode {
        self.status_and_code().0
    }

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, ErrorCode::Forbidden),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, ErrorCode::BadRequest),
            Self::Conflict(_) => (StatusCode::CONFLICT, ErrorCode::Conflict),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            Self::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::UnsupportedMediaType,
            ),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable),
            Self::TooManyAuthFailures(_) => {
                (StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests)
            }
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyAuthFailures(wait) = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_secs(wait)),
            );
        }
        if let Self::PayloadTooLarge(_) = self {
            // The rest of the body is never read, so this connection cannot carry another
            // request; saying so keeps clients from reusing it.
            response.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

/// tower-http's timeout and body-limit layers answer with a bare status (the limit with a
/// plain-text line). This API answers every error as JSON, so those answers are rewritten:
/// the only non-JSON 413 and 503 come from those layers.
pub fn in_api_shape(response: Response, max_body_bytes: usize) -> Response {
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(max_body_bytes).into_response(),
        StatusCode::SERVICE_UNAVAILABLE => {
            tracing::warn!("the request timed out (server.request_timeout_secs)");
            ApiError::Unavailable("the request timed out".into()).into_response()
        }
        _ => response,
    }
}

/// Whole seconds, rounded up: a client that waits this long is let through.
fn retry_after_secs(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // Not a fault of this request: the reason is already logged and shown in /v1/status.
        if let StoreError::AuditChainBroken(_) = err {
            return Self::Unavailable(err.to_string());
        }
        tracing::error!(error = %err, "store failure while serving a request");
        Self::Internal
    }
}

impl From<IntakeError> for ApiError {
    fn from(err: IntakeError) -> Self {
        match err {
            IntakeError::UnknownSource(_) => Self::NotFound(err.to_string()),
            IntakeError::AddressNotAllowed(_) | IntakeError::OutOfScope(_) => {
                Self::Forbidden(err.to_string())
            }
            IntakeError::Unauthenticated(_) => Self::Unauthorized(err.to_string()),
            IntakeError::UnsupportedContentType => Self::UnsupportedMediaType(err.to_string()),
            IntakeError::Malformed(_) => Self::BadRequest(err.to_string()),
            IntakeError::ShuttingDown => Self::Unavailable(err.to_string()),
            IntakeError::Store(err) if matches!(*err, StoreError::AuditChainBroken(_)) => {
                Self::Unavailable(err.to_string())
            }
            // The queue has already logged the cause.
            IntakeError::Store(_) => {
                Self::Unavailable("the notification could not be stored; retry later".into())
            }
        }
    }
}
