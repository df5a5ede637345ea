//! Fault injection: throttling, server errors, latency and scripted failures, applied after a
//! request authenticates and before its action runs, so a faulted call has no side effect;
//! except a scripted `lose_answer`, which lets the action run and then loses its answer (the
//! server acted, the client never heard).

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

/// `{"action": "AttachPolicyToUser", "count": 2, "code": "Throttling.User", "status": 400}`;
/// `"lose_answer": true` answers the error after the action ran.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNext {
    pub action: String,
    /// Restricts the match to one product (`ram`, `ims`, ...), for actions several products share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// Restricts the match to calls naming this user (`UserName`), so one user's calls can
    /// fail while others' of the same action go through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default = "unavailable")]
    pub code: String,
    #[serde(default = "status_503")]
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The action runs and its effect stays; only its answer is replaced by the error, as
    /// when a gateway times out or a connection drops after the service acted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lose_answer: bool,
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

    /// The fault this call meets before its action runs, if any; scripted failures first,
    /// then the random ones. `user` is the call's `UserName`; `string_to_sign` is the
    /// server's, quoted by a scripted `SignatureDoesNotMatch` as the real gateway does.
    pub(crate) fn inject(
        &mut self,
        product: &str,
        action: &str,
        user: Option<&str>,
        string_to_sign: &str,
    ) -> Result<(), ApiError> {
        if let Some(error) = self.scripted(product, action, user, false, string_to_sign) {
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

    /// The error that replaces the answer of an action that already ran, if one is scripted.
    pub(crate) fn lost_answer(
        &mut self,
        product: &str,
        action: &str,
        user: Option<&str>,
    ) -> Option<ApiError> {
        self.scripted(product, action, user, true, "")
    }

    /// Consumes one matching scripted failure.
    fn scripted(
        &mut self,
        product: &str,
        action: &str,
        user: Option<&str>,
        lose_answer: bool,
        string_to_sign: &str,
    ) -> Option<ApiError> {
        let i = self.fail_next.iter().position(|f| {
            f.count > 0
                && f.lose_answer == lose_answer
                && f.action == action
                && f.product.as_deref().is_none_or(|p| p == product)
                && f.user.as_deref().is_none_or(|u| Some(u) == user)
        })?;
        let entry = &mut self.fail_next[i];
        entry.count -= 1;
        let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        let message = match (&entry.message, entry.code.as_str()) {
            (Some(message), _) => message.clone(),
            (None, "SignatureDoesNotMatch") => format!(
                "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
            ),
            (None, code) => default_message(code).into(),
        };
        let mut error = ApiError::new(status, entry.code.clone(), message);
        if entry.code.starts_with("Throttling") {
            error.retry_after_ms = self.retry_after_ms;
        }
        if entry.count == 0 {
            self.fail_next.remove(i);
        }
        Some(error)
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
