//! A notification's content before it meets a platform: a headline, labelled facts, what to
//! do and the command that does it. Values come from the incident and are untrusted; each
//! channel escapes them for its medium.

use crate::config::{Channel, Language};
use crate::domain::Incident;
use crate::domain::notice::{self, NoticeKind, Severity};

use super::text;

/// One labelled value. `key` is stable (the generic webhook's field name), `label` is in
/// the channel's language, `value` is untrusted text.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: NoticeKind,
    pub severity: Severity,
    pub language: Language,
    pub incident: Option<i64>,
    /// The outbox's dedup key (`incident-7-opened`).
    pub dedup_key: String,
    /// The same for every notice of one incident: PagerDuty's alert key.
    pub incident_key: String,
    pub title: String,
    pub facts: Vec<Fact>,
    pub instruction: Option<String>,
    /// The exact command that does what `instruction` asks.
    pub command: Option<String>,
    /// Where the key leaked, when it is an `https://` URL.
    pub link: Option<String>,
}

/// The key id as shown: all but the last 6 characters masked, unless the channel may see it.
pub fn shown_key(key: &str, show: bool) -> String {
    let chars: Vec<char> = key.chars().collect();
    if show || chars.len() <= 6 {
        return if show {
            key.to_owned()
        } else {
            "*".repeat(chars.len())
        };
    }
    let keep: String = chars[chars.len() - 6..].iter().collect();
    format!("{}{keep}", "*".repeat(chars.len() - 6))
}

/// The content of `kind` about `incident`, with the facts stored when it was caused.
pub fn compose(
    channel: &Channel,
    incident: &Incident,
    kind: NoticeKind,
    detail: &serde_json::Value,
    dedup_key: &str,
) -> Message {
    let lang = channel.language;
    let key = shown_key(incident.access_key_id.as_str(), channel.show_key_id);
    let id = incident.id.0;
    let mut facts = Vec::new();
    let mut fact = |k: &'static str, value: String| {
        facts.push(Fact {
            key: k,
            label: text::label(lang, k),
            value,
        });
    };
    fact("incident", id.to_string());
    fact("access_key_id", key.clone());
    let text_of = |k: &str| detail.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(source) = text_of("source") {
        fact("source", source);
    }
    if let Some(account) = incident
        .account_name
        .clone()
        .or(incident.account_id.clone())
    {
        fact("account", account);
    }
    if let Some(user) = &incident.user_name {
        fact("user_name", user.clone());
    }
    if let Some(parent) = detail.get("parent_incident_id").and_then(|p| p.as_i64()) {
        fact("parent_incident", parent.to_string());
    }
    if let Some(ms) = detail
        .get("time_to_containment_ms")
        .and_then(|m| m.as_i64())
    {
        fact("time_to_containment", text::duration(lang, ms));
    }
    if let Some(state) = text_of("state") {
        let reason = text_of("reason")
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        fact("state", format!("{state}{reason}"));
    }
    if let Some(step) = text_of("step").or(text_of("approval")) {
        fact("step", step);
    }
    if kind == NoticeKind::StepFailing
        && let Some(error) = text_of("error").or(incident.last_error.clone())
    {
        fact("last_error", error.chars().take(300).collect());
    }
    let link = incident
        .leak_url
        .as_deref()
        .and_then(super::escape::https_link);
    if link.is_none()
        && let Some(url) = &incident.leak_url
    {
        fact("leak_url", url.clone());
    }
    let (instruction, command) = match kind {
        NoticeKind::NeedsPerson => {
            let action = notice::action_for(detail);
            let explanation = notice::explanation_for(detail, incident.dry_run).unwrap_or_default();
            (
                Some(text::instruction(lang, action, &explanation)),
                action.map(|a| curl_line(id, a)),
            )
        }
        _ => (None, None),
    };
    Message {
        kind,
        severity: kind.severity(),
        language: lang,
        incident: Some(id),
        dedup_key: dedup_key.to_owned(),
        incident_key: format!("akguard-incident-{id}"),
        title: text::title(lang, kind, id, &key),
        facts,
        instruction,
        command,
        link,
    }
}

/// `akguard notify test`'s message.
pub fn test_message(channel: &Channel) -> Message {
    let lang = channel.language;
    Message {
        kind: NoticeKind::Test,
        severity: Severity::Info,
        language: lang,
        incident: None,
        dedup_key: format!("test-{}", channel.name),
        incident_key: format!("akguard-test-{}", channel.name),
        title: text::title(lang, NoticeKind::Test, 0, &channel.name),
        facts: Vec::new(),
        instruction: Some(text::test_body(lang).to_owned()),
        command: None,
        link: None,
    }
}

/// The operator action as a request to akguard's API. The URL and token are the reader's
/// (`AKGUARD_URL`, `AKGUARD_TOKEN`): akguard does not know how people reach it.
fn curl_line(id: i64, action: &str) -> String {
    format!(
        "curl -X POST -H \"Authorization: Bearer $AKGUARD_TOKEN\" \
         \"$AKGUARD_URL/v1/incidents/{id}/actions/{action}\""
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_keep_only_their_last_six_characters() {
        assert_eq!(shown_key("LTAI5tABCDEF123456", false), "************123456");
        assert_eq!(shown_key("LTAI5tABCDEF123456", true), "LTAI5tABCDEF123456");
        assert_eq!(shown_key("ABC", false), "***");
    }
}
