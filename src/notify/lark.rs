//! Lark / Feishu custom bot: an interactive card; signed with `timestamp` (s, as text) and
//! `sign = base64(HMAC-SHA256(key = timestamp + "\n" + secret, message = ""))` in the body.
//! Every value is `plain_text`, which Lark renders without markup or mentions.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::channel::{Answer, secret, summary};
use super::escape;
use super::message::Message;
use crate::config::Channel;
use crate::domain::notice::Severity;

pub(super) fn sign(secret: &str, timestamp_s: i64) -> String {
    let key = format!("{timestamp_s}\n{secret}");
    let mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

pub(super) fn request(channel: &Channel, message: &Message, now: DateTime<Utc>) -> Value {
    let timestamp = now.timestamp();
    let text = |content: String| json!({"tag": "plain_text", "content": content});
    let mut elements = vec![json!({
        "tag": "div",
        "fields": message.facts.iter().map(|f| json!({
            "is_short": true,
            "text": text(format!("{}: {}", f.label, escape::plain(&f.value))),
        })).collect::<Vec<_>>(),
    })];
    if let Some(instruction) = &message.instruction {
        elements.push(json!({"tag": "div", "text": text(escape::plain(instruction))}));
    }
    if let Some(command) = &message.command {
        elements.push(json!({"tag": "div", "text": text(command.clone())}));
    }
    if let Some(link) = &message.link {
        let label = super::text::label(message.language, "leak_url");
        elements.push(json!({"tag": "action", "actions": [{
            "tag": "button", "type": "default", "text": text(label.to_owned()), "url": link,
        }]}));
    }
    let template = match message.severity {
        Severity::Critical => "red",
        Severity::Warning => "orange",
        Severity::Info => "blue",
    };
    json!({
        "timestamp": timestamp.to_string(),
        "sign": sign(secret(channel), timestamp),
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {"template": template, "title": text(escape::plain(&message.title))},
            "elements": elements,
        },
    })
}

/// `{"code": 0, "msg": "success"}`; older bots answer `{"StatusCode": 0, ...}`.
pub(super) fn judge(body: &str) -> Answer {
    let parsed: Value = serde_json::from_str(body).unwrap_or_default();
    let code = parsed
        .get("code")
        .or_else(|| parsed.get("StatusCode"))
        .and_then(Value::as_i64);
    match code {
        Some(0) => Answer::Accepted,
        Some(code) => {
            let message = parsed
                .get("msg")
                .or_else(|| parsed.get("StatusMessage"))
                .and_then(Value::as_str)
                .unwrap_or("");
            // 11232: the bot is sending too fast.
            let error = format!("code {code}: {}", summary(message));
            match code {
                11232 => Answer::Unavailable(error),
                _ => Answer::Refused(error),
            }
        }
        None => Answer::Refused(format!("unexpected answer: {}", summary(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_keys_the_hmac_with_the_string_to_sign() {
        // python: base64(hmac.new(b"1700000000\nlarksecret", b"", sha256).digest())
        assert_eq!(
            sign("larksecret", 1_700_000_000),
            "9tAorv8A/4Mb2NzIxVauBMTDHC2MjRxDs/a0kZWnTWE="
        );
    }

    #[test]
    fn a_non_zero_code_is_a_failure() {
        assert_eq!(judge(r#"{"code":0,"msg":"success"}"#), Answer::Accepted);
        assert_eq!(
            judge(
                r#"{"code":19021,"msg":"sign match fail or timestamp is not within one hour from current time"}"#
            ),
            Answer::Refused(
                "code 19021: sign match fail or timestamp is not within one hour from current time"
                    .into()
            )
        );
    }
}
