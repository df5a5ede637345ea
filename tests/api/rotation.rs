//! Rotation end to end: a new key delivered to the workload's sink, the cutover observed, the
//! leaked key (and only it) disabled and deleted.

use akguard::cloud::CloudClient;
use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, calls_of, emulator, options, state, static_key};
use crate::remediation::{
    MUTATING, daemon_with, most_per_target, report, settled, successful_calls, user,
};

pub(crate) const FAST: &[(&str, &str)] = &[
    ("AKGUARD__ROTATION__QUIET_PERIOD", "0s"),
    ("AKGUARD__ROTATION__POLL_INTERVAL", "0s"),
    ("AKGUARD__ROTATION__DISABLE_GRACE", "0s"),
];

pub(crate) fn kms_sink() -> &'static str {
    "[[rotation.users]]\nuser = \"ci-deployer\"\nsink = \"kms\"\nsecret_name = \"acme/ci-deployer/accesskey\"\n"
}

/// The key the emulator's KMS secret now holds, as the workload would read it.
pub(crate) fn delivered_key(cloud: &Value, version: &str) -> (String, String) {
    let secret = cloud["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "acme/ci-deployer/accesskey")
        .unwrap();
    let stored = secret["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["version_id"] == version)
        .expect("the delivered version");
    let data: Value = serde_json::from_str(stored["data"].as_str().unwrap()).unwrap();
    (
        data["AccessKeyId"].as_str().unwrap().to_owned(),
        data["AccessKeySecret"].as_str().unwrap().to_owned(),
    )
}

/// Waits (bounded) for the poller to open the first incident.
async fn first_incident(app: &crate::helpers::TestDaemon) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(id) = app.incident_ids().await.last() {
            return *id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the poller opened no incident"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The workload switches: one call signed with the new key.
pub(crate) async fn workload_uses(url: &str, id: &str, secret: &str) {
    let client = CloudClient::new(options(url, static_key(id, secret))).unwrap();
    client.get_user("ci-deployer").await.unwrap();
}

#[tokio::test]
async fn a_rotatable_key_is_replaced_through_kms_then_disabled_and_deleted() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // This leak arrives through the Security Center poller, whose record is closed at the end.
    let mut fast: Vec<(&str, &str)> = FAST.to_vec();
    fast.extend([
        ("AKGUARD__INTAKE__SECURITY_CENTER__ENABLED", "true"),
        ("AKGUARD__INTAKE__SECURITY_CENTER__INTERVAL", "1s"),
    ]);
    let mut app = daemon_with(&url, kms_sink(), &fast).await;
    let id = first_incident(&app).await;
    let waiting = app
        .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    assert_eq!(waiting["path"], "ram_key_rotatable");
    let rotation = &waiting["findings"]["rotation"];
    let new_key = rotation["new_access_key_id"].as_str().unwrap().to_owned();
    let version = rotation["secret_version"].as_str().unwrap().to_owned();
    assert_eq!(version, format!("akguard-{id}-{new_key}"));
    let cloud = state(&url).await;
    let (delivered, secret) = delivered_key(&cloud, &version);
    assert_eq!(delivered, new_key);
    // Both keys exist while the workload has not switched.
    assert_eq!(
        user(&cloud, "ci-deployer")["access_keys"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    workload_uses(&url, &new_key, &secret).await;
    let incident = app
        .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    assert_eq!(incident["findings"]["cutover"]["new_key_in_use"], true);
    assert_eq!(
        incident["findings"]["delete_key"]["deny_policy_detached"],
        true
    );

    let cloud = state(&url).await;
    let keys: Vec<&str> = user(&cloud, "ci-deployer")["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [new_key.as_str()], "only the leaked key is gone");
    // ci-deployer's keys only: the backdoor key the leaked key created is deleted too.
    let deleted: Vec<Value> = calls_of(&url, "DeleteAccessKey")
        .await
        .iter()
        .filter(|c| c["status"] == 200 && c["params"]["UserName"] == "ci-deployer")
        .map(|c| c["params"]["UserAccessKeyId"].clone())
        .collect();
    assert_eq!(deleted, [json!(LEAKED_KEY)]);
    assert!(
        !user(&cloud, "ci-deployer")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    assert_eq!(
        cloud["leaks"][0]["status"], "dealed",
        "{:#}",
        cloud["leaks"][0]
    );
    for action in MUTATING {
        assert!(
            most_per_target(&url, action).await <= 1,
            "{action} repeated an effect"
        );
    }

    // The new secret is nowhere akguard writes.
    assert!(app.stop().await.success());
    assert!(!app.log().contains(&secret), "the log holds the new secret");
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a database file holds the new secret"
        );
    }
}

#[tokio::test]
async fn a_file_sink_gets_the_new_key_with_owner_only_permissions() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci-deployer.json");
    let config = format!(
        "[[rotation.users]]\nuser = \"ci-deployer\"\nsink = \"file\"\npath = \"{}\"\n",
        path.display()
    );
    let app = daemon_with(&url, &config, FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    let data: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    workload_uses(
        &url,
        data["AccessKeyId"].as_str().unwrap(),
        data["AccessKeySecret"].as_str().unwrap(),
    )
    .await;
    app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
}

#[tokio::test]
async fn a_second_key_akguard_did_not_create_stops_the_rotation_for_a_person() {
    let (url, _emulator) = emulator("two-keys.json", |_| {}).await;
    let config = "[[rotation.users]]\nuser = \"data-pipeline\"\nsink = \"kms\"\nsecret_name = \"acme/data-pipeline/accesskey\"\n";
    let app = daemon_with(&url, config, FAST).await;
    let id = report(&app, "LTAI5tDataPipeLeak3d9Kq2", 25).await;
    let incident = app.wait_for_incident(id, "needs a person", settled).await;
    assert_eq!(incident["reason"], "second_key", "{incident:#}");
    assert_eq!(
        incident["findings"]["rotation"]["other_key"],
        "LTAI5tDataPipeSecond7Mx4"
    );
    assert_eq!(successful_calls(&url, "CreateAccessKey").await, 0);
    assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 0);
}

#[tokio::test]
async fn an_operator_confirms_a_cutover_the_old_key_never_stops_showing() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // The attacker keeps the old key busy: its quiet period never comes.
    let slow = [
        ("AKGUARD__ROTATION__QUIET_PERIOD", "1h"),
        ("AKGUARD__ROTATION__POLL_INTERVAL", "0s"),
        ("AKGUARD__ROTATION__DISABLE_GRACE", "0s"),
    ];
    let app = daemon_with(&url, kms_sink(), &slow).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let act = |action: &'static str| {
        app.client
            .post(app.url(&format!("/v1/incidents/{id}/actions/{action}")))
            .bearer_auth(crate::helpers::OPERATOR_TOKEN)
            .send()
    };
    let early = act("confirm-cutover").await.unwrap();
    assert_eq!(
        early.status(),
        409,
        "nothing to confirm before the new key exists"
    );
    app.wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    let mut confirmed = act("confirm-cutover").await.unwrap();
    // The worker may be reading last-used data right now; it answers 409 "try again".
    for _ in 0..50 {
        if confirmed.status() != 409 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        confirmed = act("confirm-cutover").await.unwrap();
    }
    assert_eq!(confirmed.status(), 200);
    let incident = app
        .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    assert_eq!(
        incident["findings"]["delete_key"]["access_key_id"],
        LEAKED_KEY
    );
    let late = act("confirm-cutover").await.unwrap();
    assert_eq!(late.status(), 409);
    let body: Value = late.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("resolved"),
        "{body}"
    );
    let audit = crate::remediation::audit_actions(&app, id).await;
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "operator.confirm_cutover" && e["actor"] == "operator:alice")
    );
}

pub(crate) async fn act(
    app: &crate::helpers::TestDaemon,
    id: i64,
    action: &str,
    body: Value,
) -> (u16, Value) {
    // A worker reading last-used data holds the incident for a moment: 409 "try again".
    for _ in 0..50 {
        let response = app
            .client
            .post(app.url(&format!("/v1/incidents/{id}/actions/{action}")))
            .bearer_auth(crate::helpers::OPERATOR_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let value: Value = response.json().await.unwrap_or_default();
        if status != 409 || !value.to_string().contains("try again") {
            return (status, value);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{action} stayed busy");
}

#[tokio::test]
async fn set_rotation_lets_akguard_rotate_a_key_it_was_not_set_up_for() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let allow = "[rotation.operator_sinks]\nkms_secret_prefixes = [\"acme/ci-\"]\n";
    let app = daemon_with(&url, allow, FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let waiting = app
        .wait_for_incident(id, "awaiting the operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    assert!(
        waiting["explanation"]
            .as_str()
            .unwrap()
            .contains("set-rotation")
    );
    let (status, body) = act(&app, id, "set-rotation", json!({"sink": "kms"})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = act(&app, id, "reenable", json!({})).await;
    assert_eq!(status, 409, "nothing was disabled yet: {body}");
    let sink = json!({"sink": "kms", "secret_name": "acme/ci-deployer/accesskey"});
    let (status, body) = act(&app, id, "set-rotation", sink).await;
    assert_eq!(status, 200, "{body}");
    let cut = app
        .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    assert_eq!(cut["path"], "ram_key_rotatable");
    let version = cut["findings"]["rotation"]["secret_version"]
        .as_str()
        .unwrap()
        .to_owned();
    let (new_key, secret) = delivered_key(&state(&url).await, &version);
    workload_uses(&url, &new_key, &secret).await;
    app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
}

#[tokio::test]
async fn a_key_rotated_by_hand_is_disabled_and_can_be_reenabled_during_the_grace() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let slow_grace = [
        ("AKGUARD__ROTATION__QUIET_PERIOD", "0s"),
        ("AKGUARD__ROTATION__POLL_INTERVAL", "0s"),
        ("AKGUARD__ROTATION__DISABLE_GRACE", "1h"),
    ];
    let app = daemon_with(&url, "", &slow_grace).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    // The person moved the workload themselves: akguard only checks the old key's disuse.
    let (status, body) = act(&app, id, "confirm-cutover", json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_incident(id, "in its grace period", |i| i["state"] == "delete_key")
        .await;
    assert_eq!(
        user(&state(&url).await, "ci-deployer")["access_keys"][0]["status"],
        "Inactive"
    );
    assert_eq!(successful_calls(&url, "CreateAccessKey").await, 0);

    // Something broke: the operator wants the key back.
    let (status, body) = act(&app, id, "reenable", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let incident = app
        .wait_for_incident(id, "re-enabled", |i| i["reason"] == "reenabled")
        .await;
    assert!(
        incident["explanation"]
            .as_str()
            .unwrap()
            .contains("Deny policy stays attached")
    );
    let cloud = state(&url).await;
    assert_eq!(
        user(&cloud, "ci-deployer")["access_keys"][0]["status"],
        "Active"
    );
    assert!(
        user(&cloud, "ci-deployer")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 0);
    let audit = crate::remediation::audit_actions(&app, id).await;
    assert!(audit.iter().any(|e| e["action"] == "operator.reenable"));
}

/// Cancels with `reason` and waits for the incident to close.
async fn cancel(app: &crate::helpers::TestDaemon, id: i64, reason: &str) -> Value {
    let (status, body) = act(app, id, "cancel", json!({ "reason": reason })).await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_incident(id, "cancelled", |i| i["state"] == "cancelled")
        .await
}

#[tokio::test]
async fn cancelling_a_false_positive_restores_what_akguard_changed() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, "", FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    assert!(
        user(&state(&url).await, "ci-deployer")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );

    let (status, body) = act(&app, id, "cancel", json!({})).await;
    assert_eq!(status, 400, "a cancellation must say why: {body}");
    let incident = cancel(&app, id, "the key in the repository was a revoked test key").await;
    assert_eq!(
        incident["findings"]["cancel"]["undone"],
        json!([
            "detach akguard-deny-high-risk from ci-deployer",
            // The network fence (audit.known_cidrs) goes back to the key's earlier policy.
            "set the network access policy of key LTAI5tQ9xLeakedCiDeploy7 to \
             {\"Version\":1,\"Status\":\"Inactive\",\"Statements\":[]}"
        ]),
        "{incident:#}"
    );
    assert!(incident["closed_at"].is_string());
    let cloud = state(&url).await;
    assert!(
        !user(&cloud, "ci-deployer")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    assert_eq!(
        user(&cloud, "ci-deployer")["access_keys"][0]["status"],
        "Active"
    );
    let audit = crate::remediation::audit_actions(&app, id).await;
    let cancel = audit
        .iter()
        .find(|e| e["action"] == "operator.cancel")
        .unwrap();
    assert!(
        cancel["detail"]["note"]["reason"]
            .as_str()
            .unwrap()
            .contains("revoked test key")
    );
    let (status, _) = act(&app, id, "cancel", json!({"reason": "again"})).await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn an_incident_triage_could_not_place_can_be_cancelled() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, "", FAST).await;
    let id = report(&app, "LTAI5tNOBODYOWNSTHIS0000", 5).await;
    let stuck = app
        .wait_for_incident(id, "needs_attention", |i| i["state"] == "needs_attention")
        .await;
    assert_eq!(stuck["reason"], "owner_unknown");
    assert!(stuck["path"].is_null(), "{stuck:#}");
    let incident = cancel(&app, id, "a revoked key pasted into a test fixture").await;
    assert!(incident["closed_at"].is_string(), "{incident:#}");
    for action in MUTATING {
        assert_eq!(successful_calls(&url, action).await, 0, "{action}");
    }
}

#[tokio::test]
async fn cancelling_during_the_grace_period_reenables_the_disabled_key() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    let app = daemon_with(&url, "", &[("AKGUARD__ROTATION__DISABLE_GRACE", "1h")]).await;
    let id = report(&app, "LTAI5tLegacyBackup2x8QwP", 5).await;
    app.wait_for_incident(id, "in its grace period", |i| i["state"] == "delete_key")
        .await;
    assert_eq!(
        user(&state(&url).await, "legacy-backup")["access_keys"][0]["status"],
        "Inactive"
    );
    let incident = cancel(&app, id, "the backup job still needs it").await;
    assert_eq!(
        incident["findings"]["cancel"]["undone"],
        json!(["set legacy-backup's key LTAI5tLegacyBackup2x8QwP to Active"]),
        "{incident:#}"
    );
    assert_eq!(
        user(&state(&url).await, "legacy-backup")["access_keys"][0]["status"],
        "Active"
    );
    assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 0);
}

#[tokio::test]
async fn approvals_hold_a_step_until_an_operator_or_the_deadline_decides() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    let unused = "LTAI5tLegacyBackup2x8QwP";
    // Without a deadline the deletion waits for an operator.
    let app = daemon_with(&url, "[approvals]\nsteps = [\"delete_key\"]\n", FAST).await;
    let id = report(&app, unused, 5).await;
    let waiting = app
        .wait_for_incident(id, "waiting for approval", |i| {
            i["findings"]["approval_delete_key"]["requested_at"].is_string()
        })
        .await;
    assert_eq!(waiting["state"], "delete_key");
    assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 0);
    let (status, body) = act(&app, id, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let done = app
        .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    assert!(
        done["findings"]["approval_delete_key"]["by"]
            .as_str()
            .unwrap()
            .starts_with("operator:")
    );
    let (status, _) = act(&app, id, "approve", json!({})).await;
    assert_eq!(status, 409, "nothing left to approve");
}

#[tokio::test]
async fn an_approval_deadline_goes_to_a_person_or_proceeds_per_configuration() {
    let unused = "LTAI5tLegacyBackup2x8QwP";
    for (on_deadline, expected) in [
        ("needs_attention", "needs_attention"),
        ("proceed", "resolved"),
    ] {
        let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
        let config = format!(
            "[approvals]\nsteps = [\"delete_key\"]\ndeadline = \"1s\"\non_deadline = \"{on_deadline}\"\n"
        );
        let app = daemon_with(&url, &config, FAST).await;
        let id = report(&app, unused, 5).await;
        let incident = app
            .wait_for_incident(id, expected, |i| i["state"] == expected)
            .await;
        if expected == "needs_attention" {
            assert_eq!(incident["reason"], "approval_timed_out", "{incident:#}");
            assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 0);
            let (status, body) = act(&app, id, "approve", json!({})).await;
            assert_eq!(status, 200, "{body}");
            app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
                .await;
        } else {
            assert_eq!(
                incident["findings"]["approval_delete_key"]["by"],
                "deadline"
            );
        }
        assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 1);
    }
}

fn data_pipeline_sink() -> &'static str {
    "[[rotation.users]]\nuser = \"data-pipeline\"\nsink = \"kms\"\nsecret_name = \"acme/data-pipeline/accesskey\"\n"
}

fn second_key(scenario: &mut Value) -> &mut Value {
    let users = scenario["users"].as_array_mut().unwrap();
    let user = users
        .iter_mut()
        .find(|u| u["name"] == "data-pipeline")
        .unwrap();
    user["access_keys"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|k| k["id"] == "LTAI5tDataPipeSecond7Mx4")
        .unwrap()
}

#[tokio::test]
async fn a_disabled_unused_second_key_is_deleted_first_then_the_rotation_goes_on() {
    let (url, _emulator) = emulator("two-keys.json", |s| {
        let key = second_key(s);
        key["status"] = json!("Inactive");
        key["last_used"] = json!("-200d");
    })
    .await;
    let app = daemon_with(&url, data_pipeline_sink(), FAST).await;
    let id = report(&app, "LTAI5tDataPipeLeak3d9Kq2", 25).await;
    let waiting = app
        .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    let new_key = waiting["findings"]["rotation"]["new_access_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys: Vec<String> = user(&state(&url).await, "data-pipeline")["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(keys, ["LTAI5tDataPipeLeak3d9Kq2".to_owned(), new_key]);
}

#[tokio::test]
async fn a_key_that_appeared_after_the_leak_can_be_disabled_automatically() {
    let (url, _emulator) = emulator("two-keys.json", |s| {
        second_key(s)["create_date"] = json!("-1m");
    })
    .await;
    let config = format!(
        "{}\n[rotation]\ndisable_unknown_keys = true\n",
        data_pipeline_sink()
    );
    let app = daemon_with(&url, &config, FAST).await;
    let id = report(&app, "LTAI5tDataPipeLeak3d9Kq2", 25).await;
    let incident = app.wait_for_incident(id, "needs a person", settled).await;
    assert_eq!(incident["reason"], "second_key", "{incident:#}");
    assert_eq!(
        incident["findings"]["rotation"]["appeared_after_detection"],
        true
    );
    assert_eq!(incident["findings"]["rotation"]["other_key_disabled"], true);
    let cloud = state(&url).await;
    let second = user(&cloud, "data-pipeline")["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == "LTAI5tDataPipeSecond7Mx4")
        .cloned()
        .unwrap();
    assert_eq!(second["status"], "Inactive");
    assert_eq!(successful_calls(&url, "CreateAccessKey").await, 0);
}

#[tokio::test]
async fn set_rotation_can_leave_a_configured_key_to_a_person_before_the_new_key_exists() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // Billing waits for approval, which gives the operator a moment to decide.
    let config = format!("{}\n[approvals]\nsteps = [\"billing\"]\n", kms_sink());
    let app = daemon_with(&url, &config, FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "billing awaiting approval", |i| {
        i["state"] == "billing" && i["findings"]["approval_billing"]["requested_at"].is_string()
    })
    .await;
    let (status, body) = act(&app, id, "set-rotation", json!({"rotatable": false})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "ram_key_in_use");
    let (status, body) = act(&app, id, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    assert_eq!(successful_calls(&url, "CreateAccessKey").await, 0);
    let (status, _) = act(&app, id, "set-rotation", json!({"rotatable": false})).await;
    assert_eq!(status, 409, "already left to a person");
}
