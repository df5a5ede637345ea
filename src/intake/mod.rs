//! Leak notifications in: authenticate the raw bytes, parse the source's format, then hand
//! the result to the durable writer. Webhooks, manual reports and pollers all end here.

mod auth;
mod cloudmonitor;
mod eventbridge;
mod fields;
mod generic;
#[cfg(test)]
mod props;
mod queue;
pub mod security_center;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::config::{IntakeSource, SourceFormat};
use crate::domain::Signal;
use crate::store::{Delivery, IntakeOutcome, StoreError};

pub use auth::{AuthFailure, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook};
pub use generic::{GenericNotification, parse_generic};
pub use queue::IntakeQueue;

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("unknown notification source {0:?}")]
    UnknownSource(String),
    #[error("source address {0} is not in this source's allowlist")]
    AddressNotAllowed(IpAddr),
    /// Never carries the account the body named: that is unchecked input.
    #[error("this source may report only for its configured accounts, and the notification {0}")]
    OutOfScope(&'static str),
    #[error("authentication failed: {0}")]
    Unauthenticated(#[from] AuthFailure),
    #[error("content type must be application/json")]
    UnsupportedContentType,
    #[error("malformed notification: {0}")]
    Malformed(String),
    #[error("the notification could not be stored")]
    Store(#[source] Arc<StoreError>),
    #[error("akguard is shutting down")]
    ShuttingDown,
}

impl IntakeError {
    /// Why a notification was refused, as a metric label.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownSource(_) => "unknown_source",
            Self::AddressNotAllowed(_) | Self::OutOfScope(_) => "forbidden",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::UnsupportedContentType => "unsupported_media_type",
            Self::Malformed(_) => "malformed",
            Self::Store(_) | Self::ShuttingDown => "unavailable",
        }
    }
}

/// What became of a notification, as a metric label: its outcome, or why it was refused.
pub fn intake_outcome(result: &Result<IntakeOutcome, IntakeError>) -> &'static str {
    match result {
        Ok(outcome) => outcome.as_str(),
        Err(err) => err.kind(),
    }
}

/// What a source's parser made of a body.
#[derive(Debug)]
pub struct Parsed {
    /// `None`: a well-formed event that is not about a leaked key.
    pub signal: Option<Signal>,
    /// The sender's own id for this event, when it has one.
    pub delivery_key: Option<String>,
}

/// The webhook intake: configured sources in front of the durable writer.
pub struct Intake {
    sources: BTreeMap<String, IntakeSource>,
    hmac_window_secs: i64,
    queue: IntakeQueue,
}

/// One webhook request, before anything about it is trusted.
pub struct RawRequest<'a> {
    pub source: &'a str,
    pub peer: IpAddr,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub received_at: DateTime<Utc>,
}

impl Intake {
    pub fn new(
        sources: BTreeMap<String, IntakeSource>,
        hmac_window_secs: i64,
        queue: IntakeQueue,
    ) -> Self {
        Self {
            sources,
            hmac_window_secs,
            queue,
        }
    }

    pub fn queue(&self) -> &IntakeQueue {
        &self.queue
    }

    pub fn has_source(&self, name: &str) -> bool {
        self.sources.contains_key(name)
    }

    /// Authenticates, parses and durably records one webhook delivery.
    pub async fn receive(&self, req: RawRequest<'_>) -> Result<IntakeOutcome, IntakeError> {
        let source = self
            .sources
            .get(req.source)
            .ok_or_else(|| IntakeError::UnknownSource(req.source.to_owned()))?;
        if !source.allow.is_empty() && !source.allow.iter().any(|c| c.contains(req.peer)) {
            return Err(IntakeError::AddressNotAllowed(req.peer));
        }
        auth::verify(
            &source.auth,
            req.headers,
            req.body,
            req.received_at,
            self.hmac_window_secs,
        )?;
        if !is_json(req.headers) {
            return Err(IntakeError::UnsupportedContentType);
        }
        let parsed = match source.format {
            SourceFormat::Generic => generic::parse(req.body),
            SourceFormat::Eventbridge => eventbridge::parse(req.body),
            SourceFormat::Cloudmonitor => cloudmonitor::parse(req.body),
        }
        .map_err(IntakeError::Malformed)?;
        let Some(signal) = parsed.signal else {
            tracing::debug!(source = %source.name, "notification is not about a leaked key; ignored");
            return Ok(IntakeOutcome::Ignored);
        };
        check_scope(source, &signal)?;
        let body_sha256 = sha256_hex(req.body);
        let delivery = Delivery {
            source: source.name.clone(),
            format: source.format.as_str(),
            delivery_id: parsed
                .delivery_key
                .unwrap_or_else(|| format!("sha256:{body_sha256}")),
            received_at: req.received_at,
            body_sha256,
            actor: format!("source:{}", source.name),
            signal,
            parent: None,
        };
        self.queue.submit(delivery).await
    }
}

/// A source limited to `accounts` speaks only for those: a notification naming another
/// account, or none (it could be about any), is refused before anything is stored.
fn check_scope(source: &IntakeSource, signal: &Signal) -> Result<(), IntakeError> {
    if source.accounts.is_empty() {
        return Ok(());
    }
    match signal.account_id() {
        Some(account) if source.accounts.iter().any(|a| a == account.trim()) => Ok(()),
        Some(_) => Err(IntakeError::OutOfScope("names another account")),
        None => Err(IntakeError::OutOfScope("names no account")),
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `application/json`, optionally with parameters such as `charset`.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            let t = t.trim();
            t.eq_ignore_ascii_case("application/json")
                || t.eq_ignore_ascii_case("application/cloudevents+json")
        })
}
