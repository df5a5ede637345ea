//! One signed request and its decoded answer; no retries, no rate limits.

use std::time::Duration;

use serde_json::Value;

use super::credentials::{Credentials, parse_temporary};
use super::error::{ApiFailure, CloudError, decode_failure};
use super::parse::{flag, text};
use super::product::Product;
use super::redact;
use super::signed::{FORM, Prepared, SignatureVersion, prepare_v1, prepare_v3};
use crate::monitoring::record;

/// A successful call: its decoded body and the `RequestId` for the audit log.
#[derive(Debug, Clone)]
pub struct Called<T> {
    pub request_id: String,
    pub value: T,
}

impl<T> Called<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Called<U> {
        Called {
            request_id: self.request_id,
            value: f(self.value),
        }
    }
}

/// HTTPS (rustls) with explicit connect and total timeouts. One client, so one connection
/// pool: each endpoint's connections (TCP, TLS, the DNS answer behind them) are set up once
/// and reused, and no call on the containment path waits for a handshake.
pub struct Transport {
    http: reqwest::Client,
    signature_version: SignatureVersion,
}

impl Transport {
    pub fn new(
        connect_timeout: Duration,
        timeout: Duration,
        signature_version: SignatureVersion,
    ) -> Result<Self, CloudError> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            // A small request must not wait for Nagle's algorithm to coalesce it.
            .tcp_nodelay(true)
            .user_agent(concat!("akguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CloudError::Credentials(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            signature_version,
        })
    }

    /// Signs `params` with fresh nonce and timestamp and POSTs them as a form, as the
    /// official SDKs do for body parameters (which keeps them out of URLs and their logs).
    pub async fn send(
        &self,
        endpoint: &str,
        product: Product,
        action: &'static str,
        params: &[(String, String)],
        credentials: &Credentials,
    ) -> Result<Called<Value>, CloudError> {
        let result = self
            .send_once(endpoint, product, action, params, credentials)
            .await;
        let outcome = result.as_ref().map_or_else(CloudError::kind, |_| "ok");
        record::cloud_call(product.name(), action, outcome);
        result
    }

    async fn send_once(
        &self,
        endpoint: &str,
        product: Product,
        action: &str,
        params: &[(String, String)],
        credentials: &Credentials,
    ) -> Result<Called<Value>, CloudError> {
        let url = format!("{}/", endpoint.trim_end_matches('/'));
        let prepared = match self.signature_version {
            SignatureVersion::V1 => prepare_v1(product, action, params, credentials),
            SignatureVersion::V3 => prepare_v3(&url, product, action, params, credentials)?,
        };
        let Prepared {
            headers,
            body,
            string_to_sign,
            values: all,
        } = prepared;
        let mut request = self
            .http
            .post(&url)
            .header("content-type", FORM)
            .header("accept", "application/json");
        for (name, mut value) in headers {
            // Credentials and signatures never show in reqwest's debug output.
            value.set_sensitive(name == "authorization" || name == "x-acs-security-token");
            request = request.header(name, value);
        }
        let started = std::time::Instant::now();
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(action, &e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_millis);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(action, &e))?;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        if !(200..300).contains(&status) {
            let raw = decode_failure(status, &bytes, retry_after);
            if raw.code == "SignatureDoesNotMatch" {
                log_signature_mismatch(action, &raw.message, &string_to_sign);
            }
            let failure = ApiFailure {
                message: redact::message(&raw.message, &all),
                ..raw
            };
            tracing::debug!(product = product.name(), action, status, code = %failure.code, duration_ms = elapsed_ms, "call failed");
            return Err(CloudError::Api {
                action: action.into(),
                failure: Box::new(failure),
            });
        }
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| CloudError::Decode {
            action: action.into(),
            message: format!("not JSON: {e}"),
            request_id: None,
        })?;
        let request_id = text(&value, &["RequestId"]).unwrap_or_default();
        // BSS reports some failures inside a 200 answer.
        if value.get("Success").is_some() && !flag(&value, "Success") {
            let failure = ApiFailure {
                http_status: status,
                code: text(&value, &["Code"]).unwrap_or_else(|| "UnknownError".into()),
                message: redact::message(&text(&value, &["Message"]).unwrap_or_default(), &all),
                request_id: Some(request_id),
                host_id: None,
                recommend: None,
                retry_after,
            };
            return Err(CloudError::Api {
                action: action.into(),
                failure: Box::new(failure),
            });
        }
        tracing::debug!(product = product.name(), action, request_id = %request_id, duration_ms = elapsed_ms, "call succeeded");
        Ok(Called { request_id, value })
    }

    /// Fetches the instance RAM role's credentials from the ECS metadata service, with a
    /// session token when the service offers one (IMDSv2) and without otherwise.
    pub async fn ecs_role_credentials(
        &self,
        metadata_url: &str,
        role: Option<&str>,
    ) -> Result<Credentials, CloudError> {
        let base = metadata_url.trim_end_matches('/');
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            CloudError::Credentials(format!("ECS metadata service: {what}: {e}"))
        };
        // Unreachable, or failing on its side: the next attempt may find it back.
        let pending = |what: &str, e: &dyn std::fmt::Display| {
            CloudError::CredentialsPending(format!("ECS metadata service: {what}: {e}"))
        };
        let token = match self
            .http
            .put(format!("{base}/latest/api/token"))
            .header("X-aliyun-ecs-metadata-token-ttl-seconds", "21600")
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.text().await.ok(),
            _ => None,
        };
        let get = |path: String| {
            let mut request = self.http.get(path);
            if let Some(token) = &token {
                request = request.header("X-aliyun-ecs-metadata-token", token);
            }
            request.send()
        };
        let path = format!("{base}/latest/meta-data/ram/security-credentials/");
        let role = match role {
            Some(role) => role.to_owned(),
            None => {
                let listed = get(path.clone())
                    .await
                    .map_err(|e| pending("listing roles", &e))?;
                if listed.status().is_server_error() {
                    return Err(pending("listing roles", &listed.status()));
                }
                let names = listed.text().await.map_err(|e| fail("listing roles", &e))?;
                names
                    .lines()
                    .next()
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty())
                    .ok_or_else(|| fail("listing roles", &"no role is attached to this instance"))?
            }
        };
        let response = get(format!("{path}{role}"))
            .await
            .map_err(|e| pending("credentials", &e))?;
        if response.status().is_server_error() {
            return Err(pending("credentials", &response.status()));
        }
        if !response.status().is_success() {
            return Err(fail("credentials", &response.status()));
        }
        let value: Value = response.json().await.map_err(|e| fail("credentials", &e))?;
        if text(&value, &["Code"]).is_some_and(|c| c != "Success") {
            return Err(fail("credentials", &"the service did not answer Success"));
        }
        parse_temporary(&value).ok_or_else(|| fail("credentials", &"incomplete answer"))
    }
}

fn transport_error(action: &str, e: &reqwest::Error) -> CloudError {
    if e.is_timeout() {
        CloudError::Timeout {
            action: action.into(),
        }
    } else {
        CloudError::Connect {
            action: action.into(),
            // reqwest's messages name the URL, never the form body.
            message: e.to_string(),
        }
    }
}

/// Says whether the server signed the very string akguard signed: if so the AccessKey secret
/// is wrong, otherwise the request was altered or encoded differently. Neither string is
/// logged: a V1 one holds every parameter of the request.
fn log_signature_mismatch(action: &str, raw_message: &str, ours: &str) {
    let identical = redact::server_string_to_sign(raw_message) == Some(ours);
    tracing::error!(
        action,
        identical,
        "signature rejected; when the strings to sign are identical the AccessKey secret is wrong"
    );
}
