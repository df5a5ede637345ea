//! The on-call API: tokens and roles, listing with filters and cursors, manual reports.

use reqwest::StatusCode;

use crate::helpers::{OPERATOR_TOKEN, TestDaemon, VIEWER_TOKEN, generic};

#[tokio::test]
async fn the_status_api_needs_a_valid_token_but_probes_do_not() {
    let app = TestDaemon::spawn().await;
    for path in ["/v1/incidents", "/v1/incidents/1", "/v1/incidents/1/audit"] {
        let resp = app.get(path, None).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(resp.body["error"]["code"], "unauthorized");
        let resp = app.get(path, Some("not-a-configured-token")).await;
        assert_eq!(resp.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    // The probe needs no token. This daemon's made-up key goes to the real Alibaba Cloud
    // endpoints, which refuse it or cannot be reached, so it is unready on them
    // (tests/api/readiness.rs has the ready case against the emulator).
    let ready = app.get("/readyz", None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(
        ready.body["checks"]["database"]["status"], "ok",
        "{}",
        ready.text
    );
    assert_ne!(
        ready.body["checks"]["credentials"]["status"], "ok",
        "{}",
        ready.text
    );
}

#[tokio::test]
async fn listing_is_newest_first_with_filters_and_cursor_pagination() {
    let app = TestDaemon::spawn().await;
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(
            app.post_generic(&generic(&format!("LTAI5tLISTING0000{i}"), &format!("e{i}")))
                .await
                .incident_id(),
        );
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut path = "/v1/incidents?limit=2".to_owned();
    loop {
        let page = app.get_ok(&path).await;
        let items = page["incidents"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/incidents?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);

    let by_key = app
        .get_ok("/v1/incidents?access_key_id=LTAI5tLISTING00003")
        .await;
    let items = by_key["incidents"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["access_key_id"], "LTAI5tLISTING00003");
    assert_eq!(
        app.get_ok("/v1/incidents?state=new").await["incidents"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let bad_state = app
        .get("/v1/incidents?state=exploded", Some(VIEWER_TOKEN))
        .await;
    assert_eq!(bad_state.status, StatusCode::BAD_REQUEST);
    assert!(bad_state.error_message().contains("exploded"));
    let bad_cursor = app
        .get("/v1/incidents?cursor=abc", Some(VIEWER_TOKEN))
        .await;
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/v1/incidents/999", Some(VIEWER_TOKEN))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/incidents/abc/audit", Some(VIEWER_TOKEN))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn operators_can_report_a_leak_by_hand_and_viewers_cannot() {
    let app = TestDaemon::spawn().await;
    let body = r#"{"access_key_id": "LTAI5tMANUALREPORT01", "owner_type": "account", "leak_url": "https://pastebin.com/abc"}"#;
    let post = |token: &'static str, body: &'static str| {
        app.client
            .post(app.url("/v1/incidents"))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let viewer = crate::helpers::Response::read(post(VIEWER_TOKEN, body).await.unwrap()).await;
    assert_eq!(viewer.status, StatusCode::FORBIDDEN);
    assert!(viewer.error_message().contains("operator"));
    assert!(app.incident_ids().await.is_empty());

    let created = crate::helpers::Response::read(post(OPERATOR_TOKEN, body).await.unwrap()).await;
    let id = created.incident_id();
    assert_eq!(created.body["outcome"], "created");
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["owner_type"], "account");
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    assert_eq!(audit["events"][0]["actor"], "operator:alice");

    let bad = crate::helpers::Response::read(
        post(OPERATOR_TOKEN, r#"{"user_name": "x"}"#).await.unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.error_message().contains("access_key_id"));
}
