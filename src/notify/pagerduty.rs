//! PagerDuty Events API v2: `trigger` when the incident needs a person (or is failing, or is
//! an attacker's key), `resolve` when it is resolved or cancelled; one `dedup_key` per
//! incident ties them together. The channel's secret is the routing key.

use serde_json::{Value, json};

use super::channel::secret;
use super::escape;
use super::message::Message;
use crate::config::Channel;
use crate::domain::notice::NoticeKind;

/// PagerDuty's limit on `summary`.
const SUMMARY_MAX: usize = 1024;

pub(super) fn request(channel: &Channel, message: &Message) -> Option<Value> {
    let routing_key = secret(channel);
    let action = match message.kind {
        NoticeKind::NeedsPerson
        | NoticeKind::StepFailing
        | NoticeKind::ChainOpened
        | NoticeKind::Test => "trigger",
        NoticeKind::Resolved | NoticeKind::Cancelled => "resolve",
        NoticeKind::Opened | NoticeKind::Contained => return None,
    };
    if action == "resolve" {
        return Some(json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": message.incident_key,
        }));
    }
    let mut details = serde_json::Map::new();
    for fact in &message.facts {
        details.insert(fact.key.into(), escape::plain(&fact.value).into());
    }
    if let Some(instruction) = &message.instruction {
        details.insert("action".into(), escape::plain(instruction).into());
    }
    if let Some(command) = &message.command {
        details.insert("command".into(), command.clone().into());
    }
    let summary: String = escape::plain(&message.title)
        .chars()
        .take(SUMMARY_MAX)
        .collect();
    let mut body = json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": message.incident_key,
        "payload": {
            "summary": summary,
            "source": "akguard",
            "severity": message.severity.as_str(),
            "component": "accesskey",
            "custom_details": details,
        },
    });
    if let Some(link) = &message.link {
        body["links"] =
            json!([{"href": link, "text": super::text::label(message.language, "leak_url")}]);
    }
    Some(body)
}
