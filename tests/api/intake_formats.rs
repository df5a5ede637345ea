//! Each source format with realistic payloads, from the fixtures folder.

use reqwest::StatusCode;

use crate::helpers::{TestDaemon, fixture};

#[tokio::test]
async fn a_signed_generic_notification_opens_an_incident_with_every_field() {
    let app = TestDaemon::spawn().await;
    let resp = app.post_generic(&fixture("generic_full.json")).await;
    assert_eq!(resp.body["duplicate"], false);
    assert_eq!(resp.body["outcome"], "created");
    let id = resp.incident_id();

    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["id"], id);
    assert_eq!(incident["access_key_id"], "LTAI5tGENERICFULL0001");
    assert_eq!(incident["account_id"], "1234567890123456");
    assert_eq!(incident["account_name"], "acme-prod");
    assert_eq!(incident["owner_type"], "ram_user");
    assert_eq!(incident["user_name"], "ci-deployer");
    assert_eq!(
        incident["leak_url"],
        "https://github.com/acme/app/blob/main/deploy.sh"
    );
    // The stated time is older than intake.max_detection_age: kept, and clamped for triage.
    assert_eq!(incident["stated_detected_at"], "2024-05-01T03:00:00Z");
    assert_ne!(incident["detected_at"], "2024-05-01T03:00:00Z");
    assert_eq!(incident["state"], "new");
    assert_eq!(incident["current_step"], "triage");
    assert!(incident["created_at"].is_string() && incident["updated_at"].is_string());
    assert_eq!(incident["sightings"], serde_json::json!([]));

    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    let events = audit["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["action"], "incident.opened");
    assert_eq!(events[0]["actor"], "source:generic");
    assert_eq!(events[0]["detail"]["delivery_id"], "siem-alert-77121");
}

#[tokio::test]
async fn an_eventbridge_leak_protection_error_opens_an_incident_for_the_calling_key() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_eventbridge(&fixture("eventbridge_leak_protection.json"))
        .await
        .incident_id();
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["access_key_id"], "LTAI5tLEAKEDLEAKEDLEAK");
    assert_eq!(incident["owner_type"], "ram_user");
    assert_eq!(incident["user_name"], "ci-deployer");
    assert_eq!(incident["account_id"], "1234567890123456");
    assert_eq!(incident["stated_detected_at"], "2024-05-01T03:04:05Z");
}

#[tokio::test]
async fn an_eventbridge_custom_event_carrying_the_generic_schema_opens_an_incident() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_eventbridge(&fixture("eventbridge_custom_generic.json"))
        .await
        .incident_id();
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["access_key_id"], "LTAI5tCUSTOMSOURCE0001");
    assert_eq!(incident["user_name"], "billing-exporter");
    assert_eq!(
        incident["leak_url"],
        "https://github.com/acme/billing/blob/4f2a/settings.py"
    );
}

#[tokio::test]
async fn actiontrail_activity_is_a_sighting_only_while_the_key_has_an_open_incident() {
    let app = TestDaemon::spawn().await;
    let activity = fixture("eventbridge_activity.json");

    let resp = app.post_eventbridge(&activity).await;
    assert_eq!(resp.status, StatusCode::ACCEPTED);
    assert_eq!(resp.body["outcome"], "ignored");
    assert!(resp.body["incident_id"].is_null());
    assert!(app.incident_ids().await.is_empty());

    let id = app
        .post_eventbridge(&fixture("eventbridge_leak_protection.json"))
        .await
        .incident_id();
    let resp = app.post_eventbridge(&activity).await;
    assert_eq!(resp.body["outcome"], "sighting");
    assert_eq!(resp.incident_id(), id);

    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    let sightings = incident["sightings"].as_array().unwrap();
    assert_eq!(sightings.len(), 1);
    assert_eq!(sightings[0]["kind"], "activity");
    assert_eq!(sightings[0]["source"], "eventbridge");
    assert_eq!(sightings[0]["observed_at"], "2024-05-01T03:10:00Z");
    assert_eq!(sightings[0]["detail"]["source_ip"], "198.51.100.23");
    assert_eq!(
        sightings[0]["detail"]["event_name"],
        "AuthorizeSecurityGroup"
    );
}

#[tokio::test]
async fn unrelated_eventbridge_events_are_acknowledged_and_not_stored() {
    let app = TestDaemon::spawn().await;
    let resp = app
        .post_eventbridge(&fixture("eventbridge_unrelated.json"))
        .await;
    assert_eq!(resp.status, StatusCode::ACCEPTED);
    assert_eq!(resp.body["outcome"], "ignored");
    assert!(app.incident_ids().await.is_empty());
}

#[tokio::test]
async fn a_cloudmonitor_callback_naming_a_key_opens_an_incident() {
    let app = TestDaemon::spawn().await;
    let resp = app
        .post_cloudmonitor(&fixture("cloudmonitor_system_event.json"))
        .await;
    let id = resp.incident_id();
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["access_key_id"], "LTAI5tCLOUDMONITOR0001");
    assert_eq!(incident["account_id"], "1234567890123456");
    assert_eq!(incident["account_name"], "acme-prod");
    assert_eq!(incident["owner_type"], "ram_user");
    assert_eq!(
        incident["leak_url"],
        "https://github.com/someone/repo/blob/abc123/config.py"
    );
    assert_eq!(incident["stated_detected_at"], "2024-05-01T03:04:05Z");

    // CloudMonitor retries with the same traceId.
    let again = app
        .post_cloudmonitor(&fixture("cloudmonitor_system_event.json"))
        .await;
    assert_eq!(again.body["outcome"], "replay");
    assert_eq!(again.incident_id(), id);
}
