//! DingTalk custom robot: a Markdown message; signed ("加签") with `timestamp` (ms) and
//! `sign = urlencode(base64(HMAC-SHA256(secret, timestamp + "\n" + secret)))` in the query.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::channel::{Answer, judge_errcode, secret};
use super::escape;
use super::message::Message;
use crate::config::Channel;

/// "Sending too fast" (over 20 messages a minute): worth waiting for.
const THROTTLED: &[i64] = &[130101, 410100];

pub(super) fn sign(secret: &str, timestamp_ms: i64) -> String {
    let to_sign = format!("{timestamp_ms}\n{secret}");
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(super) fn request(
    channel: &Channel,
    message: &Message,
    now: DateTime<Utc>,
) -> (reqwest::Url, Value) {
    let timestamp = now.timestamp_millis();
    let mut url = channel.url.clone();
    // `query_pairs_mut` form-encodes the signature, as the official sample's `quote_plus`.
    url.query_pairs_mut()
        .append_pair("timestamp", &timestamp.to_string())
        .append_pair("sign", &sign(secret(channel), timestamp));
    let body = json!({
        "msgtype": "markdown",
        "markdown": {"title": escape::plain(&message.title), "text": markdown(message)},
        "at": {"isAtAll": false},
    });
    (url, body)
}

/// The Markdown both DingTalk and WeCom read.
pub(super) fn markdown(message: &Message) -> String {
    let mut text = format!("### {}\n\n", escape::markdown(&message.title));
    for fact in &message.facts {
        text.push_str(&format!(
            "- **{}**: {}\n",
            fact.label,
            escape::markdown(&fact.value)
        ));
    }
    if let Some(link) = &message.link {
        let label = super::text::label(message.language, "leak_url");
        text.push_str(&format!("- **{label}**: [{label}]({link})\n"));
    }
    if let Some(instruction) = &message.instruction {
        text.push_str(&format!("\n{}\n", escape::markdown(instruction)));
    }
    if let Some(command) = &message.command {
        // A command akguard wrote from an incident id and an action name: shown as code.
        text.push_str(&format!("\n`{}`\n", command.replace('`', "'")));
    }
    text
}

pub(super) fn judge(body: &str) -> Answer {
    judge_errcode(body, THROTTLED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_construction() {
        // Computed independently: printf '1700000000000\nSECsecret' | openssl dgst -sha256
        // -hmac SECsecret -binary | base64
        assert_eq!(
            sign("SECsecret", 1_700_000_000_000),
            "0QWYb8Ux63Sm4BhHaJNL3lv5mqW1sLFoks7vu+HFFi4="
        );
    }

    #[test]
    fn a_200_with_an_error_code_is_a_failure() {
        assert_eq!(judge(r#"{"errcode":0,"errmsg":"ok"}"#), Answer::Accepted);
        assert_eq!(
            judge(r#"{"errcode":310000,"errmsg":"sign not match"}"#),
            Answer::Refused("errcode 310000: sign not match".into())
        );
        assert!(matches!(
            judge(r#"{"errcode":130101,"errmsg":"send too fast"}"#),
            Answer::Unavailable(_)
        ));
    }
}
