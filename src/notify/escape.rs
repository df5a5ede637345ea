//! Escaping what akguard did not write, one function per medium, so that a leak URL or a
//! user name the attacker chose cannot format, link or mention anything. Each function also
//! drops control characters and folds line breaks, so a value stays on its line.

/// A zero-width space after `@` breaks `@all`, `@here` and `@channel` on every platform
/// without changing what a reader sees.
const MENTION_BREAK: &str = "@\u{200B}";

fn plain_chars(raw: &str) -> impl Iterator<Item = char> + '_ {
    raw.chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .filter(|c| !c.is_control() && !is_invisible_format(*c))
}

/// Bidirectional overrides and similar format characters reorder or hide text.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Text with no markup (Lark `plain_text`, PagerDuty, Slack `plain_text`). Angle brackets
/// become look-alike quotes: no client then reads a tag (`<at user_id="all">`, `<!here>`)
/// in it, whatever it does with plain text.
pub fn plain(raw: &str) -> String {
    plain_chars(raw)
        .map(|c| match c {
            '<' => '‹',
            '>' => '›',
            c => c,
        })
        .collect::<String>()
        .replace('@', MENTION_BREAK)
}

/// DingTalk's and WeCom's Markdown: every punctuation mark Markdown or their HTML subset
/// reads is backslash-escaped; `<` and `>` become entities so no tag (WeCom's `<@user>`,
/// `<font>`) opens.
pub fn markdown(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in plain_chars(raw) {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '@' => out.push_str(MENTION_BREAK),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' | '"' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Slack's mrkdwn: `&`, `<` and `>` as entities (Slack's documented escapes, which also
/// disarm `<!channel>` and `<@U123>`), and the formatting marks broken by a zero-width
/// space so `*bold*` from an attacker stays literal.
pub fn slack(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in plain_chars(raw) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str(MENTION_BREAK),
            '*' | '_' | '~' | '`' => {
                out.push(c);
                out.push('\u{200B}');
            }
            c => out.push(c),
        }
    }
    out
}

/// A link target: only an absolute `https://` URL with a host, and re-encoded so that no
/// character can end the link in any medium (`)`, `>`, `|`, spaces, quotes).
pub fn https_link(raw: &str) -> Option<String> {
    let url = reqwest::Url::parse(raw.trim()).ok()?;
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
