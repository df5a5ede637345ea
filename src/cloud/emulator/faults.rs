//! Fault injection: throttling, server errors, latency and scripted failures, applied after a
//! request authenticates and before its action runs, so a faulted call has no side effect.

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::ids;

/// The fault settings, from the scenario's `faults` and replaceable at run time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// Probability (0.0–1.0) of answering `Throttling.User`, HTTP 400.
    pub throttle_rate: f64,
    /// Probability (0.0–1.0) of answering 503 `ServiceUnavailable` or 500 `InternalError`.
    pub error_rate: f64,
    /// Delay added before every answer on `/`.
    pub latency_ms: u64,
    /// When set, throttling answers carry `x-acs-retry-after` with this many milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// Scripted failures, consumed in order as matching calls arrive.
    pub fail_next: Vec<FailNext>,
}

/// `{"action": "AttachPolicyToUser", "count": 2, "code": "Throttling.User", "status": 400}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNext {
    pub action: String,
    /// Restricts the match to one product (`ram`, `ims`, ...), for actions several products share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "unavailable")]
    pub code: String,
    #[serde(default = "status_503")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

fn one() -> u32 {
    1
}

fn unavailable() -> String {
    "ServiceUnavailable".into()
}

fn status_503() -> u16 {
    503
}

impl Faults {
    pub(crate) fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("throttle_rate", self.throttle_rate),
            ("error_rate", self.error_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("faults.{name} must be between 0.0 and 1.0"));
            }
        }
        for entry in &self.fail_next {
            if StatusCode::from_u16(entry.status).is_err() || entry.status < 400 {
                return Err(format!(
                    "faults.fail_next: status {} is not an HTTP error status",
                    entry.status
                ));
            }
        }
        Ok(())
    }

    /// The fault this call meets, if any; scripted failures first, then the random ones.
    pub(crate) fn inject(&mut self, product: &str, action: &str) -> Result<(), ApiError> {
        let scripted = self.fail_next.iter().position(|f| {
            f.count > 0 && f.action == action && f.product.as_deref().is_none_or(|p| p == product)
        });
        if let Some(i) = scripted {
            let entry = &mut self.fail_next[i];
            entry.count -= 1;
            let status =
                StatusCode::from_u16(entry.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let message = entry
                .message
                .clone()
                .unwrap_or_else(|| default_message(&entry.code).into());
            let mut error = ApiError::new(status, entry.code.clone(), message);
            if entry.code.starts_with("Throttling") {
                error.retry_after_ms = self.retry_after_ms;
            }
            if entry.count == 0 {
                self.fail_next.remove(i);
            }
            return Err(error);
        }
        if self.throttle_rate > 0.0 && ids::unit_interval() < self.throttle_rate {
            return Err(ApiError::throttled(self.retry_after_ms));
        }
        if self.error_rate > 0.0 && ids::unit_interval() < self.error_rate {
            return Err(if ids::unit_interval() < 0.5 {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    default_message("ServiceUnavailable"),
                )
            } else {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalError",
                    default_message("InternalError"),
                )
            });
        }
        Ok(())
    }
}

/// The gateway's wording for the codes faults usually use.
fn default_message(code: &str) -> &'static str {
    match code {
        "ServiceUnavailable" => "The request has failed due to a temporary failure of the server.",
        "InternalError" | "UnknownError" => {
            "The request processing has failed due to some unknown error, exception or failure."
        }
        c if c.starts_with("Throttling") => "Request was denied due to user flow control.",
        _ => "The request failed (injected by the emulator).",
    }
}
