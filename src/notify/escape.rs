//! Escaping what akguard did not write, one function per medium, so that a leak URL or a
//! user name the attacker chose cannot format, link or mention anything: the shared Markdown
//! escaper (`crate::escape`), and the media it does not cover (Slack's mrkdwn, plain text).
//! Each replaces unsafe characters, so a value stays on its line.

use crate::domain::text::{is_https_url, is_unsafe};

/// Markdown for DingTalk and WeCom: the shared chat escaper.
pub use crate::escape::markdown;

/// An `@` that starts a word becomes the full-width `＠` (as in `crate::escape::markdown`),
/// so `@all`, `@here` and `@channel` mention nobody; an address keeps its `@`.
fn push_mention_safe(out: &mut String, c: char, previous: Option<char>) -> bool {
    if c == '@' && !previous.is_some_and(char::is_alphanumeric) {
        out.push('＠');
        return true;
    }
    false
}

/// Text with no markup (Lark `plain_text`, PagerDuty, Slack `plain_text`). Unsafe characters
/// (controls, line breaks, bidirectional and invisible ones) become U+FFFD, as in the shared
/// escapers; angle brackets become look-alike quotes, so no client reads a tag
/// (`<at user_id="all">`, `<!here>`) in it, whatever it does with plain text.
pub fn plain(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut previous = None;
    for c in raw.chars() {
        if !push_mention_safe(&mut out, c, previous) {
            out.push(match c {
                c if is_unsafe(c) => '\u{fffd}',
                '<' => '‹',
                '>' => '›',
                c => c,
            });
        }
        previous = Some(c);
    }
    out
}

/// Slack's mrkdwn: `&`, `<` and `>` as entities (Slack's documented escapes, which also
/// disarm `<!channel>` and `<@U123>`), and the formatting marks broken by a zero-width
/// space so `*bold*` from an attacker stays literal.
pub fn slack(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut previous = None;
    for c in raw.chars() {
        if !push_mention_safe(&mut out, c, previous) {
            match c {
                c if is_unsafe(c) => out.push('\u{fffd}'),
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                // mrkdwn has no escape: a zero-width space after the mark keeps it literal.
                '*' | '_' | '~' | '`' => {
                    out.push(c);
                    out.push('\u{200B}');
                }
                c => out.push(c),
            }
        }
        previous = Some(c);
    }
    out
}

/// A link target: only an absolute `https://` URL with a host, and re-encoded so that no
/// character can end the link in any medium (`)`, `>`, `|`, spaces, quotes).
pub fn https_link(raw: &str) -> Option<String> {
    if !is_https_url(raw) {
        return None;
    }
    let url = reqwest::Url::parse(raw).ok()?;
    if url.scheme() != "https" || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let mut out = String::new();
    for c in url.as_str().chars() {
        match c {
            '(' | ')' | '<' | '>' | '|' | '"' | '\'' | ' ' | '`' | '[' | ']' | '*' | '_' | '~'
            | '\\' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_markup_and_lines_are_neutralised() {
        let hostile = "@all <!channel> <at user_id=\"all\"></at> [x](javascript:alert(1))\n# head";
        let md = markdown(hostile);
        assert!(
            !md.contains("@all") && !md.contains('<') && !md.contains('\n'),
            "{md}"
        );
        assert!(!md.contains("](") && md.contains("\\# head"), "{md}");
        let sl = slack(hostile);
        assert!(!sl.contains("<!channel>") && !sl.contains("@all"), "{sl}");
        let pl = plain(hostile);
        assert!(!pl.contains("@all") && !pl.contains('\n'), "{pl}");
        assert!(!plain("a\u{202E}b\u{0007}").contains(['\u{202E}', '\u{0007}']));
    }

    #[test]
    fn only_https_links_survive_and_cannot_break_out() {
        assert_eq!(https_link("http://example.com/x"), None);
        assert_eq!(https_link("javascript:alert(1)"), None);
        assert_eq!(https_link("ftp://example.com/x"), None);
        let link = https_link("https://example.com/a)b>c|d").unwrap();
        assert_eq!(link, "https://example.com/a%29b%3Ec%7Cd");
    }
}
