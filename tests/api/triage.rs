//! Triage against untrusted detection times, end to end: a report dated long ago or in the
//! future never disables a key its workload uses, and a later, current report re-triages an
//! incident whose key akguard has not yet touched.

use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, calls_of, emulator, options, state, static_key};
use crate::helpers::{TestDaemon, fixture};
use crate::remediation::{daemon_with, report, user};

const UNUSED_KEY: &str = "LTAI5tLegacyBackup2x8QwP";
const UNUSED_SECRET: &str = "Lg8Bk2Qw9Xz4Vc7Nm1Pa5Sd3Fg6Hj0";

/// The leak-protection event EventBridge delivered on 2024-05-01, replayed for `key`.
fn replayed_eventbridge(key: &str) -> String {
    let mut event: Value =
        serde_json::from_str(&fixture("eventbridge_leak_protection.json")).unwrap();
    event["data"]["userIdentity"]["accessKeyId"] = json!(key);
    event.to_string()
}

fn generic_at(key: &str, event_id: &str, detected_at: &str) -> String {
    json!({"access_key_id": key, "event_id": event_id, "detected_at": detected_at}).to_string()
}

/// Successful `UpdateAccessKey` calls that named `key`.
async fn key_updates(url: &str, key: &str) -> usize {
    calls_of(url, "UpdateAccessKey")
        .await
        .iter()
        .filter(|c| c["status"] == 200 && c["params"]["UserAccessKeyId"] == key)
        .count()
}

fn key_status(cloud: &Value, user_name: &str, key: &str) -> Value {
    user(cloud, user_name)["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == key)
        .map(|k| k["status"].clone())
        .unwrap_or(Value::Null)
}

async fn post(app: &TestDaemon, eventbridge: bool, body: &str) -> i64 {
    let response = if eventbridge {
        app.post_eventbridge(body).await
    } else {
        app.post_generic(body).await
    };
    response.incident_id()
}

#[tokio::test]
async fn a_backdated_or_future_dated_report_never_disables_a_key_in_use() {
    // The key's workload used it 7 minutes ago (leaked-in-use.json).
    let reports = [
        (
            "EventBridge replay of 2024-05-01",
            true,
            replayed_eventbridge(LEAKED_KEY),
        ),
        (
            "generic dated 2001-01-01",
            false,
            generic_at(LEAKED_KEY, "siem-2001", "2001-01-01T00:00:00Z"),
        ),
        (
            "generic dated 2099-01-01",
            false,
            generic_at(LEAKED_KEY, "siem-2099", "2099-01-01T00:00:00Z"),
        ),
    ];
    for (what, eventbridge, body) in reports {
        let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
        let app = daemon_with(&url, "", &[]).await;
        let received = chrono::Utc::now();
        let id = post(&app, eventbridge, &body).await;
        let incident = app
            .wait_for_incident(id, "contained and waiting for a person", |i| {
                i["state"] == "awaiting_operator" || i["state"] == "needs_attention"
            })
            .await;
        assert_eq!(
            incident["state"], "awaiting_operator",
            "{what}: {incident:#}"
        );
        assert_eq!(incident["path"], "ram_key_in_use", "{what}");
        assert_eq!(incident["findings"]["triage"]["usage"], "in_use", "{what}");
        assert!(
            incident["time_to_containment_ms"].as_i64().is_some(),
            "{what}"
        );
        // Containment waits on these: one page per region and side at most (three regions).
        let lookups = incident["findings"]["triage"]["evidence"]["actiontrail_lookups"]
            .as_u64()
            .unwrap();
        assert!(lookups <= 6, "{what}: {lookups} look-ups");

        // The stated time is kept; triage judged on one within a day before receipt.
        assert!(
            incident["stated_detected_at"].is_string(),
            "{what}: {incident:#}"
        );
        let used: chrono::DateTime<chrono::Utc> =
            incident["detected_at"].as_str().unwrap().parse().unwrap();
        assert!(used <= chrono::Utc::now(), "{what}: {used}");
        assert!(
            used >= received - chrono::Duration::hours(24) - chrono::Duration::seconds(5),
            "{what}: {used}"
        );

        let cloud = state(&url).await;
        assert_eq!(
            key_status(&cloud, "ci-deployer", LEAKED_KEY),
            "Active",
            "{what}"
        );
        assert!(
            user(&cloud, "ci-deployer")["policies"]
                .to_string()
                .contains("akguard-deny-high-risk"),
            "{what}: the Deny policy is attached"
        );
        assert_eq!(key_updates(&url, LEAKED_KEY).await, 0, "{what}");
    }
}

#[tokio::test]
async fn a_current_report_re_triages_an_incident_judged_unused_on_a_stale_time() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    // Disabling waits for an operator, which leaves the incident judged but not acted on.
    let app = daemon_with(&url, "[approvals]\nsteps = [\"disable_key\"]\n", &[]).await;
    let stale = generic_at(UNUSED_KEY, "replayed-alert", "2001-01-01T00:00:00Z");
    let id = app.post_generic(&stale).await.incident_id();
    let judged = app
        .wait_for_incident(id, "waiting to disable", |i| {
            i["state"] == "disable_key" && i["findings"]["approval_disable_key"].is_object()
        })
        .await;
    assert_eq!(
        judged["findings"]["triage"]["usage"], "unused",
        "{judged:#}"
    );

    // A workload takes the key up again, and a current report arrives.
    let workload =
        akguard::cloud::CloudClient::new(options(&url, static_key(UNUSED_KEY, UNUSED_SECRET)))
            .unwrap();
    let call =
        akguard::cloud::Request::new(akguard::cloud::product::Product::Sts, "GetCallerIdentity");
    let _ = workload.call(call).await;
    let current = json!({"access_key_id": UNUSED_KEY, "event_id": "current-alert",
        "detected_at": chrono::Utc::now().to_rfc3339()});
    let response = app.post_generic(&current.to_string()).await;
    assert_eq!(response.incident_id(), id);
    assert_eq!(response.body["outcome"], "retriaged", "{}", response.text);

    let incident = app
        .wait_for_incident(id, "contained as in use", |i| {
            i["state"] == "awaiting_operator" || i["state"] == "needs_attention"
        })
        .await;
    assert_eq!(incident["path"], "ram_key_in_use", "{incident:#}");
    assert_eq!(incident["findings"]["triage"]["usage"], "in_use");
    assert!(incident["stated_detected_at"].is_null(), "{incident:#}");
    let cloud = state(&url).await;
    assert_eq!(key_status(&cloud, "legacy-backup", UNUSED_KEY), "Active");
    assert!(
        user(&cloud, "legacy-backup")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    assert_eq!(key_updates(&url, UNUSED_KEY).await, 0);
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    let retriaged: Vec<&Value> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "incident.retriaged")
        .collect();
    assert_eq!(retriaged.len(), 1);
    assert_eq!(retriaged[0]["detail"]["from"], "disable_key");
    assert_eq!(retriaged[0]["detail"]["to"], "new");

    // Once acted upon, a further report is only a sighting.
    let again = json!({"access_key_id": UNUSED_KEY, "event_id": "current-alert-2"});
    let response = app.post_generic(&again.to_string()).await;
    assert_eq!(response.body["outcome"], "sighting", "{}", response.text);
    let after = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(after["state"], "awaiting_operator");
}

#[tokio::test]
async fn use_after_detection_nobody_can_attribute_is_contained_and_left_to_a_person() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        // The key's only recorded call: after detection, from an address it never used.
        let events = s["events"].as_array_mut().unwrap();
        events
            .retain(|e| e["userIdentity"]["accessKeyId"] != LEAKED_KEY || e["eventTime"] == "-8m");
    })
    .await;
    let app = daemon_with(&url, "", &[]).await;
    let id = report(&app, LEAKED_KEY, 20).await;
    let incident = app
        .wait_for_incident(id, "waiting for a person", |i| {
            i["state"] == "awaiting_operator" || i["state"] == "needs_attention"
        })
        .await;
    assert_eq!(incident["state"], "awaiting_operator", "{incident:#}");
    assert_eq!(incident["path"], "ram_key_in_use");
    let triage = &incident["findings"]["triage"];
    assert_eq!(triage["usage"], "unattributed", "{triage:#}");
    assert_eq!(
        triage["evidence"]["sources_after_detection"],
        json!(["185.220.101.47"])
    );
    let explanation = incident["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("could not attribute") && explanation.contains("A person must decide"),
        "{explanation}"
    );
    let cloud = state(&url).await;
    assert_eq!(key_status(&cloud, "ci-deployer", LEAKED_KEY), "Active");
    assert!(
        user(&cloud, "ci-deployer")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    assert_eq!(key_updates(&url, LEAKED_KEY).await, 0);
}
