use super::*;
use crate::hostile::hostile_strings;

/// Mentions in the chat dialects akguard will post to.
const MENTIONS: [&str; 8] = [
    "@all",
    "@here",
    "@everyone",
    "@channel",
    "<!channel>",
    "<!here>",
    "<@",
    "<at",
];

/// Every Markdown special character in `out` is escaped, and `<`, `>` never appear.
fn assert_markdown_inert(raw: &str, out: &str) {
    let mut chars = out.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let next = chars.next();
            assert!(
                next.is_some_and(|n| MARKDOWN_SPECIAL.contains(&n)),
                "{raw:?}: a lone backslash in {out:?}"
            );
        } else {
            assert!(
                !MARKDOWN_SPECIAL.contains(&c) && c != '<' && c != '>',
                "{raw:?}: {c:?} unescaped in {out:?}"
            );
        }
    }
    for mention in MENTIONS {
        assert!(
            !out.contains(mention),
            "{raw:?}: {mention} survives in {out:?}"
        );
    }
    assert!(!out.chars().any(is_unsafe), "{raw:?}: {out:?}");
}

/// `out` has no markup of its own: every `&` starts one of the entities `html` writes.
fn assert_html_inert(raw: &str, out: &str) {
    assert!(
        !out.contains(['<', '>', '"', '\'']) && !out.chars().any(is_unsafe),
        "{raw:?}: {out:?}"
    );
    for (at, _) in out.match_indices('&') {
        let rest = &out[at..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&#x27;"]
                .iter()
                .any(|e| rest.starts_with(e)),
            "{raw:?}: a bare & in {out:?}"
        );
    }
}

#[test]
fn the_terminal_escaper_leaves_no_control_characters() {
    for raw in hostile_strings() {
        let out = terminal(&raw);
        assert!(!out.chars().any(is_unsafe), "{raw:?}: {out:?}");
        assert!(!out.contains('\u{1b}') && !out.contains('\n'), "{raw:?}");
    }
    assert_eq!(terminal("ci-deployer"), "ci-deployer");
    assert_eq!(
        terminal("x\n2026-12-05T00:00:00Z INFO to=resolved"),
        r"x\n2026-12-05T00:00:00Z INFO to=resolved"
    );
    assert_eq!(terminal("\u{1b}[31mred"), r"\u{1b}[31mred");
    assert_eq!(terminal("\u{202e}gpj.exe"), r"\u{202e}gpj.exe");
}

#[test]
fn json_for_a_terminal_reads_back_as_the_same_text_and_has_no_control_characters() {
    for raw in hostile_strings() {
        let value = serde_json::json!({"name": raw, "list": [raw]});
        let out = json(&value);
        assert!(
            !out.chars().any(|c| c != '\n' && is_unsafe(c)),
            "{raw:?}: {out:?}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&out).unwrap(),
            value
        );
    }
    assert_eq!(
        json(&serde_json::json!("\u{202e}gpj\u{7f}")),
        r#""\u202egpj\u007f""#
    );
}

#[test]
fn the_markdown_escaper_leaves_no_markup_and_no_mentions() {
    for raw in hostile_strings() {
        assert_markdown_inert(&raw, &markdown(&raw));
    }
    assert_eq!(markdown("ci-deployer"), r"ci\-deployer");
    assert_eq!(markdown("@all please"), "＠all please");
    assert_eq!(markdown("ci@1234.onaliyun.com"), r"ci@1234\.onaliyun\.com");
    assert_eq!(markdown("<!channel>"), r"&lt;\!channel&gt;");
}

#[test]
fn the_html_escaper_leaves_no_markup() {
    for raw in hostile_strings() {
        assert_html_inert(&raw, &html(&raw));
    }
    assert_eq!(
        html(r#"<script>alert("x")</script>"#),
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
    );
}

#[test]
fn links_are_made_only_to_https_urls() {
    for raw in hostile_strings() {
        let md = markdown_link("the leak", &raw);
        let a = html_link("the leak", &raw);
        if is_https_url(&raw) {
            assert!(
                md.starts_with(r"[the leak](https://") || md.starts_with(r"[the leak](HTTPS://")
            );
            assert!(
                !md[12..md.len() - 1].contains([')', '(', '<', '>', '"']),
                "{md}"
            );
            assert!(a.starts_with(r#"<a href=""#), "{a}");
            let href_end = a[9..].find('"').unwrap() + 9;
            assert!(!a[9..href_end].contains(['<', '>', '\'']), "{a}");
        } else {
            assert_eq!(md, "the leak", "{raw:?}");
            assert_eq!(a, "the leak", "{raw:?}");
        }
    }
    assert_eq!(
        markdown_link("[x](y)", "https://github.com/a/b(c)"),
        r"[\[x\]\(y\)](https://github.com/a/b%28c%29)"
    );
    assert_eq!(
        html_link("leak", "https://github.com/a?b=1&c=\"2\""),
        r#"<a href="https://github.com/a?b=1&amp;c=%222%22" rel="noopener noreferrer nofollow">leak</a>"#
    );
    assert_eq!(markdown_link("x", "javascript:alert(1)"), "x");
}
