//! Request ids and the span of a request: the client's `x-request-id`, cut and cleaned because
//! anyone can send one, or a new UUID; echoed in the answer and a field of the span every log
//! line of the request is written in.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use tracing::Span;

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id kept from a client: a UUID or a trace id fits.
const MAX_ID: usize = 64;

/// Cleans the client's `x-request-id` before tower-http's `SetRequestId` reads it: at most
/// 64 bytes, each outside `A–Z a–z 0–9 - _ . : / + = @` replaced by `_`, so that it cannot
/// forge a log line or smuggle markup into a log viewer. An empty one is dropped, and a new
/// one is made.
pub fn clean_request_id(headers: &mut HeaderMap) {
    let Some(raw) = headers.get(&X_REQUEST_ID) else {
        return;
    };
    let cleaned: String = raw
        .as_bytes()
        .iter()
        .take(MAX_ID)
        .map(|&b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => b as char,
            b'-' | b'_' | b'.' | b':' | b'/' | b'+' | b'=' | b'@' => b as char,
            _ => '_',
        })
        .collect();
    // Only the allowed bytes are left, so the value is always a valid header.
    match HeaderValue::from_str(&cleaned) {
        Ok(value) if !cleaned.bytes().all(|b| b == b'_') => {
            headers.insert(X_REQUEST_ID, value);
        }
        _ => {
            headers.remove(X_REQUEST_ID);
        }
    }
}

/// The span of one request. It is at error level so that it is enabled whenever any event of
/// the request is: a span's level decides only whether its fields are recorded, and a
/// warning logged under `log.level = "warn"` must still carry its request id.
pub fn request_span(request: &Request) -> Span {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::error_span!(
        "request",
        request.id = id,
        method = %request.method(),
        path = request.uri().path(),
    )
}

/// One line per answer, in the request's span; at debug level, since probes and webhooks
/// arrive all day.
pub fn log_response(response: &Response, latency: Duration, _span: &Span) {
    tracing::debug!(
        status = response.status().as_u16(),
        duration_ms = latency.as_millis() as u64,
        "request answered"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(raw: &[u8]) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(X_REQUEST_ID, HeaderValue::from_bytes(raw).unwrap());
        clean_request_id(&mut headers);
        let id = headers.get(X_REQUEST_ID)?;
        Some(id.to_str().unwrap().to_owned())
    }

    #[test]
    fn a_client_request_id_is_cut_and_cleaned_or_dropped() {
        assert_eq!(cleaned(b"abc").as_deref(), Some("abc"));
        let uuid = "0b6a3c1e-2f4d-4e8a-9c7b-5d1e3f2a4b6c";
        assert_eq!(cleaned(uuid.as_bytes()).as_deref(), Some(uuid));
        assert_eq!(
            cleaned(b"a b\t<script>\"x\"").as_deref(),
            Some("a_b__script__x_")
        );
        assert_eq!(
            cleaned("ünï".as_bytes()).as_deref(),
            Some("__n__"),
            "each byte of a multi-byte character"
        );
        assert_eq!(cleaned(&[b'a'; 500]).unwrap().len(), MAX_ID);
        assert_eq!(cleaned(b"   "), None);
        assert_eq!(cleaned(b""), None);
    }
}
