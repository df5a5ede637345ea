//! Hostile free text at intake: every string of the shared corpus in every field of a report
//! is refused with a 400 that does not echo it, or stored and served clean.

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use akguard::domain::text::is_unsafe;

use crate::helpers::{OPERATOR_TOKEN, Response, TestDaemon, generic};

const KEY: &str = "LTAI5tHOSTILETEXT001";
const FIELDS: [&str; 6] = [
    "account_id",
    "account_name",
    "user_name",
    "leak_url",
    "event_id",
    "owner_type",
];

#[derive(Deserialize)]
struct Corpus {
    strings: Vec<String>,
    repeated: Vec<Repeated>,
}

#[derive(Deserialize)]
struct Repeated {
    unit: String,
    times: usize,
}

/// The shared corpus (tests/fixtures/hostile_strings.json), the repeated entries expanded.
fn hostile_strings() -> Vec<String> {
    let corpus: Corpus =
        serde_json::from_str(include_str!("../fixtures/hostile_strings.json")).unwrap();
    let repeated = corpus.repeated.iter().map(|r| r.unit.repeat(r.times));
    corpus.strings.into_iter().chain(repeated).collect()
}

/// Enough of `s` to recognise it in a failure message.
fn short(s: &str) -> String {
    format!("{:?}", s.chars().take(40).collect::<String>())
}

fn unsafe_strings_in(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) if s.chars().any(is_unsafe) => found.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| unsafe_strings_in(v, found)),
        Value::Object(fields) => fields.values().for_each(|v| unsafe_strings_in(v, found)),
        _ => {}
    }
}

#[tokio::test]
async fn hostile_text_in_any_report_field_is_refused_unechoed_or_served_clean() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&generic(KEY, "first-report"))
        .await
        .incident_id();
    let (mut refused, mut accepted) = (Vec::new(), Vec::new());
    for (n, hostile) in hostile_strings().iter().enumerate() {
        for field in FIELDS {
            let mut body = json!({"access_key_id": KEY, "event_id": format!("case-{n}-{field}")});
            body[field] = json!(hostile);
            let resp = app.post_generic(&body.to_string()).await;
            match resp.status {
                StatusCode::BAD_REQUEST => {
                    let message = resp.error_message();
                    assert!(
                        message.contains(field),
                        "{field}={}: {message}",
                        short(hostile)
                    );
                    let echoed = hostile.trim().len() > 8 && resp.text.contains(hostile.trim());
                    assert!(!echoed, "{field}={} echoed", short(hostile));
                    refused.push((field, hostile.clone()));
                }
                StatusCode::ACCEPTED => {
                    assert_eq!(resp.incident_id(), id);
                    accepted.push((field, hostile.clone()));
                }
                other => panic!("{field}={}: {other} {}", short(hostile), short(&resp.text)),
            }
        }
    }
    let was = |list: &[(&str, String)], field: &str, value: &str| {
        list.iter().any(|(f, v)| *f == field && v == value)
    };
    assert!(was(&refused, "leak_url", "javascript:alert(1)"));
    assert!(was(&refused, "leak_url", "http://evil.example/"));
    assert!(was(&refused, "account_name", "\u{1b}[31mred\u{1b}[0m"));
    assert!(was(&refused, "user_name", "@all"));
    assert!(was(&refused, "event_id", &"A".repeat(100_000)));
    assert!(was(&accepted, "account_name", "<script>alert(1)</script>"));

    let mut found = Vec::new();
    for path in [
        format!("/v1/incidents/{id}"),
        format!("/v1/incidents/{id}/audit"),
        "/v1/incidents?limit=200".to_owned(),
    ] {
        unsafe_strings_in(&app.get_ok(&path).await, &mut found);
    }
    let found: Vec<String> = found.iter().map(|s| short(s)).collect();
    assert!(found.is_empty(), "served unclean: {found:?}");
    let log = app.log();
    for (_, hostile) in &refused {
        let raw = hostile.trim();
        assert!(
            !(raw.chars().any(is_unsafe) && log.contains(raw)),
            "the log holds {}",
            short(hostile)
        );
    }
}

#[tokio::test]
async fn hostile_text_in_forwarded_actiontrail_activity_is_stored_clean() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&generic(KEY, "first-report"))
        .await
        .incident_id();
    for (n, hostile) in hostile_strings().iter().enumerate() {
        for field in ["eventName", "sourceIpAddress", "errorCode"] {
            let mut data =
                json!({"eventName": "RunInstances", "userIdentity": {"accessKeyId": KEY}});
            data[field] = json!(hostile);
            let event = json!({
                "specversion": "1.0", "id": format!("evt-{n}-{field}"), "source": "acs.ecs",
                "type": "ecs:ActionTrail:ApiCall", "time": "2026-01-01T00:00:00Z", "data": data
            });
            let resp = app.post_eventbridge(&event.to_string()).await;
            assert_eq!(
                resp.status,
                StatusCode::ACCEPTED,
                "{}: {}",
                short(hostile),
                resp.text
            );
        }
    }
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    let mut found = Vec::new();
    unsafe_strings_in(&incident, &mut found);
    let found: Vec<String> = found.iter().map(|s| short(s)).collect();
    assert!(found.is_empty(), "served unclean: {found:?}");
    let sighting = incident["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.to_string().contains("line one"))
        .expect("the newline sighting is kept");
    assert!(
        sighting.to_string().contains("line one\u{fffd}line two"),
        "{sighting}"
    );
}

#[tokio::test]
async fn a_javascript_leak_url_is_refused_whichever_way_the_report_comes() {
    let app = TestDaemon::spawn().await;
    let url = "javascript:alert(document.cookie)";
    let generic_body = json!({"access_key_id": KEY, "leak_url": url});
    let manual = app
        .client
        .post(app.url("/v1/incidents"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("content-type", "application/json")
        .body(generic_body.to_string())
        .send()
        .await
        .unwrap();
    let eventbridge = json!({"specversion": "1.0", "id": "e-1", "source": "relay", "type": "leak",
        "data": generic_body});
    let answers = [
        ("generic", app.post_generic(&generic_body.to_string()).await),
        ("manual", Response::read(manual).await),
        (
            "eventbridge",
            app.post_eventbridge(&eventbridge.to_string()).await,
        ),
    ];
    for (how, resp) in answers {
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{how}: {}", resp.text);
        assert!(
            resp.error_message()
                .ends_with("leak_url must be an https:// URL"),
            "{how}: {}",
            resp.text
        );
        assert!(!resp.text.contains("javascript"), "{how}: {}", resp.text);
    }
    assert!(app.incident_ids().await.is_empty());

    // Alibaba's own events are evidence of a real leak: the link is left out, not the leak.
    let cloudmonitor = json!({"traceId": "t\n1", "content": {"AccesskeyId": KEY, "Url": url,
        "userName": "\u{1b}[2J", "accountId": "acme"}});
    let id = app
        .post_cloudmonitor(&cloudmonitor.to_string())
        .await
        .incident_id();
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["access_key_id"], KEY);
    for field in ["leak_url", "user_name", "account_id"] {
        assert_eq!(incident[field], Value::Null, "{field}: {incident}");
    }
    assert!(app.log().contains("CloudMonitor event field left out"));
    assert!(!app.log().contains("javascript"));
}
