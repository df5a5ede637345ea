//! Property tests (proptest, in place of `cargo fuzz`: CI has only the stable toolchain) of
//! everything that reads what a sender or Alibaba wrote: the three notification parsers, the
//! webhook authenticator and the Security Center answers. Inputs are real sample bodies (the
//! seeds) with parts replaced by arbitrary JSON and hostile strings, and arbitrary bytes.
//! Each property runs proptest's 256 cases; `PROPTEST_CASES=100000` runs longer.

use axum::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use base64::Engine;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

use super::auth::{AuthFailure, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook, verify};
use super::security_center::leak_notification;
use super::{Parsed, cloudmonitor, eventbridge, generic};
use crate::cloud::api::{leak_detail, leak_page};
use crate::config::SourceAuth;
use crate::domain::text::{self, is_unsafe};
use crate::domain::{AccessKeyId, LeakNotification, Signal};
use crate::hostile::hostile_strings;

type Parser = fn(&[u8]) -> Result<Parsed, String>;

const PARSERS: [(&str, Parser); 3] = [
    ("generic", generic::parse),
    ("eventbridge", eventbridge::parse),
    ("cloudmonitor", cloudmonitor::parse),
];

/// Real bodies of every format, as senders and Alibaba write them.
const SEEDS: [&str; 8] = [
    include_str!("../../tests/api/fixtures/generic_full.json"),
    include_str!("../../tests/api/fixtures/eventbridge_leak_protection.json"),
    include_str!("../../tests/api/fixtures/eventbridge_activity.json"),
    include_str!("../../tests/api/fixtures/eventbridge_custom_generic.json"),
    include_str!("../../tests/api/fixtures/eventbridge_unrelated.json"),
    include_str!("../../tests/api/fixtures/cloudmonitor_system_event.json"),
    include_str!("../../tests/fixtures/seeds/sas_leak_list.json"),
    include_str!("../../tests/fixtures/seeds/sas_leak_detail.json"),
];

/// Field names the parsers look for, so that random objects reach their branches.
const FIELDS: [&str; 44] = [
    "access_key_id",
    "account_id",
    "account_name",
    "owner_type",
    "user_name",
    "leak_url",
    "detected_at",
    "event_id",
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "data",
    "aliyunaccountid",
    "userIdentity",
    "accessKeyId",
    "eventTime",
    "errorMessage",
    "errorCode",
    "eventName",
    "sourceIpAddress",
    "accountId",
    "userName",
    "content",
    "traceId",
    "resourceId",
    "akId",
    "userType",
    "aliUserName",
    "url",
    "leakUrl",
    "timestamp",
    "gmtModified",
    "AccessKeyLeakList",
    "TotalCount",
    "Id",
    "AccesskeyId",
    "AliUserName",
    "UserType",
    "Url",
    "GmtModified",
    "GithubFileUrl",
    "GithubRepoUrl",
];

/// Strings with a meaning to some parser.
const MEANINGFUL: [&str; 14] = [
    "1.0",
    "ram:ActionTrail:ApiCall",
    "ecs:ActionTrail:ApiCall",
    "Forbidden : There is a risk of leakage of this AccessKey.",
    "LTAI5tFUZZKEY0000001",
    "STS.NUgYrLnoC37mZZCNnAbez2Vgr",
    "ram-user",
    "ram",
    "master",
    "https://github.com/acme/app/blob/main/x",
    "2024-05-01T03:04:05Z",
    "20240501T110405.000+0800",
    "99999999999999999999",
    "acs:sas:cn-shanghai:1234567890123456:leak/1",
];

fn arb_string() -> impl Strategy<Value = String> {
    prop_oneof![
        select(hostile_strings()),
        select(MEANINGFUL.map(str::to_owned).to_vec()),
        any::<String>(),
        any::<i64>().prop_map(|n| n.to_string()),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        arb_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        select(FIELDS.to_vec()).prop_map(str::to_owned),
                        arb_string()
                    ],
                    inner.clone()
                ),
                0..8
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
            // Senders may JSON-encode a nested object into a string.
            inner.prop_map(|v| Value::String(v.to_string())),
        ]
    })
}

/// Every place in `value` a replacement can go, as JSON pointers.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => fields.iter().for_each(|(key, v)| {
            let key = key.replace('~', "~0").replace('/', "~1");
            pointers(v, format!("{at}/{key}"), out)
        }),
        Value::Array(items) => {
            (0..items.len()).for_each(|i| pointers(&items[i], format!("{at}/{i}"), out))
        }
        _ => {}
    }
    out.push(at);
}

/// A seed with one part (or the whole) replaced by arbitrary JSON.
fn arb_replaced_seed() -> impl Strategy<Value = Value> {
    let parts = (
        select(SEEDS.to_vec()),
        any::<prop::sample::Index>(),
        arb_json(),
    );
    parts.prop_map(|(seed, index, replacement)| {
        let mut value: Value = serde_json::from_str(seed).unwrap();
        let mut places = Vec::new();
        pointers(&value, String::new(), &mut places);
        let place: &String = index.get(&places);
        *value.pointer_mut(place).unwrap() = replacement;
        value
    })
}

/// A seed with one part replaced, or cut short, or a byte changed; or arbitrary bytes.
fn arb_body() -> impl Strategy<Value = Vec<u8>> {
    let replaced = arb_replaced_seed().prop_map(|v| v.to_string().into_bytes());
    let cut = (
        select(SEEDS.to_vec()),
        any::<prop::sample::Index>(),
        any::<u8>(),
    )
        .prop_map(|(seed, index, byte)| {
            let mut bytes = seed.as_bytes().to_vec();
            let at = index.index(bytes.len());
            if byte % 2 == 0 {
                bytes.truncate(at);
            } else {
                bytes[at] = byte;
            }
            bytes
        });
    prop_oneof![
        6 => replaced,
        2 => cut,
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => arb_json().prop_map(|v| v.to_string().into_bytes()),
    ]
}

/// The rules every stored report holds to, whichever parser or poller made it.
fn assert_report_follows_the_rules(n: &LeakNotification) -> Result<(), TestCaseError> {
    let fields = [
        &n.account_id,
        &n.account_name,
        &n.user_name,
        &n.leak_url,
        &n.event_id,
    ];
    for value in fields.into_iter().flatten() {
        prop_assert!(!value.chars().any(is_unsafe), "{value:?}");
        prop_assert!(
            value.chars().count() <= text::MAX_URL,
            "{} chars",
            value.len()
        );
    }
    if let Some(url) = &n.leak_url {
        prop_assert!(text::is_https_url(url), "{url:?}");
    }
    if let Some(id) = &n.account_id {
        prop_assert!(id.bytes().all(|b| b.is_ascii_digit()), "{id:?}");
    }
    Ok(())
}

fn hmac_headers(timestamp: &str, signature: &str) -> Option<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).ok()?);
    headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(signature).ok()?);
    Some(headers)
}

fn now() -> DateTime<Utc> {
    "2026-12-05T00:00:00Z".parse().unwrap()
}

const WINDOW: i64 = 300;

proptest! {
    #[test]
    fn parsers_never_panic_and_what_they_accept_follows_the_rules(body in arb_body()) {
        for (name, parse) in PARSERS {
            match parse(&body) {
                Ok(Parsed { signal, delivery_key }) => {
                    if let Some(key) = delivery_key {
                        prop_assert!(!key.chars().any(is_unsafe), "{name}: {key:?}");
                    }
                    match signal {
                        Some(Signal::Leak(n)) => assert_report_follows_the_rules(&n)?,
                        Some(Signal::Activity(a)) => {
                            let texts = [&a.event_name, &a.source_ip, &a.error_code, &a.event_id];
                            for value in texts.into_iter().flatten() {
                                prop_assert!(!value.chars().any(is_unsafe), "{name}: {value:?}");
                                prop_assert!(value.chars().count() <= text::MAX_EVENT_ID.max(text::MAX_FOREIGN));
                            }
                        }
                        None => {}
                    }
                }
                // A refusal is logged and answered: it must not forge a line or echo a payload.
                Err(message) => {
                    prop_assert!(!message.chars().any(is_unsafe), "{name}: {message:?}");
                    prop_assert!(message.len() <= 512, "{name}: {} bytes", message.len());
                }
            }
        }
    }

    #[test]
    fn the_authenticator_never_panics_on_any_headers(
        timestamp in prop_oneof![any::<i64>().prop_map(|n| n.to_string()), any::<String>()],
        signature in prop_oneof![any::<String>(), "sha256=[0-9a-f]{0,70}"],
        authorization in any::<String>(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let sources = [
            SourceAuth::Hmac("fuzz-secret-0123456789".to_owned().into()),
            SourceAuth::ApiKey { header: "x-token".into(), value: "fuzz-token".to_owned().into() },
            SourceAuth::Basic { username: "cms".into(), password: "fuzz-password".to_owned().into() },
        ];
        let mut headers = hmac_headers(&timestamp, &signature).unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&authorization) {
            headers.insert(AUTHORIZATION, value.clone());
            headers.insert("x-token", value);
        }
        for auth in &sources {
            let _ = verify(auth, &headers, &body, now(), WINDOW);
        }
    }

    #[test]
    fn the_authenticator_accepts_only_the_right_signature_inside_the_window(
        secret in "[ -~]{16,40}",
        other_secret in "[ -~]{16,40}",
        body in prop::collection::vec(any::<u8>(), 0..128),
        other_body in prop::collection::vec(any::<u8>(), 0..128),
        skew in -WINDOW..=WINDOW,
        far in prop_oneof![WINDOW + 1..i64::MAX / 2, Just(i64::MAX), Just(i64::MIN)],
    ) {
        let auth = SourceAuth::Hmac(secret.clone().into());
        let sent = (now().timestamp() + skew).to_string();
        let right = hmac_headers(&sent, &sign_webhook(&secret, &sent, &body)).unwrap();
        prop_assert!(verify(&auth, &right, &body, now(), WINDOW).is_ok());
        if other_secret != secret {
            let signed = sign_webhook(&other_secret, &sent, &body);
            let wrong = hmac_headers(&sent, &signed).unwrap();
            prop_assert!(matches!(verify(&auth, &wrong, &body, now(), WINDOW), Err(AuthFailure::BadSignature)));
        }
        if other_body != body {
            prop_assert!(matches!(verify(&auth, &right, &other_body, now(), WINDOW), Err(AuthFailure::BadSignature)));
        }
        // A signature is bound to its timestamp: moved to another, it no longer matches.
        let moved = (now().timestamp() + skew / 2 + 1).to_string();
        if moved != sent {
            let replayed = hmac_headers(&moved, &sign_webhook(&secret, &sent, &body)).unwrap();
            prop_assert!(verify(&auth, &replayed, &body, now(), WINDOW).is_err());
        }
        let stale = now().timestamp().saturating_add(far).to_string();
        let old = hmac_headers(&stale, &sign_webhook(&secret, &stale, &body)).unwrap();
        prop_assert!(matches!(verify(&auth, &old, &body, now(), WINDOW), Err(AuthFailure::OutsideWindow(_))));
    }

    #[test]
    fn basic_and_api_key_sources_accept_only_their_credentials(
        user in "[a-z]{1,12}",
        password in "[ -~]{1,30}",
        presented_user in "[a-z]{1,12}",
        presented_password in "[ -~]{1,30}",
    ) {
        let auth = SourceAuth::Basic { username: user.clone(), password: password.clone().into() };
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{presented_user}:{presented_password}"));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        let right = presented_user == user && presented_password == password;
        prop_assert_eq!(verify(&auth, &headers, b"", now(), WINDOW).is_ok(), right);

        let auth = SourceAuth::ApiKey { header: "x-token".into(), value: password.clone().into() };
        let mut headers = HeaderMap::new();
        headers.insert("x-token", HeaderValue::from_str(&presented_password).unwrap());
        prop_assert_eq!(verify(&auth, &headers, b"", now(), WINDOW).is_ok(), presented_password == password);
    }

    #[test]
    fn security_center_answers_never_panic_and_make_reports_that_follow_the_rules(
        list in prop_oneof![3 => arb_replaced_seed(), 1 => arb_json()],
        detail in prop_oneof![3 => arb_replaced_seed(), 1 => arb_json()],
    ) {
        let page = leak_page(&list);
        let detail = leak_detail(&detail);
        for record in &page.records {
            prop_assert!(!record.access_key_id.is_empty());
            if let Ok(key) = AccessKeyId::parse(&record.access_key_id) {
                let n = leak_notification(key, record, Some(detail.clone()));
                assert_report_follows_the_rules(&n)?;
                assert_report_follows_the_rules(&leak_notification(n.access_key_id.clone(), record, None))?;
            }
        }
    }
}

#[test]
fn every_seed_is_read_as_its_format_reads_it() {
    let parsed = |parse: Parser, seed: &str| parse(seed.as_bytes()).unwrap().signal;
    assert!(matches!(
        parsed(generic::parse, SEEDS[0]),
        Some(Signal::Leak(_))
    ));
    assert!(matches!(
        parsed(eventbridge::parse, SEEDS[1]),
        Some(Signal::Leak(_))
    ));
    assert!(matches!(
        parsed(eventbridge::parse, SEEDS[2]),
        Some(Signal::Activity(_))
    ));
    assert!(matches!(
        parsed(eventbridge::parse, SEEDS[3]),
        Some(Signal::Leak(_))
    ));
    assert!(parsed(eventbridge::parse, SEEDS[4]).is_none());
    assert!(matches!(
        parsed(cloudmonitor::parse, SEEDS[5]),
        Some(Signal::Leak(_))
    ));
    let page = leak_page(&serde_json::from_str(SEEDS[6]).unwrap());
    assert_eq!((page.total, page.records.len()), (2, 2));
    let detail = leak_detail(&serde_json::from_str(SEEDS[7]).unwrap());
    assert!(detail.file_url.is_some());
}
