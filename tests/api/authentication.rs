//! Every way a delivery can fail to authenticate, and that none of them writes anything.

use base64::Engine;
use reqwest::StatusCode;

use crate::helpers::{
    CLOUDMONITOR_PASSWORD, EVENTBRIDGE_KEY, GENERIC_SECRET, TestDaemon, fixture, generic,
    hmac_signature, now,
};

async fn post(
    app: &TestDaemon,
    source: &str,
    headers: &[(&str, String)],
    body: &str,
) -> crate::helpers::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/v1/notifications/{source}")))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    crate::helpers::Response::read(req.send().await.unwrap()).await
}

type Headers = Vec<(&'static str, String)>;

fn signed(secret: &str, ts: i64, body: &str) -> Headers {
    vec![
        ("x-akguard-timestamp", ts.to_string()),
        (
            "x-akguard-signature",
            hmac_signature(secret, ts, body.as_bytes()),
        ),
    ]
}

#[tokio::test]
async fn unauthenticated_deliveries_are_refused_and_nothing_is_written() {
    // More failures than the per-peer budget: these are about each answer, not the limit.
    let app =
        TestDaemon::spawn_with_env("", &[("AKGUARD__SERVER__MAX_AUTH_FAILURES", "100")]).await;
    let body = generic("LTAI5tUNAUTHENTIC001", "evt-1");
    let ts = now();
    let basic = |user_pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    };
    let cases: Vec<(&str, &str, Headers, &str)> = vec![
        (
            "generic",
            "no signature headers",
            vec![],
            "missing x-akguard-",
        ),
        (
            "generic",
            "signature without timestamp",
            vec![(
                "x-akguard-signature",
                hmac_signature(GENERIC_SECRET, ts, body.as_bytes()),
            )],
            "missing x-akguard-timestamp",
        ),
        (
            "generic",
            "wrong secret",
            signed("not-the-configured-secret", ts, &body),
            "signature does not match",
        ),
        (
            "generic",
            "signature over another body",
            signed(
                GENERIC_SECRET,
                ts,
                &generic("LTAI5tSOMETHINGELSE1", "evt-1"),
            ),
            "signature does not match",
        ),
        (
            "generic",
            "signature without the sha256= prefix",
            vec![
                ("x-akguard-timestamp", ts.to_string()),
                (
                    "x-akguard-signature",
                    hmac_signature(GENERIC_SECRET, ts, body.as_bytes())[7..].to_owned(),
                ),
            ],
            "signature does not match",
        ),
        (
            "generic",
            "replay older than the window",
            signed(GENERIC_SECRET, ts - 301, &body),
            "300 s",
        ),
        (
            "generic",
            "timestamp from the future",
            // Far enough ahead that a slow run of the cases before it cannot bring it into the window.
            signed(GENERIC_SECRET, ts + 360, &body),
            "300 s",
        ),
        (
            "generic",
            "timestamp not a number",
            vec![
                ("x-akguard-timestamp", "yesterday".into()),
                (
                    "x-akguard-signature",
                    hmac_signature(GENERIC_SECRET, ts, body.as_bytes()),
                ),
            ],
            "Unix seconds",
        ),
        (
            "eventbridge",
            "no api key",
            vec![],
            "missing x-eventbridge-token",
        ),
        (
            "eventbridge",
            "wrong api key",
            vec![("x-eventbridge-token", "guess".into())],
            "credentials",
        ),
        (
            "eventbridge",
            "api key with a suffix",
            vec![("x-eventbridge-token", format!("{EVENTBRIDGE_KEY}x"))],
            "credentials",
        ),
        (
            "cloudmonitor",
            "no basic auth",
            vec![],
            "missing authorization",
        ),
        (
            "cloudmonitor",
            "wrong password",
            vec![("authorization", basic("cms:wrong"))],
            "credentials",
        ),
        (
            "cloudmonitor",
            "wrong user",
            vec![(
                "authorization",
                basic(&format!("other:{CLOUDMONITOR_PASSWORD}")),
            )],
            "credentials",
        ),
        (
            "cloudmonitor",
            "not base64",
            vec![("authorization", "Basic %%%".into())],
            "credentials",
        ),
    ];
    for (source, case, headers, expected) in cases {
        let payload = if source == "generic" {
            body.clone()
        } else {
            fixture("eventbridge_custom_generic.json")
        };
        let resp = post(&app, source, &headers, &payload).await;
        assert_eq!(
            resp.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {}",
            resp.text
        );
        assert_eq!(resp.body["error"]["code"], "unauthorized", "{case}");
        assert!(
            resp.error_message().contains(expected),
            "{case}: {}",
            resp.text
        );
    }
    assert!(
        app.incident_ids().await.is_empty(),
        "an unauthenticated delivery was stored"
    );

    // The same body, properly signed, goes through: the refusals above were about auth alone.
    let resp = post(&app, "generic", &signed(GENERIC_SECRET, ts, &body), &body).await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
}

#[tokio::test]
async fn a_source_allowlist_refuses_other_addresses() {
    let app = TestDaemon::spawn_with_env(
        r#"
[intake.sources.partner]
format = "generic"
auth = "api_key"
header = "x-partner-key"
allow_cidrs = ["10.0.0.0/8", "192.0.2.0/24"]

[intake.sources.local]
format = "generic"
auth = "api_key"
header = "x-partner-key"
allow_cidrs = ["127.0.0.0/8"]
"#,
        &[
            (
                "AKGUARD__INTAKE__SOURCES__PARTNER__SECRET",
                "partner-key-0123456789",
            ),
            (
                "AKGUARD__INTAKE__SOURCES__LOCAL__SECRET",
                "partner-key-0123456789",
            ),
        ],
    )
    .await;
    let body = generic("LTAI5tALLOWLIST00001", "evt-1");
    let key = vec![("x-partner-key", "partner-key-0123456789".to_owned())];
    let refused = post(&app, "partner", &key, &body).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert!(refused.error_message().contains("127.0.0.1"));
    assert!(app.incident_ids().await.is_empty());
    let accepted = post(&app, "local", &key, &body).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
}

#[tokio::test]
async fn a_source_with_authentication_switched_off_accepts_and_says_so_loudly() {
    let app =
        TestDaemon::spawn_with("[intake.sources.dev]\nformat = \"generic\"\nauth = \"none\"\n")
            .await;
    let resp = post(&app, "dev", &[], &generic("LTAI5tDEVELOPMENT001", "evt-1")).await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
    let log = app.log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"WARN\"") && l.contains("UNAUTHENTICATED") && l.contains("dev")),
        "no warning about the open source in:\n{log}"
    );
}

#[test]
fn no_documented_token_digest_is_the_digest_of_a_guessable_word() {
    use sha2::{Digest, Sha256};
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let guessable = [
        "test", "password", "secret", "token", "admin", "changeme", "akguard", "viewer",
        "operator", "oncall", "example", "hello", "123456", "letmein", "",
    ];
    let weak: Vec<String> = guessable
        .iter()
        .map(|w| hex::encode(Sha256::digest(w.as_bytes())))
        .collect();
    for doc in ["README.md", "config/example.toml", "config/default.toml"] {
        let text = std::fs::read_to_string(repo.join(doc)).unwrap();
        for digest in text
            .split("sha256 = \"")
            .skip(1)
            .filter_map(|s| s.get(..64))
        {
            assert!(
                !weak.iter().any(|w| w == digest),
                "{doc} shows the SHA-256 of a guessable word: {digest}"
            );
        }
    }
}
