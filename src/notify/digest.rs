//! A burst of `opened` notices for one chat channel as one message: during a burst (a leaked
//! key list pasted into a scanner, a replayed backlog) a chat room hears "N incidents
//! opened" once, with one line per incident, instead of N messages. Each notice keeps its
//! own outbox row, dedup key and delivery state; the digest's verdict is each row's verdict.
//! PagerDuty (one alert per incident, by its dedup key) and the generic webhook (one event per
//! notice) are never digested.

use crate::config::{Channel, ChannelKind};
use crate::domain::Incident;
use crate::domain::notice::NoticeKind;

use super::message::{Fact, Message, shown_key};
use super::text;

/// Incidents in one digest: WeCom takes at most 4,096 bytes of Markdown, and a line is
/// about 60.
pub const MAX_LINES: usize = 32;

/// Whether `kind` notices to `channel` are gathered into a digest when several are due at
/// once.
pub fn digests(channel: &Channel, kind: NoticeKind) -> bool {
    kind == NoticeKind::Opened
        && matches!(
            channel.kind,
            ChannelKind::Dingtalk | ChannelKind::Lark | ChannelKind::Slack | ChannelKind::Wecom
        )
}

/// One message for `opened`: each incident with the source that reported it (from the
/// notice's stored detail). A fact per incident, labelled like a single notice's incident
/// fact, valued `ID: KEY (SOURCE)` with the key masked as in a single notice.
pub fn compose(channel: &Channel, opened: &[(&Incident, &serde_json::Value)]) -> Message {
    let lang = channel.language;
    let facts = opened
        .iter()
        .map(|(incident, detail)| {
            let key = shown_key(incident.access_key_id.as_str(), channel.show_key_id);
            let value = match detail.get("source").and_then(|s| s.as_str()) {
                Some(source) => format!("{}: {key} ({source})", incident.id.0),
                None => format!("{}: {key}", incident.id.0),
            };
            Fact {
                key: "incident",
                label: text::label(lang, "incident"),
                value,
            }
        })
        .collect();
    let first = opened.first().map_or(0, |(i, _)| i.id.0);
    let last = opened.last().map_or(0, |(i, _)| i.id.0);
    Message {
        kind: NoticeKind::Opened,
        severity: NoticeKind::Opened.severity(),
        language: lang,
        incident: None,
        dedup_key: format!("digest-opened-{first}-{last}"),
        incident_key: format!("akguard-digest-{first}-{last}"),
        title: text::digest_title(lang, opened.len()),
        facts,
        instruction: None,
        command: None,
        link: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Language;
    use crate::domain::notice::{Route, Severity};

    fn channel(kind: ChannelKind) -> Channel {
        Channel {
            name: "c".into(),
            kind,
            url: reqwest::Url::parse("https://robot.example/send").unwrap(),
            secret: None,
            route: Route {
                channel: "c".into(),
                events: NoticeKind::ALL.to_vec(),
                min_severity: Severity::Info,
            },
            language: Language::En,
            show_key_id: false,
        }
    }

    #[test]
    fn only_chat_channels_digest_and_only_opened_notices() {
        use ChannelKind::*;
        for kind in [Dingtalk, Lark, Slack, Wecom] {
            assert!(digests(&channel(kind), NoticeKind::Opened), "{kind:?}");
            for other in NoticeKind::ALL.iter().filter(|k| **k != NoticeKind::Opened) {
                assert!(!digests(&channel(kind), *other), "{kind:?} {other:?}");
            }
        }
        // One alert per incident (PagerDuty's dedup key), one event per notice (webhook).
        for kind in [Pagerduty, Webhook] {
            assert!(NoticeKind::ALL.iter().all(|k| !digests(&channel(kind), *k)));
        }
    }

    #[test]
    fn the_headline_counts_the_incidents_in_each_language() {
        assert_eq!(
            text::digest_title(Language::En, 3),
            "akguard: 3 incidents opened for leaked AccessKeys"
        );
        assert_eq!(
            text::digest_title(Language::Ja, 3),
            "akguard: 漏洩した AccessKey のインシデントを 3 件起票しました"
        );
        assert_eq!(
            text::digest_title(Language::Zh, 3),
            "akguard: 已为泄露的 AccessKey 创建 3 个事件"
        );
    }
}
