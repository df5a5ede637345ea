//! Replays change nothing; further reports of a key become sightings; concurrency holds.

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::helpers::{TestDaemon, fixture, generic};

#[tokio::test]
async fn a_replayed_delivery_gives_the_same_answer_and_changes_nothing() {
    let app = TestDaemon::spawn().await;
    let body = fixture("generic_full.json");
    let first = app.post_generic(&body).await;
    let id = first.incident_id();
    let audit_before = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    let incident_before = app.get_ok(&format!("/v1/incidents/{id}")).await;

    let second = app.post_generic(&body).await;
    assert_eq!(second.incident_id(), id);
    assert_eq!(second.body["duplicate"], true);
    assert_eq!(second.body["outcome"], "replay");

    assert_eq!(app.incident_ids().await, vec![id]);
    assert_eq!(
        app.get_ok(&format!("/v1/incidents/{id}/audit")).await,
        audit_before
    );
    assert_eq!(
        app.get_ok(&format!("/v1/incidents/{id}")).await,
        incident_before
    );
}

#[tokio::test]
async fn a_new_report_of_a_key_with_an_open_incident_is_a_sighting() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&generic("LTAI5tSIGHTED000001", "first"))
        .await
        .incident_id();
    let resp = app
        .post_generic(
            r#"{"access_key_id": "LTAI5tSIGHTED000001", "event_id": "second",
                "leak_url": "https://gitee.com/x/y", "detected_at": "2024-06-01T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(resp.incident_id(), id);
    assert_eq!(resp.body["duplicate"], true);
    assert_eq!(resp.body["outcome"], "sighting");

    assert_eq!(app.incident_ids().await, vec![id]);
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    let sightings = incident["sightings"].as_array().unwrap();
    assert_eq!(sightings.len(), 1);
    assert_eq!(sightings[0]["kind"], "report");
    // A stated time long before receipt is kept beside the clamped one.
    assert_ne!(sightings[0]["observed_at"], "2024-06-01T00:00:00Z");
    assert_eq!(
        sightings[0]["detail"]["stated_detected_at"],
        "2024-06-01T00:00:00Z"
    );
    assert_eq!(sightings[0]["detail"]["leak_url"], "https://gitee.com/x/y");
    let actions: Vec<String> = app.get_ok(&format!("/v1/incidents/{id}/audit")).await["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actions, ["incident.opened", "incident.sighting"]);
}

#[tokio::test]
async fn a_delivery_without_an_event_id_is_deduplicated_by_its_body() {
    let app = TestDaemon::spawn().await;
    let body = r#"{"access_key_id": "LTAI5tNOEVENTID00001"}"#;
    let id = app.post_generic(body).await.incident_id();
    let again = app.post_generic(body).await;
    assert_eq!(again.body["outcome"], "replay");
    assert_eq!(again.incident_id(), id);
}

#[tokio::test]
async fn concurrent_copies_of_one_delivery_make_exactly_one_incident() {
    let app = TestDaemon::spawn().await;
    let body = generic("LTAI5tCONCURRENT0001", "storm");
    let responses = app.post_generic_all(vec![body; 50]).await;
    let ids: HashSet<i64> = responses.iter().map(|r| r.incident_id()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        responses
            .iter()
            .filter(|r| r.body["outcome"] == "created")
            .count(),
        1
    );
    assert_eq!(
        responses
            .iter()
            .filter(|r| r.body["outcome"] == "replay")
            .count(),
        49
    );
    assert_eq!(app.incident_ids().await.len(), 1);
}

#[tokio::test]
async fn concurrent_reports_of_one_key_make_one_incident_and_the_rest_sightings() {
    let app = TestDaemon::spawn().await;
    let bodies: Vec<String> = (0..40)
        .map(|i| generic("LTAI5tCONCURRENT0002", &format!("e{i}")))
        .collect();
    let responses = app.post_generic_all(bodies).await;
    for r in &responses {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let ids: HashSet<i64> = responses.iter().map(|r| r.incident_id()).collect();
    assert_eq!(ids.len(), 1);
    let id = *ids.iter().next().unwrap();
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["sightings"].as_array().unwrap().len(), 39);
    assert_eq!(app.incident_ids().await, vec![id]);
}
