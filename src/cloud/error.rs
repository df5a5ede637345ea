//! Alibaba Cloud errors, decoded from the gateway's error body and sorted into what a caller
//! can do about them: retry, treat as already done, or give up.

use std::time::Duration;

use serde_json::Value;

/// An error answer from an Alibaba Cloud API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub http_status: u16,
    pub code: String,
    pub message: String,
    pub request_id: Option<String>,
    pub host_id: Option<String>,
    pub recommend: Option<String>,
    /// From `x-acs-retry-after` (milliseconds), when the server asked for a pause.
    pub retry_after: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{action}: {} ({}) {}, request id {}", .failure.code, .failure.http_status, .failure.message, .failure.request_id.as_deref().unwrap_or("none"))]
    Api {
        action: String,
        failure: Box<ApiFailure>,
    },
    #[error("{action}: request timed out")]
    Timeout { action: String },
    #[error("{action}: cannot reach the endpoint: {message}")]
    Connect { action: String, message: String },
    #[error("{action}: unexpected response: {message}")]
    Decode {
        action: String,
        message: String,
        request_id: Option<String>,
    },
    #[error("credentials unavailable: {0}")]
    Credentials(String),
    /// The credentials could not be fetched for now (STS or the metadata service failed
    /// transiently): nothing was sent, and a later attempt may succeed.
    #[error("credentials unavailable for now: {0}")]
    CredentialsPending(String),
    #[error("endpoint for {product} is not a valid URL: {url}")]
    Endpoint { product: &'static str, url: String },
}

/// What a caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Transient: throttling, server faults, timeouts, connection errors.
    Retryable,
    /// The effect the call wanted is already in place (e.g. the policy is already attached).
    AlreadyDone,
    Fatal,
}

/// Codes that mean "what you asked for is already so", per action.
const ALREADY_DONE: &[(&str, &str)] = &[
    ("CreatePolicy", "EntityAlreadyExists.Policy"),
    ("AttachPolicyToUser", "EntityAlreadyExists.User.Policy"),
    ("DetachPolicyFromUser", "EntityNotExist.User.Policy"),
    ("DeleteAccessKey", "EntityNotExist.User.AccessKey"),
];

impl CloudError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Api { action, failure } => classify(action, failure),
            Self::Timeout { .. } | Self::Connect { .. } | Self::CredentialsPending(_) => {
                ErrorClass::Retryable
            }
            Self::Decode { .. } | Self::Credentials(_) | Self::Endpoint { .. } => ErrorClass::Fatal,
        }
    }

    /// What went wrong, as a metric label: `throttled`, `client_error`, `server_error`,
    /// `timeout`, `unreachable`, `bad_answer`, `credentials` or `endpoint`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Api { failure, .. } => {
                let code = failure.code.as_str();
                if code.starts_with("Throttling")
                    || code == "Rejected.Throttling"
                    || failure.http_status == 429
                {
                    "throttled"
                } else if failure.http_status >= 500 {
                    "server_error"
                } else {
                    "client_error"
                }
            }
            Self::Timeout { .. } => "timeout",
            Self::Connect { .. } => "unreachable",
            Self::Decode { .. } => "bad_answer",
            Self::Credentials(_) | Self::CredentialsPending(_) => "credentials",
            Self::Endpoint { .. } => "endpoint",
        }
    }

    /// The failed call's request id, for the audit log.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api { failure, .. } => failure.request_id.as_deref(),
            Self::Decode { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// The Alibaba error code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { failure, .. } => Some(&failure.code),
            _ => None,
        }
    }

    /// The gateway turned the call away before any action ran (flow control, or temporary
    /// credentials it would not accept), so even a write may be sent again. Alibaba documents
    /// no other code with that guarantee: a 5xx or a lost answer may follow a completed action.
    pub fn refused_before_acting(&self) -> bool {
        match self {
            Self::Api { failure, .. } => {
                let code = failure.code.as_str();
                code.starts_with("Throttling")
                    || code == "Rejected.Throttling"
                    || code.starts_with("InvalidSecurityToken")
                    || failure.http_status == 429
            }
            // Nothing was sent: the credentials to sign with were not there yet.
            Self::CredentialsPending(_) => true,
            _ => false,
        }
    }

    /// Whether the call may have taken effect although it failed: its answer was lost, came
    /// from a server fault, or could not be read. A call refused with a client error, or never
    /// sent, did nothing.
    pub fn may_have_acted(&self) -> bool {
        match self {
            Self::Api { failure, .. } => {
                failure.http_status >= 500 && !self.refused_before_acting()
            }
            Self::Timeout { .. } | Self::Connect { .. } | Self::Decode { .. } => true,
            Self::Credentials(_) | Self::CredentialsPending(_) | Self::Endpoint { .. } => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { failure, .. } => failure.retry_after,
            _ => None,
        }
    }
}

fn classify(action: &str, failure: &ApiFailure) -> ErrorClass {
    let code = failure.code.as_str();
    if ALREADY_DONE.contains(&(action, code)) {
        return ErrorClass::AlreadyDone;
    }
    let retryable_code = code.starts_with("Throttling")
        || matches!(
            code,
            "Rejected.Throttling"
                | "ServiceUnavailable"
                | "InternalError"
                | "UnknownError"
                | "UndefinedError"
        );
    if retryable_code || failure.http_status >= 500 || failure.http_status == 429 {
        ErrorClass::Retryable
    } else {
        ErrorClass::Fatal
    }
}

/// Decodes an error body as sent. Field names are matched case-insensitively, as the SDKs
/// do. The message may echo the request: callers clean it with `redact::message` first.
pub(super) fn decode_failure(
    http_status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> ApiFailure {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |name: &str| {
        value.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
    };
    ApiFailure {
        http_status,
        code: field("Code").unwrap_or_else(|| format!("HTTP{http_status}")),
        message: field("Message")
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
        request_id: field("RequestId"),
        host_id: field("HostId"),
        recommend: field("Recommend"),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(action: &str, status: u16, code: &str) -> CloudError {
        CloudError::Api {
            action: action.into(),
            failure: Box::new(ApiFailure {
                http_status: status,
                code: code.into(),
                message: String::new(),
                request_id: None,
                host_id: None,
                recommend: None,
                retry_after: None,
            }),
        }
    }

    #[test]
    fn a_failed_call_may_have_acted_only_when_its_answer_is_in_doubt() {
        assert!(api("AttachPolicyToUser", 503, "ServiceUnavailable").may_have_acted());
        assert!(api("AttachPolicyToUser", 500, "InternalError").may_have_acted());
        assert!(!api("AttachPolicyToUser", 403, "NoPermission").may_have_acted());
        assert!(!api("AttachPolicyToUser", 400, "Throttling.User").may_have_acted());
        let timeout = CloudError::Timeout {
            action: "AttachPolicyToUser".into(),
        };
        assert!(timeout.may_have_acted());
        assert!(!CloudError::Credentials("none".into()).may_have_acted());
    }

    #[test]
    fn errors_are_classified_as_the_reference_says() {
        use ErrorClass::*;
        let cases = [
            ("ListUsers", 400, "Throttling.User", Retryable),
            ("ListUsers", 429, "Throttling.Api", Retryable),
            ("ListUsers", 400, "Rejected.Throttling", Retryable),
            ("ListUsers", 503, "ServiceUnavailable", Retryable),
            ("ListUsers", 500, "InternalError", Retryable),
            ("ListUsers", 500, "UnknownError", Retryable),
            ("ListUsers", 502, "HTTP502", Retryable),
            (
                "CreatePolicy",
                409,
                "EntityAlreadyExists.Policy",
                AlreadyDone,
            ),
            (
                "AttachPolicyToUser",
                409,
                "EntityAlreadyExists.User.Policy",
                AlreadyDone,
            ),
            (
                "DeleteAccessKey",
                404,
                "EntityNotExist.User.AccessKey",
                AlreadyDone,
            ),
            (
                "UpdateAccessKey",
                404,
                "EntityNotExist.User.AccessKey",
                Fatal,
            ),
            (
                "CreateAccessKey",
                409,
                "LimitExceeded.User.AccessKey",
                Fatal,
            ),
            ("ListUsers", 400, "SignatureDoesNotMatch", Fatal),
            ("ListUsers", 403, "Forbidden", Fatal),
        ];
        for (action, status, code, class) in cases {
            assert_eq!(api(action, status, code).class(), class, "{action} {code}");
        }
        let timeout = CloudError::Timeout {
            action: "LookupEvents".into(),
        };
        assert_eq!(timeout.class(), Retryable);
    }

    #[test]
    fn only_throttling_and_stale_tokens_prove_the_server_did_not_act() {
        for (status, code) in [
            (400, "Throttling.User"),
            (429, "Throttling.Api"),
            (400, "Rejected.Throttling"),
            (400, "InvalidSecurityToken.Expired"),
            (429, "HTTP429"),
        ] {
            assert!(
                api("CreateAccessKey", status, code).refused_before_acting(),
                "{code}"
            );
        }
        for (status, code) in [
            (503, "ServiceUnavailable"),
            (500, "InternalError"),
            (502, "HTTP502"),
            (400, "SignatureNonceUsed"),
        ] {
            assert!(
                !api("CreateAccessKey", status, code).refused_before_acting(),
                "{code}"
            );
        }
        let timeout = CloudError::Timeout {
            action: "CreateAccessKey".into(),
        };
        assert!(!timeout.refused_before_acting());
    }

    #[test]
    fn error_bodies_are_decoded_case_insensitively() {
        let body = br#"{"requestId":"7463B73D","HostId":"ram.aliyuncs.com","code":"EntityNotExist.User",
            "Message":"The user does not exist.","Recommend":"https://api.aliyun.com/troubleshoot"}"#;
        let failure = decode_failure(404, body, None);
        assert_eq!(failure.code, "EntityNotExist.User");
        assert_eq!(failure.request_id.as_deref(), Some("7463B73D"));
        assert_eq!(failure.host_id.as_deref(), Some("ram.aliyuncs.com"));
        let failure = decode_failure(502, b"<html>bad gateway</html>", None);
        assert_eq!(failure.code, "HTTP502");
        assert!(failure.message.contains("bad gateway"));
    }
}
