//! The attacker's artefacts end to end: console logons of created users switched off, keys
//! the leaked key created disabled at once and deleted, their checklist, and cancel.

use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, calls_of, emulator, state};
use crate::helpers::{OPERATOR_TOKEN, TestDaemon};
use crate::remediation::{daemon_with, report, user};

/// What a cancel does to the network fence the shared test configuration (`known_cidrs`)
/// puts on the leaked key: it had no policy before.
pub(crate) const FENCE_UNDO: &str = "set the network access policy of key LTAI5tQ9xLeakedCiDeploy7 to \
     {\"Version\":1,\"Status\":\"Inactive\",\"Statements\":[]}";

pub(crate) const BACKDOOR_USER: &str = "svc-backup";
const BACKDOOR_KEY: &str = "LTAI5tBkD00rSvcBackup3Zq";

/// The attacker gave the backdoor user a console password too.
pub(crate) fn with_backdoor_console(scenario: &mut Value) {
    let users = scenario["users"].as_array_mut().unwrap();
    let backdoor = users
        .iter_mut()
        .find(|u| u["name"] == BACKDOOR_USER)
        .unwrap();
    backdoor["login_profile"] = json!({"mfa_bind_required": false, "create_date": "-187m"});
}

/// The incident the audit opened for the backdoor key (bounded wait).
async fn chain_incident(app: &TestDaemon) -> i64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = app
            .get_ok(&format!("/v1/incidents?access_key_id={BACKDOOR_KEY}"))
            .await;
        if let Some(id) = found["incidents"][0]["id"].as_i64() {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no chain incident:\n{}",
            app.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub(crate) async fn act(app: &TestDaemon, id: i64, action: &str, body: Value) -> (u16, Value) {
    // A worker running a step holds the incident for a moment: 409 "try again".
    for _ in 0..100 {
        let response = app
            .client
            .post(app.url(&format!("/v1/incidents/{id}/actions/{action}")))
            .bearer_auth(OPERATOR_TOKEN)
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

fn backdoor_key_status(cloud: &Value) -> Option<String> {
    user(cloud, BACKDOOR_USER)["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == BACKDOOR_KEY)
        .map(|k| k["status"].as_str().unwrap_or("Active").to_owned())
}

#[tokio::test]
async fn the_console_logon_of_a_user_the_leaked_key_created_is_switched_off_and_verified() {
    let (url, _emulator) = emulator("leaked-in-use.json", with_backdoor_console).await;
    let app = daemon_with(&url, "", &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "awaiting the operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    let logons = &incident["findings"]["attacker_logins"]["users"];
    let backdoor = logons
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_name"] == BACKDOOR_USER)
        .unwrap_or_else(|| panic!("{incident:#}"));
    assert_eq!(backdoor["console_logon"], "disabled", "{logons:#}");
    assert_eq!(backdoor["verified"], true);

    let cloud = state(&url).await;
    assert_eq!(
        user(&cloud, BACKDOOR_USER)["login_profile"]["status"],
        "Inactive"
    );
    assert_eq!(user(&cloud, "alice")["login_profile"]["status"], "Active");
    let switched: Vec<Value> = calls_of(&url, "UpdateLoginProfile")
        .await
        .into_iter()
        .filter(|c| c["status"] == 200 && c["params"]["Status"] == "Inactive")
        .collect();
    assert_eq!(switched.len(), 1, "{switched:#?}");
    assert!(
        switched[0]["params"]["UserPrincipalName"]
            .as_str()
            .unwrap()
            .starts_with("svc-backup@")
    );
    // Read back after the change.
    let reads = calls_of(&url, "GetLoginProfile").await;
    assert!(
        reads
            .iter()
            .any(|c| c["seq"].as_u64() > switched[0]["seq"].as_u64()
                && c["params"]["UserPrincipalName"] == switched[0]["params"]["UserPrincipalName"]),
        "no read-back"
    );
}

#[tokio::test]
async fn a_chain_incidents_key_is_disabled_at_once_deleted_after_the_grace_and_its_artefacts_listed()
 {
    let (url, _emulator) = emulator("leaked-in-use.json", with_backdoor_console).await;
    let app = daemon_with(&url, "", &[("AKGUARD__ROTATION__DISABLE_GRACE", "3s")]).await;
    let parent = report(&app, LEAKED_KEY, 25).await;
    let chain = chain_incident(&app).await;
    let waiting = app
        .wait_for_incident(chain, "in its grace period", |i| i["state"] == "delete_key")
        .await;
    assert_eq!(waiting["path"], "attacker_key", "{waiting:#}");
    assert_eq!(waiting["parent_incident_id"], parent);
    assert_eq!(waiting["findings"]["disable_key"]["verified"], true);
    assert_eq!(
        backdoor_key_status(&state(&url).await).as_deref(),
        Some("Inactive")
    );
    // Disabled, not merely denied.
    assert!(
        !calls_of(&url, "AttachPolicyToUser")
            .await
            .iter()
            .any(|c| c["params"]["UserName"] == BACKDOOR_USER)
    );

    let done = app
        .wait_for_incident(chain, "left to a person", |i| {
            i["state"] == "needs_attention"
        })
        .await;
    assert_eq!(done["reason"], "attacker_artefacts", "{done:#}");
    assert_eq!(backdoor_key_status(&state(&url).await), None, "deleted");
    let explanation = done["explanation"].as_str().unwrap();
    for artefact in [
        "RAM user svc-backup",
        BACKDOOR_KEY,
        "policy AdministratorAccess attached to svc-backup",
        "ACS::ECS::Instance",
        "console logon of svc-backup: switched off",
    ] {
        assert!(explanation.contains(artefact), "{artefact}: {explanation}");
    }
    assert!(
        !explanation.contains("give akguard a sink"),
        "{explanation}"
    );
}

#[tokio::test]
async fn cancelling_a_chain_incident_needs_force_and_says_what_it_will_undo() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, "", &[("AKGUARD__ROTATION__DISABLE_GRACE", "1h")]).await;
    report(&app, LEAKED_KEY, 25).await;
    let chain = chain_incident(&app).await;
    app.wait_for_incident(chain, "in its grace period", |i| i["state"] == "delete_key")
        .await;

    let (status, body) = act(&app, chain, "cancel", json!({"reason": "ours after all"})).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("force"), "{body}");
    assert_eq!(
        backdoor_key_status(&state(&url).await).as_deref(),
        Some("Inactive")
    );

    let (status, body) = act(
        &app,
        chain,
        "cancel",
        json!({"reason": "ours after all", "force": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let will_undo = body["cancel"]["will_undo"].to_string();
    assert!(
        will_undo.contains(&format!("set svc-backup's key {BACKDOOR_KEY} to Active")),
        "{body:#}"
    );
    let cancelled = app
        .wait_for_incident(chain, "cancelled", |i| i["state"] == "cancelled")
        .await;
    assert_eq!(
        backdoor_key_status(&state(&url).await).as_deref(),
        Some("Active")
    );
    assert!(
        cancelled["explanation"].as_str().unwrap().contains("undid"),
        "{cancelled:#}"
    );
    let audit = crate::remediation::audit_actions(&app, chain).await;
    let note = &audit
        .iter()
        .find(|e| e["action"] == "operator.cancel")
        .unwrap()["detail"]["note"];
    assert_eq!(note["force"], true);
    assert!(note["plan"]["will_undo"].to_string().contains(BACKDOOR_KEY));
}

#[tokio::test]
async fn cancel_undoes_only_what_akguard_applied_and_says_what_it_could_not() {
    // Someone attached the Deny policy by hand before akguard came: akguard never attached it,
    // so cancelling must leave it.
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        s["policies"].as_array_mut().unwrap().push(json!({
            "name": "akguard-deny-high-risk",
            "default_version": "v1",
            "versions": [{"id": "v1", "document": {"Version": "1", "Statement": [
                {"Effect": "Deny", "Action": ["ram:CreateUser"], "Resource": "*"}]}}]
        }));
        let users = s["users"].as_array_mut().unwrap();
        let deployer = users
            .iter_mut()
            .find(|u| u["name"] == "ci-deployer")
            .unwrap();
        deployer["policies"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "akguard-deny-high-risk", "type": "Custom"}));
    })
    .await;
    let app = daemon_with(&url, "", &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    // akguard attaches without reading first; RAM answers EntityAlreadyExists.User.Policy.
    let attached_by_akguard = calls_of(&url, "AttachPolicyToUser")
        .await
        .iter()
        .any(|c| c["params"]["UserName"] == "ci-deployer" && c["status"] == 200);
    assert!(!attached_by_akguard, "it was attached already");

    let (status, body) = act(&app, id, "cancel", json!({"reason": "a test key"})).await;
    assert_eq!(status, 200, "{body}");
    // Only the network fence (known_cidrs) was akguard's: the Deny policy was there before.
    assert_eq!(body["cancel"]["will_undo"], json!([FENCE_UNDO]), "{body:#}");
    let cannot = body["cancel"]["cannot_undo"].to_string();
    assert!(cannot.contains("CreatePolicyVersion"), "{cannot}");
    let cancelled = app
        .wait_for_incident(id, "cancelled", |i| i["state"] == "cancelled")
        .await;
    let detached = calls_of(&url, "DetachPolicyFromUser")
        .await
        .iter()
        .any(|c| c["params"]["UserName"] == "ci-deployer");
    assert!(
        !detached,
        "cancel removed a policy akguard had not attached"
    );
    assert!(
        user(&state(&url).await, "ci-deployer")["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    let finding = &cancelled["findings"]["cancel"];
    assert_eq!(finding["undone"], json!([FENCE_UNDO]), "{finding:#}");
    assert!(
        finding["not_undone"]
            .to_string()
            .contains("CreatePolicyVersion")
    );
    assert!(
        cancelled["explanation"]
            .as_str()
            .unwrap()
            .contains("could not undo"),
        "{cancelled:#}"
    );
}

#[tokio::test]
async fn cancelling_the_leak_switches_back_on_the_logon_akguard_switched_off() {
    let (url, _emulator) = emulator("leaked-in-use.json", with_backdoor_console).await;
    let app = daemon_with(&url, "", &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    assert_eq!(
        user(&state(&url).await, BACKDOOR_USER)["login_profile"]["status"],
        "Inactive"
    );
    let (status, body) = act(&app, id, "cancel", json!({"reason": "a red-team drill"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["cancel"]["will_undo"],
        json!([
            "detach akguard-deny-high-risk from ci-deployer",
            FENCE_UNDO,
            "set svc-backup's console logon to Active"
        ]),
        "{body:#}"
    );
    let cancelled = app
        .wait_for_incident(id, "cancelled", |i| i["state"] == "cancelled")
        .await;
    assert_eq!(
        user(&state(&url).await, BACKDOOR_USER)["login_profile"]["status"],
        "Active"
    );
    let undone = cancelled["findings"]["cancel"]["undone"].to_string();
    assert!(undone.contains("console logon to Active"), "{undone}");
}
