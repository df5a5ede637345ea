//! Slack incoming webhook: Block Kit, with a plain `text` fallback for notifications. No
//! signature: the URL is the credential.

use serde_json::{Value, json};

use super::escape;
use super::message::Message;

/// Slack's limits: a header's text, a section field's.
const HEADER_MAX: usize = 150;
const FIELD_MAX: usize = 2000;

fn clip(text: String, max: usize) -> String {
    if text.chars().count() <= max {
        return text;
    }
    let mut clipped: String = text.chars().take(max - 1).collect();
    clipped.push('…');
    clipped
}

pub(super) fn request(message: &Message) -> Value {
    let title = escape::plain(&message.title);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": clip(title.clone(), HEADER_MAX)},
    })];
    // A section holds at most 10 fields.
    for chunk in message.facts.chunks(10) {
        blocks.push(json!({
            "type": "section",
            "fields": chunk.iter().map(|f| json!({
                "type": "mrkdwn",
                "text": clip(format!("*{}*\n{}", f.label, escape::slack(&f.value)), FIELD_MAX),
            })).collect::<Vec<_>>(),
        }));
    }
    if let Some(link) = &message.link {
        let label = super::text::label(message.language, "leak_url");
        blocks.push(json!({"type": "section",
            "text": {"type": "mrkdwn", "text": format!("*{label}*: <{link}|{label}>")}}));
    }
    if let Some(instruction) = &message.instruction {
        blocks.push(json!({"type": "section",
            "text": {"type": "mrkdwn", "text": clip(escape::slack(instruction), FIELD_MAX)}}));
    }
    if let Some(command) = &message.command {
        blocks.push(json!({"type": "section",
            "text": {"type": "mrkdwn", "text": format!("```{}```", escape::slack(command))}}));
    }
    json!({"text": title, "blocks": blocks})
}
