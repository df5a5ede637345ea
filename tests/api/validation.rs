//! Bad input gets a clear error and loses nothing.

use reqwest::StatusCode;

use crate::helpers::{GENERIC_SECRET, TestDaemon, generic, hmac_signature, now};

async fn post_signed(
    app: &TestDaemon,
    source: &str,
    content_type: &str,
    body: Vec<u8>,
) -> crate::helpers::Response {
    let ts = now();
    let resp = app
        .client
        .post(app.url(&format!("/v1/notifications/{source}")))
        .header("content-type", content_type)
        .header("x-akguard-timestamp", ts.to_string())
        .header(
            "x-akguard-signature",
            hmac_signature(GENERIC_SECRET, ts, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    crate::helpers::Response::read(resp).await
}

#[tokio::test]
async fn malformed_notifications_get_a_400_that_names_the_problem() {
    let app = TestDaemon::spawn().await;
    let cases = [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (r#"{"event_id": "x"}"#, "access_key_id is required"),
        (r#"{"access_key_id": "has spaces in it"}"#, "access_key_id"),
        (
            r#"{"access_key_id": "LTAI5tMALFORMED0001", "owner_type": "root"}"#,
            "owner_type",
        ),
        (
            r#"{"access_key_id": "LTAI5tMALFORMED0001", "detected_at": "last tuesday"}"#,
            "detected_at",
        ),
        (r#"{"access_key_id": ["LTAI5tMALFORMED0001"]}"#, "schema"),
    ];
    for (body, expected) in cases {
        let resp = app.post_generic(body).await;
        assert_eq!(
            resp.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            resp.text
        );
        assert_eq!(resp.body["error"]["code"], "bad_request");
        assert!(
            resp.error_message().contains(expected),
            "{body}: {}",
            resp.text
        );
    }
    let resp = app
        .post_eventbridge(r#"{"specversion": "1.0", "source": "acs.ram", "type": "x"}"#)
        .await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST);
    assert!(resp.error_message().contains("`id`"), "{}", resp.text);
    assert!(app.incident_ids().await.is_empty());

    // A rejected delivery loses nothing: the corrected one is accepted.
    assert_eq!(
        app.post_generic(&generic("LTAI5tMALFORMED0001", "e"))
            .await
            .status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_without_being_stored() {
    let app = TestDaemon::spawn_with("").await;
    let padding = "x".repeat(256 * 1024);
    let body = format!(r#"{{"access_key_id": "LTAI5tOVERSIZED0001", "leak_url": "{padding}"}}"#);
    let resp = post_signed(&app, "generic", "application/json", body.into_bytes()).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", resp.text);
    assert!(resp.error_message().contains("262144"), "{}", resp.text);
    assert!(app.incident_ids().await.is_empty());
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = TestDaemon::spawn_with("[intake]\nmax_body_bytes = 100\n").await;
    let body = generic("LTAI5tSMALLLIMIT0001", &"e".repeat(100));
    let resp = post_signed(&app, "generic", "application/json", body.into_bytes()).await;
    assert_eq!(resp.status, StatusCode::PAYLOAD_TOO_LARGE);
    let resp = post_signed(
        &app,
        "generic",
        "application/json",
        generic("LTAI5tSMALLLIMIT0001", "e").into_bytes(),
    )
    .await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
}

#[tokio::test]
async fn a_wrong_content_type_gets_415() {
    let app = TestDaemon::spawn().await;
    let body = generic("LTAI5tCONTENTTYPE001", "e").into_bytes();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = post_signed(&app, "generic", content_type, body.clone()).await;
        assert_eq!(
            resp.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type}"
        );
        assert_eq!(resp.body["error"]["code"], "unsupported_media_type");
    }
    let resp = post_signed(&app, "generic", "application/json; charset=utf-8", body).await;
    assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
}

#[tokio::test]
async fn an_unknown_source_gets_404() {
    let app = TestDaemon::spawn().await;
    let resp = post_signed(&app, "nosuchsource", "application/json", b"{}".to_vec()).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert!(resp.error_message().contains("nosuchsource"));
    let resp = app.get("/v2/whatever", None).await;
    assert_eq!(resp.status, StatusCode::NOT_FOUND);
    assert_eq!(resp.body["error"]["code"], "not_found");
}
