//! The emulator's two kinds of error: `EmulatorError` for its owner (loading, binding,
//! serving), and `ApiError`, the Alibaba-style error a request gets back.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;

/// Why the emulator could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot read the scenario {path}: {source}")]
    ReadScenario {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the scenario does not match the schema: {0}")]
    ParseScenario(#[source] serde_json::Error),
    #[error("invalid scenario: {0}")]
    InvalidScenario(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the emulator's HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// An error answer: HTTP status, `Code` and `Message` as the real gateway or product sends them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Sent as `x-acs-retry-after` (milliseconds) when set.
    pub retry_after_ms: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    pub(crate) fn missing(name: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }

    pub(crate) fn invalid(name: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!("The specified parameter \"{name}\" is not valid: {why}."),
        )
    }

    pub(crate) fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub(crate) fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub(crate) fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(crate) fn forbidden(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub(crate) fn throttled(retry_after_ms: Option<u64>) -> Self {
        Self {
            retry_after_ms,
            ..Self::bad_request(
                "Throttling.User",
                "Request was denied due to user flow control.",
            )
        }
    }

    pub(crate) fn no_such_user(name: &str) -> Self {
        Self::not_found(
            "EntityNotExist.User",
            format!("The user does not exist: {name}."),
        )
    }

    pub(crate) fn no_such_policy(name: &str) -> Self {
        Self::not_found(
            "EntityNotExist.Policy",
            format!("The policy does not exist: {name}."),
        )
    }
}
