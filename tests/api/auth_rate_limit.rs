//! Guessing credentials is slowed per peer: after `server.max_auth_failures` failures the
//! peer is answered 429 with Retry-After, even with a valid credential, and each failure
//! is logged without the credential.

use reqwest::StatusCode;

use crate::helpers::{GENERIC_SECRET, TestDaemon, VIEWER_TOKEN, generic, hmac_signature, now};

const BUDGET: &[(&str, &str)] = &[("AKGUARD__SERVER__MAX_AUTH_FAILURES", "3")];

async fn get_with_token(app: &TestDaemon, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/v1/incidents"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_tokens_are_refused_with_429_after_the_budget_and_logged_without_the_token() {
    let app = TestDaemon::spawn_with_env("", BUDGET).await;
    let guesses: Vec<String> = (0..5).map(|n| format!("guessed-token-{n:04}")).collect();
    for guess in &guesses[..3] {
        let resp = get_with_token(&app, guess).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    for guess in &guesses[3..] {
        let resp = get_with_token(&app, guess).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
    }
    // A valid token from the refused peer is refused too: otherwise each answer would
    // still tell a guesser whether its guess was right.
    let resp = get_with_token(&app, VIEWER_TOKEN).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_requests");
    // Probes need no credential and stay open; other peers keep their own budget.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let resp = other_peer()
        .get(app.url("/v1/incidents"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let log = app.log();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("authentication failed"))
        .collect();
    assert_eq!(failures.len(), 3, "{log}");
    assert!(
        failures
            .iter()
            .all(|l| l.contains("127.0.0.1") && l.contains("/v1/incidents")),
        "{log}"
    );
    assert!(log.contains("too many failed authentications"), "{log}");
    for guess in &guesses {
        assert!(!log.contains(guess.as_str()), "a token reached the log");
    }
}

#[tokio::test]
async fn bad_webhook_signatures_spend_the_same_budget() {
    let app = TestDaemon::spawn_with_env("", BUDGET).await;
    let body = generic("LTAI5tRATELIMITED001", "evt-rl-1");
    let post = |signature: String| {
        let ts = now();
        app.client
            .post(app.url("/v1/notifications/generic"))
            .header("content-type", "application/json")
            .header("x-akguard-timestamp", ts.to_string())
            .header(
                "x-akguard-signature",
                if signature.is_empty() {
                    hmac_signature(GENERIC_SECRET, ts, body.as_bytes())
                } else {
                    signature
                },
            )
            .body(body.clone())
            .send()
    };
    for n in 0..3 {
        let resp = post(format!("sha256={n:064}")).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let resp = post(String::new()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    // Nothing was stored: another peer, with its own budget, can see that.
    let resp = other_peer()
        .get(app.url("/v1/incidents"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["incidents"], serde_json::json!([]));
}

/// A client whose connections come from 127.0.0.2: a different peer on the same host.
fn other_peer() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}
