//! One request per message and channel, and what the platform's answer means. Each
//! platform's own format and signature are in its module; here is what they share.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use super::message::Message;
use super::{dingtalk, lark, pagerduty, slack, webhook, wecom};
use crate::config::{Channel, ChannelKind};

/// A request ready to send. The URL may carry a signature, the body a secret (PagerDuty's
/// routing key): neither is ever logged.
#[derive(Debug)]
pub struct Request {
    pub url: reqwest::Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// What a platform's answer means for the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Accepted,
    /// The platform refused this message (a 4xx, or an error code in a 200 answer): retried
    /// a few times, then the message fails with the platform's words.
    Refused(String),
    /// It may pass later: a 5xx, a 429, throttling, a network error.
    Unavailable(String),
    /// The channel has nothing to say for this notice (PagerDuty on an opening).
    Skipped,
}

/// The channel's secret; validation made sure the kinds that need one have one.
pub(super) fn secret(channel: &Channel) -> &str {
    channel
        .secret
        .as_ref()
        .map(|s| s.expose_secret())
        .unwrap_or_default()
}

/// The request for `message` on `channel`, signed at `now`; `None` when the channel has
/// nothing to send for it.
pub fn prepare(channel: &Channel, message: &Message, now: DateTime<Utc>) -> Option<Request> {
    let json = |value: serde_json::Value| value.to_string().into_bytes();
    let plain = |url: reqwest::Url, body: serde_json::Value| Request {
        url,
        headers: vec![("content-type", "application/json".into())],
        body: json(body),
    };
    Some(match channel.kind {
        ChannelKind::Dingtalk => {
            let (url, body) = dingtalk::request(channel, message, now);
            plain(url, body)
        }
        ChannelKind::Lark => plain(channel.url.clone(), lark::request(channel, message, now)),
        ChannelKind::Slack => plain(channel.url.clone(), slack::request(message)),
        ChannelKind::Wecom => plain(channel.url.clone(), wecom::request(message)),
        ChannelKind::Pagerduty => {
            plain(channel.url.clone(), pagerduty::request(channel, message)?)
        }
        ChannelKind::Webhook => webhook::request(channel, message, now),
    })
}

/// What `status` and `body` mean on `kind`.
pub fn judge(kind: ChannelKind, status: StatusCode, body: &str) -> Answer {
    let said = || summary(body);
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Answer::Unavailable(format!("HTTP {}: {}", status.as_u16(), said()));
    }
    if !status.is_success() {
        return Answer::Refused(format!("HTTP {}: {}", status.as_u16(), said()));
    }
    match kind {
        ChannelKind::Dingtalk => dingtalk::judge(body),
        ChannelKind::Wecom => wecom::judge(body),
        ChannelKind::Lark => lark::judge(body),
        ChannelKind::Slack | ChannelKind::Pagerduty | ChannelKind::Webhook => Answer::Accepted,
    }
}

/// The platform's answer, short and on one line, for `last_error`.
pub(super) fn summary(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    match one_line.trim() {
        "" => "(empty answer)".into(),
        text => text.to_owned(),
    }
}

/// `{"errcode": N, "errmsg": "..."}` (DingTalk, WeCom): 0 is success; `throttled` codes
/// may pass later.
pub(super) fn judge_errcode(body: &str, throttled: &[i64]) -> Answer {
    let parsed: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match parsed.get("errcode").and_then(|c| c.as_i64()) {
        Some(0) => Answer::Accepted,
        Some(code) => {
            let message = parsed.get("errmsg").and_then(|m| m.as_str()).unwrap_or("");
            let error = format!("errcode {code}: {}", summary(message));
            match throttled.contains(&code) {
                true => Answer::Unavailable(error),
                false => Answer::Refused(error),
            }
        }
        None => Answer::Refused(format!("unexpected answer: {}", summary(body))),
    }
}
