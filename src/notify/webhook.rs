//! A generic JSON webhook, signed exactly as akguard verifies its own intake:
//! `X-Akguard-Timestamp` (s) and `X-Akguard-Signature: sha256=HMAC(secret, ts "." body)`.
//! Values stay as data (JSON escapes them); the receiver renders them.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::channel::{Request, secret};
use super::message::Message;
use crate::config::{Channel, Language};
use crate::intake::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook};

pub(super) fn request(channel: &Channel, message: &Message, now: DateTime<Utc>) -> Request {
    let facts: serde_json::Map<String, serde_json::Value> = message
        .facts
        .iter()
        .map(|f| (f.key.to_owned(), f.value.clone().into()))
        .collect();
    let body = json!({
        "event": message.kind.as_str(),
        "severity": message.severity.as_str(),
        "incident_id": message.incident,
        "dedup_key": message.dedup_key,
        "language": match message.language { Language::En => "en", Language::Ja => "ja", Language::Zh => "zh" },
        "title": message.title,
        "facts": facts,
        "instruction": message.instruction,
        "command": message.command,
        "link": message.link,
    })
    .to_string()
    .into_bytes();
    let timestamp = now.timestamp().to_string();
    let signature = sign_webhook(secret(channel), &timestamp, &body);
    Request {
        url: channel.url.clone(),
        headers: vec![
            ("content-type", "application/json".into()),
            (TIMESTAMP_HEADER, timestamp),
            (SIGNATURE_HEADER, signature),
        ],
        body,
    }
}
