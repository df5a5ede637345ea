//! The live event stream (`GET /v1/events`) against the real daemon and the emulator.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::cloud_support::{LEAKED_KEY, emulator};
use crate::helpers::{SECRETS, TestDaemon, VIEWER_TOKEN};
use crate::receiver::Receiver;
use crate::remediation::{daemon_with, report};

const HOOK_SECRET: &str = "hook-hmac-secret-9e8d7c6b";

/// One Server-Sent Event as received.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: String,
    event: String,
    data: Value,
}

/// A client of `/v1/events` that parses the stream as it arrives.
struct EventClient {
    response: reqwest::Response,
    buffer: String,
    /// Everything received, comments included, to check for secrets.
    raw: String,
}

impl EventClient {
    async fn connect(app: &TestDaemon, last_event_id: Option<&str>) -> Self {
        let mut request = app
            .client
            .get(app.url("/v1/events"))
            .bearer_auth(VIEWER_TOKEN);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Self {
            response,
            buffer: String::new(),
            raw: String::new(),
        }
    }

    /// The next event, or `None` when none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<Sse> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse(&block) {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .unwrap()
                .expect("the stream ended");
            let text = std::str::from_utf8(&chunk).unwrap();
            self.buffer.push_str(text);
            self.raw.push_str(text);
        }
    }

    /// Events until `done` holds for the last one (bounded), all of them.
    async fn until(&mut self, app: &TestDaemon, done: impl Fn(&Sse) -> bool) -> Vec<Sse> {
        let mut seen = Vec::new();
        loop {
            let event = self.next(Duration::from_secs(60)).await.unwrap_or_else(|| {
                panic!("the awaited event never came; got {seen:#?}\n{}", app.log())
            });
            let last = done(&event);
            seen.push(event);
            if last {
                return seen;
            }
        }
    }
}

/// An event from one `\n\n`-terminated block; `None` for a comment (keep-alive).
fn parse(block: &str) -> Option<Sse> {
    let (mut id, mut event, mut data) = (None, None, String::new());
    for line in block.lines() {
        let field = |name: &str| {
            line.strip_prefix(name)
                .map(|v| v.strip_prefix(' ').unwrap_or(v).to_owned())
        };
        if let Some(v) = field("id:") {
            id = Some(v);
        } else if let Some(v) = field("event:") {
            event = Some(v);
        } else if let Some(v) = field("data:") {
            data.push_str(&v);
        }
    }
    Some(Sse {
        id: id?,
        event: event?,
        data: serde_json::from_str(&data).expect("event data is JSON"),
    })
}

fn transition_to(event: &Sse, id: i64, state: &str) -> bool {
    event.event == "transition"
        && event.data["incident_id"] == id
        && event.data["detail"]["to"] == state
}

/// `(audit, delivery)` from an event id.
fn cursor(event: &Sse) -> (i64, i64) {
    let (a, d) = event.id.split_once('.').expect("id is <audit>.<delivery>");
    (a.parse().unwrap(), d.parse().unwrap())
}

#[tokio::test]
async fn a_stream_shows_a_leak_contained_and_notified_and_resumes_after_a_restart_without_gaps_or_repeats()
 {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let hook = Receiver::start("/hook", 200, "").await;
    let channel = format!(
        "\n[[notify.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url
    );
    let mut app = daemon_with(
        &url,
        &channel,
        &[("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET)],
    )
    .await;
    let mut live = EventClient::connect(&app, None).await;

    let id = report(&app, LEAKED_KEY, 25).await;
    let mut seen = live
        .until(&app, |e| transition_to(e, id, "awaiting_operator"))
        .await;
    // The "opened" notification is delivered after the incident was created; wait for its
    // verdict too.
    let delivered = |e: &Sse| {
        e.event == "notification" && e.data["incident_id"] == id && e.data["state"] == "sent"
    };
    if !seen.iter().any(delivered) {
        seen.extend(live.until(&app, delivered).await);
    }

    // Every audit row of the incident came, in order, each once; transitions are named so.
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    let audit_ids: Vec<i64> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    let streamed: Vec<i64> = seen
        .iter()
        .filter(|e| e.event != "notification" && e.data["incident_id"] == id)
        .map(|e| e.data["id"].as_i64().unwrap())
        .collect();
    assert_eq!(streamed, audit_ids[..streamed.len()], "{seen:#?}");
    let states: Vec<&str> = seen
        .iter()
        .filter(|e| e.event == "transition" && e.data["incident_id"] == id)
        .map(|e| e.data["detail"]["to"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"revoke"), "{states:?}");
    assert_eq!(states.last(), Some(&"awaiting_operator"));
    for event in &seen {
        let is_transition = event.data["detail"]["from"].is_string();
        assert_eq!(event.event == "transition", is_transition, "{event:#?}");
    }
    let sent = seen.iter().find(|e| delivered(e)).unwrap();
    assert_eq!(sent.data["channel"], "hook");
    assert_eq!(sent.data["event"], "opened");
    // Ids only move forward.
    for pair in seen.windows(2) {
        let (a, b) = (cursor(&pair[0]), cursor(&pair[1]));
        assert!(b.0 >= a.0 && b.1 >= a.1 && b != a, "{pair:#?}");
    }
    for secret in SECRETS.iter().chain([&HOOK_SECRET]) {
        assert!(!live.raw.contains(secret), "a secret is in the stream");
    }
    drop(live);

    // After a restart, a client resuming from the middle gets exactly what followed it: each
    // log in its order, none of what came before, nothing twice.
    assert!(app.stop().await.success());
    app.restart().await;
    let middle = seen.len() / 2;
    let mut resumed = EventClient::connect(&app, Some(&seen[middle].id)).await;
    let expected: Vec<(bool, i64)> = seen[middle + 1..].iter().map(row).collect();
    let before: Vec<(bool, i64)> = seen[..=middle].iter().map(row).collect();
    let mut got: Vec<(bool, i64)> = Vec::new();
    while !expected.iter().all(|key| got.contains(key)) {
        let event = resumed
            .next(Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("resumed stream stopped at {got:?}; expected {expected:?}"));
        let key = row(&event);
        assert!(!before.contains(&key), "{key:?} came again");
        assert!(!got.contains(&key), "{key:?} came twice");
        if let Some(original) = seen.iter().find(|e| row(e) == key) {
            assert_eq!(event.data, original.data);
        }
        got.push(key);
    }
    for log in [false, true] {
        let ids: Vec<i64> = got.iter().filter(|k| k.0 == log).map(|k| k.1).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    }

    // A client that cannot set the header (a page's first connection) passes `after`.
    let response = app
        .client
        .get(app.url(&format!("/v1/events?after={}", seen[middle].id)))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    let mut by_query = EventClient {
        response,
        buffer: String::new(),
        raw: String::new(),
    };
    let first = by_query.next(Duration::from_secs(30)).await.unwrap();
    assert_eq!(row(&first), got[0]);
}

/// Which log an event came from (`true`: deliveries) and its row there.
fn row(event: &Sse) -> (bool, i64) {
    (
        event.event == "notification",
        event.data["id"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn a_viewer_token_opens_the_stream_and_no_token_or_a_foreign_id_is_refused() {
    let app = TestDaemon::spawn_with_env(
        "",
        &[
            ("AKGUARD__API__EVENTS__MAX_STREAMS", "1"),
            ("AKGUARD__API__EVENTS__KEEP_ALIVE", "1"),
        ],
    )
    .await;
    let anonymous = app.get("/v1/events", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["error"]["code"], "unauthorized");

    let foreign = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(VIEWER_TOKEN)
        .header("Last-Event-ID", "not-an-id")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);

    // A stream with no cursor starts now, and a keep-alive comment comes while it is quiet.
    let mut first = EventClient::connect(&app, None).await;
    assert_eq!(first.next(Duration::from_millis(2500)).await, None);
    assert!(first.raw.starts_with(':'), "{:?}", first.raw);

    // One stream is the cap: a second is refused until the first is closed.
    let second = app.get("/v1/events", Some(VIEWER_TOKEN)).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(second.error_message().contains("api.events.max_streams"));
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let retry = app
            .client
            .get(app.url("/v1/events"))
            .bearer_auth(VIEWER_TOKEN)
            .send()
            .await
            .unwrap();
        if retry.status() == StatusCode::OK {
            break;
        }
        assert_eq!(retry.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            std::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
