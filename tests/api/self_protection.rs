//! Self-protection and source scope, end to end: akguard never changes its own identity or
//! one listed in `protect.*`, and a source limited to some accounts speaks for no other.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cloud_support::{AKGUARD_KEY, LEAKED_KEY, calls, calls_of, emulator};
use crate::helpers::{OPERATOR_TOKEN, TestDaemon, hmac_signature, now};
use crate::remediation::{MUTATING, daemon_with, report};

const BACKDOOR_KEY: &str = "LTAI5tBkD00rSvcBackup3Zq";

fn protected(incident: &Value) -> bool {
    incident["state"] == "needs_attention" || incident["state"] == "resolved"
}

/// Every successful call that changes something in the account.
async fn mutating_calls(url: &str) -> Vec<Value> {
    calls(url)
        .await
        .into_iter()
        .filter(|c| c["status"] == 200 && MUTATING.contains(&c["action"].as_str().unwrap_or("")))
        .collect()
}

#[tokio::test]
async fn a_report_of_akguards_own_key_or_a_listed_key_changes_nothing() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let config = format!("[protect]\naccess_key_ids = [\"{LEAKED_KEY}\"]\n");
    let app = daemon_with(&url, &config, &[]).await;
    let own = report(&app, AKGUARD_KEY, 5).await;
    let listed = report(&app, LEAKED_KEY, 25).await;
    for (id, own_credentials) in [(own, true), (listed, false)] {
        let incident = app
            .wait_for_incident(id, "needs_attention", protected)
            .await;
        assert_eq!(incident["state"], "needs_attention", "{incident:#}");
        assert_eq!(incident["reason"], "protected_identity", "{incident:#}");
        assert_eq!(
            incident["findings"]["protected"]["own_credentials"],
            own_credentials
        );
        let explanation = incident["explanation"].as_str().unwrap();
        assert_eq!(
            explanation.contains("akguard's own credentials")
                || explanation.contains("AKGUARD'S OWN CREDENTIALS"),
            own_credentials,
            "{explanation}"
        );
    }
    assert_eq!(mutating_calls(&url).await, Vec::<Value>::new());
    assert!(!calls_of(&url, "GetCallerIdentity").await.is_empty());
    let log = app.log();
    assert!(
        log.lines().any(|l| l.contains("\"level\":\"ERROR\"")
            && l.contains("protected identity")
            && l.contains(AKGUARD_KEY)),
        "{log}"
    );
}

#[tokio::test]
async fn the_mfa_sweep_and_chained_incidents_leave_protected_identities_alone() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let config = format!("[protect]\nusers = [\"alice\"]\naccess_key_ids = [\"{BACKDOOR_KEY}\"]\n");
    let app = daemon_with(&url, &config, &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "awaiting the operator", |i| {
            i["state"] == "awaiting_operator" || i["state"] == "needs_attention"
        })
        .await;
    assert_eq!(incident["state"], "awaiting_operator", "{incident:#}");
    let mfa = &incident["findings"]["mfa"];
    // akguard's own user is protected too.
    assert_eq!(
        mfa["protected_skipped"],
        json!(["akguard", "alice"]),
        "{mfa:#}"
    );
    assert_eq!(mfa["mfa_now_required"], json!(["bob"]), "{mfa:#}");

    // The backdoor key the leaked key created is chained, and left to a person untouched.
    let chained = loop {
        let list = app
            .get_ok(&format!("/v1/incidents?access_key_id={BACKDOOR_KEY}"))
            .await;
        if let Some(id) = list["incidents"][0]["id"].as_i64() {
            break id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let chained = app
        .wait_for_incident(chained, "needs_attention", protected)
        .await;
    assert_eq!(chained["reason"], "protected_identity", "{chained:#}");
    for call in mutating_calls(&url).await {
        let p = &call["params"];
        assert!(
            p["UserName"] != "alice" && p["UserName"] != "svc-backup",
            "{call:#}"
        );
        assert_ne!(p["UserAccessKeyId"], BACKDOOR_KEY, "{call:#}");
    }
}

const SCOPED_SECRET: &str = "scoped-hmac-secret-0c4d8e2f";

async fn post_scoped(app: &TestDaemon, body: &Value) -> crate::helpers::Response {
    let body = body.to_string();
    let ts = now();
    let resp = app
        .client
        .post(app.url("/v1/notifications/scoped"))
        .header("content-type", "application/json")
        .header("x-akguard-timestamp", ts.to_string())
        .header(
            "x-akguard-signature",
            hmac_signature(SCOPED_SECRET, ts, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    crate::helpers::Response::read(resp).await
}

#[tokio::test]
async fn a_source_limited_to_one_account_refuses_others_and_stores_nothing() {
    let app = TestDaemon::spawn_with_env(
        "[intake.sources.scoped]\nformat = \"generic\"\naccounts = [\"1234567890123456\"]\n",
        &[("AKGUARD__INTAKE__SOURCES__SCOPED__SECRET", SCOPED_SECRET)],
    )
    .await;
    let other = json!({"access_key_id": "LTAI5tScopeOther0001", "account_id": "9999999999999999",
        "event_id": "s-1"});
    let none = json!({"access_key_id": "LTAI5tScopeNone00001", "event_id": "s-2"});
    for body in [&other, &none] {
        let refused = post_scoped(&app, body).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert!(
            !refused.text.contains("9999999999999999"),
            "{}",
            refused.text
        );
    }
    assert_eq!(app.incident_ids().await, Vec::<i64>::new());
    assert!(
        app.log().contains("notification refused"),
        "the refusal is logged"
    );
    assert!(
        !app.log().contains("9999999999999999"),
        "no raw input in the log"
    );

    let ours = json!({"access_key_id": "LTAI5tScopeOurs00001", "account_id": "1234567890123456",
        "event_id": "s-3"});
    let accepted = post_scoped(&app, &ours).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text);
    assert_eq!(app.incident_ids().await.len(), 1);
}

#[tokio::test]
async fn nothing_is_remediated_until_akguard_knows_its_own_identity() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        s["faults"] = json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0,
            "fail_next": [{"action": "GetCallerIdentity", "count": 2, "code": "NoPermission", "status": 403}]});
    })
    .await;
    let app = daemon_with(&url, "", &[]).await;
    // Taken in while the identity is still unknown.
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "contained", |i| i["state"] == "awaiting_operator")
        .await;
    assert!(incident["time_to_containment_ms"].as_i64().is_some());
    let log = app.log();
    assert!(log.contains("cannot learn akguard's own identity"), "{log}");
    // Every call before STS answered was another attempt to ask it.
    let calls = calls(&url).await;
    let known = calls
        .iter()
        .position(|c| c["action"] == "GetCallerIdentity" && c["status"] == 200)
        .expect("the identity was learned");
    assert!(known >= 2, "{calls:#?}");
    assert!(
        calls[..known]
            .iter()
            .all(|c| c["action"] == "GetCallerIdentity"),
        "{:#?}",
        &calls[..known]
    );
}

#[tokio::test]
async fn a_step_after_triage_refuses_to_change_an_identity_protected_since() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let mut app = daemon_with(&url, "[approvals]\nsteps = [\"revoke\"]\n", &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "waiting to revoke", |i| {
        i["state"] == "revoke" && i["findings"]["approval_revoke"].is_object()
    })
    .await;
    // The user is protected from the next start on; the incident was triaged before.
    assert!(app.stop().await.success());
    app.set_env("AKGUARD__PROTECT__USERS", Some("ci-deployer"));
    app.restart().await;
    let approved = app
        .client
        .post(app.url(&format!("/v1/incidents/{id}/actions/approve")))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let incident = app
        .wait_for_incident(id, "needs_attention", protected)
        .await;
    assert_eq!(incident["reason"], "protected_identity", "{incident:#}");
    assert!(
        incident["findings"]["protected"]["refused_change_to"].is_string(),
        "{incident:#}"
    );
    assert_eq!(mutating_calls(&url).await, Vec::<Value>::new());
}
