//! Escapers for text akguard did not write, one per output medium (terminal, JSON on a
//! terminal, chat Markdown, HTML), and the only ways to make a link. Every renderer passes
//! foreign text (names, ids, URLs, explanations quoting the cloud) through the escaper of its
//! medium.

use std::borrow::Cow;

use crate::domain::text::{is_https_url, is_unsafe};

/// Text for a terminal or a plain-text log: every control, line-breaking or bidirectional
/// character is shown as its Rust escape (`\n`, `\u{1b}`), so nothing can move the cursor,
/// set a title, fake a new line or reorder what follows.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// JSON for a terminal, pretty-printed. serde_json escapes C0 controls in strings; this also
/// writes DEL, C1 controls and the bidirectional, invisible and line-separating characters as
/// JSON's `\uXXXX` escapes, which every JSON reader reads back as the same text. The only
/// raw newlines left are the layout's own.
pub fn json(value: &serde_json::Value) -> String {
    json_text(&serde_json::to_string_pretty(value).unwrap_or_default())
}

/// The same on one line, for a stream of JSON lines.
pub fn json_line(value: &serde_json::Value) -> String {
    json_text(&serde_json::to_string(value).unwrap_or_default())
}

fn json_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && is_unsafe(c) {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters with a meaning in CommonMark or a chat dialect of it, backslash-escaped.
const MARKDOWN_SPECIAL: &[char] = &[
    '\\', '`', '*', '_', '{', '}', '[', ']', '(', ')', '#', '+', '-', '.', '!', '|', '~', '=', ':',
    '"', '\'',
];

/// Text for a chat message in Markdown (DingTalk, Lark, Slack, WeCom). Markup characters are
/// backslash-escaped; `<`, `>` and `&` become entities, which also breaks Slack's `<!channel>`
/// and `<@U…>`, WeCom's `<@userid>` and Lark's `<at>`; an `@` that starts a word becomes the
/// full-width `＠`, so `@all` mentions nobody; unsafe characters become U+FFFD, so a newline
/// cannot start a heading or a list.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut previous: Option<char> = None;
    for c in text.chars() {
        match c {
            c if is_unsafe(c) => out.push('\u{fffd}'),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' if !previous.is_some_and(char::is_alphanumeric) => out.push('＠'),
            c if MARKDOWN_SPECIAL.contains(&c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
        previous = Some(c);
    }
    out
}

/// A Markdown link to `url` if it is an `https://` URL, else the label alone.
pub fn markdown_link(label: &str, url: &str) -> String {
    if !is_https_url(url) {
        return markdown(label);
    }
    format!("[{}]({})", markdown(label), link_target(url))
}

/// Text for HTML, in element content or a quoted attribute value.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            c if is_unsafe(c) => out.push('\u{fffd}'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// An HTML link to `url` if it is an `https://` URL, else the label alone.
pub fn html_link(label: &str, url: &str) -> String {
    if !is_https_url(url) {
        return html(label);
    }
    format!(
        r#"<a href="{}" rel="noopener noreferrer nofollow">{}</a>"#,
        html(&link_target(url)),
        html(label)
    )
}

/// `url` with the characters that could end a Markdown link target or an attribute value
/// percent-encoded.
fn link_target(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            '(' | ')' | '<' | '>' | '"' | '\'' | '\\' | '[' | ']' | '`' | '{' | '}' | '|' => {
                out.push_str(&format!("%{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
