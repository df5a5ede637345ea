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
        ChannelKind::Pagerduty => plain(channel.url.clone(), pagerduty::request(channel, message)?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Language;
    use crate::domain::notice::{NoticeKind, Severity};
    use crate::notify::message::Fact;

    /// Chat-specific strings beside the shared corpus (`crate::hostile`), each aimed at one
    /// way of escaping a medium.
    const CHAT_HOSTILE: &[&str] = &[
        "@all",
        "@here <!channel> <!here> <@U0123ABCD>",
        "<at user_id=\"all\"></at>",
        "[click](https://evil.example/phish)",
        "<https://evil.example|totally safe>",
        "**bold** _it_ ~strike~ `code` # heading",
        "line one\n### injected heading\n> quote",
        "<font color=\"warning\">red</font><script>alert(1)</script>",
        "\u{202E}gnp.exe\u{0007}\u{001b}[31m",
        "&lt;already&gt; & <raw>",
    ];

    fn channel(kind: ChannelKind) -> Channel {
        Channel {
            name: "c".into(),
            kind,
            url: reqwest::Url::parse("https://robot.example/send?access_token=t").unwrap(),
            secret: Some("channel-secret-123456".to_owned().into()),
            route: crate::domain::notice::Route {
                channel: "c".into(),
                events: NoticeKind::ALL.to_vec(),
                min_severity: Severity::Info,
            },
            language: Language::En,
            show_key_id: false,
        }
    }

    fn message(value: &str) -> Message {
        Message {
            kind: NoticeKind::NeedsPerson,
            severity: Severity::Critical,
            language: Language::En,
            incident: Some(7),
            dedup_key: "incident-7-needs_person".into(),
            incident_key: "akguard-incident-7".into(),
            title: "akguard: incident 7 needs a person".into(),
            facts: vec![Fact {
                key: "user_name",
                label: "RAM user",
                value: value.into(),
            }],
            instruction: Some("Approve it.".into()),
            command: None,
            link: crate::notify::escape::https_link("javascript:alert(1)"),
        }
    }

    /// The rendered value as the platform would read it: the body's text fields.
    fn rendered(kind: ChannelKind, value: &str) -> String {
        let request = prepare(&channel(kind), &message(value), Utc::now()).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        let mut texts = Vec::new();
        collect_strings(&body, &mut texts);
        texts.join("\n")
    }

    fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_strings(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| collect_strings(v, out)),
            _ => {}
        }
    }

    #[test]
    fn hostile_strings_neither_mention_format_link_nor_break_lines_on_any_channel() {
        const MENTIONS: &[&str] = &[
            "@all",
            "@here",
            "<!channel>",
            "<!here>",
            "<@U0123ABCD>",
            "<at ",
        ];
        const EVERYWHERE: &[&str] = &[
            "<font",
            "<script",
            "\n###",
            "\u{202E}",
            "\u{1b}",
            "<javascript",
        ];
        // What each medium would read as markup; plain text reads none.
        let media: [(ChannelKind, &[&str]); 5] = [
            (ChannelKind::Dingtalk, &["](", "**bold", "\n> "]),
            (ChannelKind::Wecom, &["](", "**bold", "\n> "]),
            (ChannelKind::Slack, &["<https://evil", "*bold*", "`code`"]),
            (ChannelKind::Lark, &[]),
            (ChannelKind::Pagerduty, &[]),
        ];
        for (kind, markup) in media {
            let corpus = crate::hostile::hostile_strings();
            let all = corpus
                .iter()
                .map(String::as_str)
                .chain(CHAT_HOSTILE.iter().copied());
            for hostile in all {
                let out = rendered(kind, hostile);
                let ctx = format!("{kind:?} rendering {hostile:?}:\n{out}");
                for forbidden in MENTIONS.iter().chain(EVERYWHERE).chain(markup) {
                    assert!(!out.contains(forbidden), "{forbidden:?} in {ctx}");
                }
            }
        }
    }

    #[test]
    fn the_generic_webhook_keeps_values_as_json_data() {
        let request = prepare(
            &channel(ChannelKind::Webhook),
            &message("@all <b>x</b>"),
            Utc::now(),
        )
        .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["facts"]["user_name"], "@all <b>x</b>");
        assert_eq!(body["link"], serde_json::Value::Null);
    }

    #[test]
    fn answers_are_judged_by_status_then_by_the_platforms_code() {
        let ok = StatusCode::OK;
        assert_eq!(judge(ChannelKind::Slack, ok, "ok"), Answer::Accepted);
        assert!(matches!(
            judge(ChannelKind::Slack, StatusCode::BAD_REQUEST, "invalid_payload"),
            Answer::Refused(e) if e == "HTTP 400: invalid_payload"
        ));
        assert!(matches!(
            judge(ChannelKind::Pagerduty, StatusCode::TOO_MANY_REQUESTS, ""),
            Answer::Unavailable(_)
        ));
        assert!(matches!(
            judge(
                ChannelKind::Wecom,
                ok,
                r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#
            ),
            Answer::Refused(_)
        ));
        assert!(matches!(
            judge(
                ChannelKind::Lark,
                ok,
                r#"{"StatusCode":0,"StatusMessage":"success"}"#
            ),
            Answer::Accepted
        ));
    }
}
