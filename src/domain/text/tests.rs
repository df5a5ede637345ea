use super::*;
use crate::hostile::hostile_strings;

const CHECKS: [(&str, Rule, usize); 5] = [
    ("name", name, MAX_NAME),
    ("event_id", event_id, MAX_EVENT_ID),
    ("account_id", account_id, MAX_ACCOUNT_ID),
    ("user_name", user_name, MAX_NAME),
    ("leak_url", https_url, MAX_URL),
];

#[test]
fn every_hostile_string_is_refused_or_passes_clean_through_every_field_check() {
    for raw in hostile_strings() {
        for (field, check, max) in CHECKS {
            match check(field, &raw) {
                Ok(kept) => {
                    assert!(!kept.chars().any(is_unsafe), "{field} kept {raw:?}");
                    assert!(kept.chars().count() <= max, "{field} kept {raw:?}");
                }
                Err(err) => {
                    let message = err.to_string();
                    assert!(message.starts_with(field), "{message}");
                    assert!(!message.chars().any(is_unsafe), "{message:?}");
                    // Short strings such as "https://" may be words of the message itself.
                    let echoed = raw.trim().len() > 8 && message.contains(raw.trim());
                    assert!(!echoed, "{field} echoed {raw:?}");
                }
            }
        }
    }
}

#[test]
fn every_hostile_string_comes_out_of_clean_printable_and_capped() {
    for raw in hostile_strings() {
        let kept = clean(&raw, MAX_FOREIGN);
        assert!(!kept.chars().any(is_unsafe), "{raw:?} became {kept:?}");
        assert!(kept.chars().count() <= MAX_FOREIGN, "{raw:?}");
        let shown = quoted(&raw);
        assert!(!shown.chars().any(is_unsafe), "{raw:?} quoted as {shown:?}");
        // 32 characters at most, each escaped to at most `\u{10ffff}`, quoted, maybe `…`.
        assert!(shown.chars().count() <= 32 * 10 + 3, "{raw:?}");
    }
}

#[test]
fn only_https_urls_with_a_host_are_leak_urls() {
    for good in [
        "https://github.com/acme/app/blob/main/deploy.sh",
        "HTTPS://gitee.com/x/y?line=3#L3",
        "  https://pastebin.com/abc  ",
    ] {
        assert_eq!(https_url("leak_url", good).unwrap(), good.trim());
    }
    for bad in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "http://github.com/acme",
        "data:text/html,<script>alert(1)</script>",
        "https://",
        "https:///etc/passwd",
        "https://a.example/ b",
        "ftp://a.example/",
        "//a.example/",
    ] {
        let err = https_url("leak_url", bad).unwrap_err();
        assert_eq!(
            err.to_string(),
            "leak_url must be an https:// URL",
            "{bad:?}"
        );
    }
}

#[test]
fn identity_fields_have_their_shapes() {
    assert_eq!(
        account_id("account_id", " 1234567890123456 ").unwrap(),
        "1234567890123456"
    );
    assert!(account_id("account_id", "acme").is_err());
    assert!(account_id("account_id", "12345678901234567890123456789012345").is_err());
    assert_eq!(
        user_name("user_name", "ci.deployer_2-x").unwrap(),
        "ci.deployer_2-x"
    );
    assert!(user_name("user_name", "ci@1234567890123456.onaliyun.com").is_ok());
    assert!(user_name("user_name", "ci deployer").is_err());
    assert!(user_name("user_name", "@all").is_err());
    assert!(user_name("user_name", "a@b@c").is_err());
    assert!(user_name("user_name", "ci\ndeployer").is_err());
    assert_eq!(
        name("account_name", "阿里云 acme-prod").unwrap(),
        "阿里云 acme-prod"
    );
    assert_eq!(
        name("account_name", &"a".repeat(MAX_NAME + 1)).unwrap_err(),
        InvalidText::TooLong {
            field: "account_name",
            max: MAX_NAME
        }
    );
    assert_eq!(
        event_id("event_id", "siem\u{1b}[2J-42").unwrap_err(),
        InvalidText::Unsafe { field: "event_id" }
    );
}

#[test]
fn cleaning_marks_what_it_replaced_or_cut() {
    assert!(matches!(
        clean("RunInstances", 64),
        Cow::Borrowed("RunInstances")
    ));
    assert_eq!(
        clean("Run\u{1b}[2JInstances\n", 64),
        "Run\u{fffd}[2JInstances\u{fffd}"
    );
    assert_eq!(clean("\u{202e}exe.jpg", 64), "\u{fffd}exe.jpg");
    assert_eq!(clean("abcdef", 4), "abc…");
    assert_eq!(clean("abcd", 4), "abcd");
}

#[test]
fn quoting_escapes_and_shortens() {
    assert_eq!(quoted("root\nINFO forged"), r#""root\nINFO forged""#);
    assert_eq!(quoted("\u{1b}[31m"), r#""\u{1b}[31m""#);
    assert_eq!(quoted(&"x".repeat(100)), format!("{:?}…", "x".repeat(32)));
}
