//! A database made by the release before typed findings (commit 30a8a07), opened by this one:
//! every incident's findings read back as they were written, and unfinished incidents finish.
//!
//! The fixture holds six incidents: 1 awaiting cutover after an operator's `set-rotation`
//! (rotation, sink, cutover, revoke, MFA, audit, billing), 2 the chain incident of the key 1's
//! key created, waiting for approval of its deletion, 3 resolved (approved, deleted), 4
//! cancelled while waiting for that approval, 5 an account key and 6 akguard's own key, both
//! with a person.

use std::path::PathBuf;
use std::str::FromStr;

use serde_json::{Value, json};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Row};

use crate::artefacts::act;
use crate::cloud_support::emulator;
use crate::remediation::daemon_on_copy;
use crate::rotation::FAST;

/// The key incident 1's rotation created and delivered, before the fixture was saved.
const ROTATED_KEY: &str = "LTAI5tpHFZS8zWLr2h0bEOrz";

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/typed-findings-before.db")
}

/// Each incident's findings as the earlier release stored them.
async fn stored_findings() -> Vec<(i64, Value)> {
    let mut conn = SqliteConnectOptions::from_str(&format!("sqlite://{}", fixture().display()))
        .unwrap()
        .read_only(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("SELECT id, findings FROM incidents ORDER BY id")
        .fetch_all(&mut conn)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            let text: String = row.get("findings");
            (row.get("id"), serde_json::from_str(&text).unwrap())
        })
        .collect()
}

/// Typed findings leave out what a step did not learn, where the earlier ones wrote `null`.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[tokio::test]
async fn a_database_from_before_typed_findings_reads_back_and_its_open_incidents_finish() {
    // The workload already uses the rotated key, so the cutover incident 1 waits for is due.
    let (url, _emulator) = emulator("leaked-in-use.json", |scenario| {
        let users = scenario["users"].as_array_mut().unwrap();
        let deployer = users
            .iter_mut()
            .find(|u| u["name"] == "ci-deployer")
            .unwrap();
        deployer["access_keys"].as_array_mut().unwrap().push(json!({
            "id": ROTATED_KEY, "secret": "RotatedSecretForTheUpgradeTest01",
            "create_date": "-20m", "last_used": "-1m", "last_used_service": "Ecs"}));
    })
    .await;
    let config = "[approvals]\nsteps = [\"delete_key\"]\n";
    let app = daemon_on_copy(&fixture(), &url, config, FAST).await;

    let stored = stored_findings().await;
    assert_eq!(stored.len(), 6);
    for (id, before) in &stored {
        let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
        assert_eq!(
            without_nulls(&incident["findings"]),
            without_nulls(before),
            "incident {id}'s findings changed on reading"
        );
    }
    let cancelled = app.get_ok("/v1/incidents/4").await;
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(
        cancelled["explanation"],
        "Cancelled. akguard undid: set legacy-archive's key LTAI5tLegacyArchive9k2Mq to Active."
    );
    let own = app.get_ok("/v1/incidents/6").await;
    assert!(
        own["explanation"]
            .as_str()
            .unwrap()
            .starts_with("POSSIBLE LEAK OF AKGUARD'S OWN CREDENTIALS"),
        "{own:#}"
    );

    // The approval the chain incident was waiting for is found by the list's filter, which
    // the migration filled in from the findings.
    let waiting = app.get_ok("/v1/incidents?waiting=approval").await;
    let ids: Vec<i64> = waiting["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2]);
    let chain = &waiting["incidents"][0];
    assert_eq!(chain["waiting_for"]["approval"], "delete_key", "{chain:#}");
    let (status, body) = act(&app, 2, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    // A chain incident ends with a person, who removes what the attacker created.
    let chain = app
        .wait_for_incident(2, "left with its checklist", |i| {
            i["reason"] == "attacker_artefacts"
        })
        .await;
    let findings = &chain["findings"];
    assert_eq!(findings["approval_delete_key"]["by"], "operator:alice");
    assert_eq!(
        findings["delete_key"]["access_key_id"],
        "LTAI5tBkD00rSvcBackup3Zq"
    );
    assert_eq!(findings["delete_key"]["deleted"], true);
    assert_eq!(findings["attacker_artefacts"]["created_by_incident"], 1);

    // Incident 1 goes on from the rotation the earlier release recorded: the workload moved
    // to the new key, so the leaked key is disabled, and deleted once approved.
    let rotated = app
        .wait_for_incident(1, "waiting to delete the old key", |i| {
            i["waiting_for"]["approval"] == "delete_key"
        })
        .await;
    assert_eq!(rotated["findings"]["cutover"]["new_key_in_use"], true);
    assert_eq!(rotated["findings"]["disable_old_key"]["verified"], true);
    assert_eq!(
        rotated["findings"]["rotation"]["new_access_key_id"],
        ROTATED_KEY
    );
    let (status, body) = act(&app, 1, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let done = app
        .wait_for_incident(1, "resolved", |i| i["state"] == "resolved")
        .await;
    assert_eq!(done["findings"]["delete_key"]["deleted"], true, "{done:#}");
    let waiting = app.get_ok("/v1/incidents?waiting=approval").await;
    assert_eq!(waiting["incidents"], json!([]));
}
