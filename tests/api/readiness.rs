//! `/readyz` end to end: the database, akguard's own credentials (checked with STS in the
//! background) and the Security Center poller's last success, each named when it fails.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cloud_support::{AKGUARD_KEY, AKGUARD_SECRET, emulator, set_faults};
use crate::helpers::{Response, SECRETS, TestDaemon};

/// A daemon signing as akguard's emulator identity, re-checking its credentials every second.
async fn daemon(url: &str, more: &[(&str, &str)]) -> TestDaemon {
    let mut env = vec![
        ("AKGUARD__SERVER__READINESS_REFRESH", "1s"),
        ("AKGUARD__ALIBABA__ENDPOINT", url),
        ("AKGUARD__ALIBABA__ACCESS_KEY_ID", AKGUARD_KEY),
        ("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_SECRET),
        ("AKGUARD__ALIBABA__RETRY__BASE_MS", "10"),
        ("AKGUARD__ALIBABA__RETRY__CAP_MS", "50"),
    ];
    env.extend_from_slice(more);
    TestDaemon::spawn_with_env("", &env).await
}

/// Polls `/readyz` (bounded) until `done` holds for its answer.
async fn wait_for_readyz(
    app: &TestDaemon,
    what: &str,
    done: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = app.get("/readyz", None).await;
        if done(&ready) {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "readyz never {what}: {}",
            ready.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn check<'a>(ready: &'a Response, name: &str) -> &'a Value {
    &ready.body["checks"][name]
}

fn refuse(action: &str, code: &str, status: u16) -> Value {
    json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "fail_next": [
        {"action": action, "count": 100000, "code": code, "status": status,
         "message": "refused by the test"}
    ]})
}

#[tokio::test]
async fn readyz_is_200_only_with_every_check_ok_and_status_shows_them() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon(&url, &[]).await;
    let ready = wait_for_readyz(&app, "ready", |r| r.status == StatusCode::OK).await;
    assert_eq!(ready.body["status"], "ready", "{}", ready.text);
    assert_eq!(check(&ready, "database")["status"], "ok", "{}", ready.text);
    assert_eq!(
        check(&ready, "audit_chain")["status"],
        "ok",
        "{}",
        ready.text
    );
    let credentials = check(&ready, "credentials");
    assert_eq!(credentials["status"], "ok", "{}", ready.text);
    assert!(
        credentials["arn"].as_str().unwrap().contains("akguard"),
        "{}",
        ready.text
    );
    assert_eq!(check(&ready, "security_center")["status"], "disabled");

    let status = app.get_ok("/v1/status").await;
    assert_eq!(status["ready"], true, "{status:#}");
    assert_eq!(
        status["checks"]["credentials"]["status"], "ok",
        "{status:#}"
    );
    assert_eq!(status["checks"]["database"]["status"], "ok", "{status:#}");
    // Liveness stays a liveness probe.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn failing_credentials_make_readyz_503_naming_the_key_then_ready_again() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        refuse("GetCallerIdentity", "InvalidAccessKeyId.NotFound", 404),
    )
    .await;
    let app = daemon(&url, &[]).await;
    let ready = wait_for_readyz(&app, "failing on the credentials", |r| {
        r.body["checks"]["credentials"]["status"] == "failing"
    })
    .await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.body["status"], "unready");
    let reason = check(&ready, "credentials")["reason"].as_str().unwrap();
    for expected in [
        AKGUARD_KEY,
        "GetCallerIdentity",
        "InvalidAccessKeyId.NotFound",
    ] {
        assert!(
            reason.contains(expected),
            "`{expected}` missing from {reason}"
        );
    }
    assert!(
        ready.error_message().contains("credentials"),
        "{}",
        ready.text
    );
    for secret in SECRETS.iter().chain([&AKGUARD_SECRET]) {
        assert!(!ready.text.contains(secret), "a secret in {}", ready.text);
    }
    let status = app.get_ok("/v1/status").await;
    assert_eq!(status["ready"], false, "{status:#}");
    assert_eq!(status["checks"]["credentials"]["status"], "failing");

    // STS answers again: the next background refresh makes akguard ready.
    set_faults(&url, json!({"fail_next": []})).await;
    wait_for_readyz(&app, "ready again", |r| r.status == StatusCode::OK).await;
}

#[tokio::test]
async fn a_security_center_poller_that_never_succeeds_makes_readyz_503() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        refuse("DescribeAccesskeyLeakList", "Forbidden.RAM", 403),
    )
    .await;
    let app = daemon(
        &url,
        &[
            ("AKGUARD__INTAKE__SECURITY_CENTER__ENABLED", "true"),
            ("AKGUARD__INTAKE__SECURITY_CENTER__INTERVAL", "1s"),
        ],
    )
    .await;
    let ready = wait_for_readyz(&app, "failing on the poller", |r| {
        r.body["checks"]["security_center"]["status"] == "failing"
    })
    .await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(
        check(&ready, "credentials")["status"],
        "ok",
        "{}",
        ready.text
    );
    let reason = check(&ready, "security_center")["reason"].as_str().unwrap();
    assert!(reason.contains("no poll has succeeded"), "{reason}");
    assert!(reason.contains("Forbidden.RAM"), "{reason}");
    assert!(
        ready.error_message().contains("security_center"),
        "{}",
        ready.text
    );
}
