//! The remediation worker end to end: the real daemon against the emulator.

use serde_json::{Value, json};

use crate::cloud_support::{
    AKGUARD_KEY, AKGUARD_SECRET, LEAKED_KEY, calls, calls_of, emulator, state,
};
use crate::helpers::{OPERATOR_TOKEN, TestDaemon, run_cli};

const ROOT_KEY: &str = "LTAI5tRootAcmeProd0Key01";
const BACKDOOR_KEY: &str = "LTAI5tBkD00rSvcBackup3Zq";
pub(crate) const UNUSED_KEY: &str = "LTAI5tLegacyBackup2x8QwP";
pub(crate) const MUTATING: &[&str] = &[
    "CreatePolicy",
    "CreatePolicyVersion",
    "AttachPolicyToUser",
    "DetachPolicyFromUser",
    "UpdateLoginProfile",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateAccessKey",
    "SetAccessKeyPolicy",
];

const EXTRA: &str = r#"
[audit]
regions = ["cn-hangzhou", "us-west-1"]
known_cidrs = ["10.0.0.0/8"]

[alibaba.retry]
max_attempts = 6
base_ms = 20
cap_ms = 200
"#;

fn env(url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AKGUARD__REMEDIATION__WORKERS", "2".into()),
        ("AKGUARD__REMEDIATION__LEASE", "3s".into()),
        ("AKGUARD__AUDIT__SETTLE_DELAY", "1h".into()),
        // The scenario's legitimate workload last called from the office 20 days ago.
        ("AKGUARD__AUDIT__LOOKBACK", "30d".into()),
        ("AKGUARD__ALIBABA__ENDPOINT", url.into()),
        ("AKGUARD__ALIBABA__ACCESS_KEY_ID", AKGUARD_KEY.into()),
        ("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_SECRET.into()),
    ]
}

pub(crate) async fn daemon(url: &str, more: &[(&'static str, &str)]) -> TestDaemon {
    daemon_with(url, "", more).await
}

/// `config` is appended to the shared extra configuration (e.g. `[[rotation.users]]`).
pub(crate) async fn daemon_with(
    url: &str,
    config: &str,
    more: &[(&'static str, &str)],
) -> TestDaemon {
    let mut vars = env(url);
    vars.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestDaemon::spawn_with_env(&format!("{EXTRA}\n{config}"), &refs).await
}

/// `daemon_with`, on a copy of a database an earlier release made.
pub(crate) async fn daemon_on_copy(
    db: &std::path::Path,
    url: &str,
    config: &str,
    more: &[(&'static str, &str)],
) -> TestDaemon {
    let mut vars = env(url);
    vars.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestDaemon::spawn_on_copy_with(db, &format!("{EXTRA}\n{config}"), &refs).await
}

/// Reports a leak detected `minutes_ago` and returns the incident id.
pub(crate) async fn report(app: &TestDaemon, key: &str, minutes_ago: i64) -> i64 {
    let detected = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
    let body = json!({"access_key_id": key, "event_id": format!("test-{key}"), "detected_at": detected.to_rfc3339()});
    app.post_generic(&body.to_string()).await.incident_id()
}

/// Waiting for a person: needs_attention, or contained and awaiting the operator's choice.
fn needs_attention(incident: &Value) -> bool {
    ["needs_attention", "awaiting_operator"]
        .contains(&incident["state"].as_str().unwrap_or_default())
}

pub(crate) fn settled(incident: &Value) -> bool {
    needs_attention(incident) || incident["state"] == "resolved"
}

fn awaiting_operator(incident: &Value) -> bool {
    incident["state"] == "awaiting_operator"
}

pub(crate) async fn successful_calls(url: &str, action: &str) -> usize {
    calls_of(url, action)
        .await
        .iter()
        .filter(|c| c["status"] == 200)
        .count()
}

/// The most successful calls of `action` that named any one target (user, policy or key).
pub(crate) async fn most_per_target(url: &str, action: &str) -> usize {
    let mut counts = std::collections::HashMap::new();
    for call in calls_of(url, action)
        .await
        .iter()
        .filter(|c| c["status"] == 200)
    {
        let p = &call["params"];
        let target = format!(
            "{}|{}|{}",
            p["UserName"], p["PolicyName"], p["UserAccessKeyId"]
        );
        *counts.entry(target).or_insert(0) += 1;
    }
    counts.values().copied().max().unwrap_or(0)
}

pub(crate) fn user<'a>(state: &'a Value, name: &str) -> &'a Value {
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()
}

pub(crate) async fn audit_actions(app: &TestDaemon, id: i64) -> Vec<Value> {
    app.get_ok(&format!("/v1/incidents/{id}/audit")).await["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_leaked_key_in_use_is_contained_audited_and_handed_over_for_rotation() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let mut app = daemon(&url, &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "needs_attention", needs_attention)
        .await;

    assert_eq!(incident["state"], "awaiting_operator", "{incident:#}");
    assert!(
        incident["explanation"]
            .as_str()
            .unwrap()
            .contains("set-rotation")
    );
    assert_eq!(incident["path"], "ram_key_in_use");
    assert_eq!(incident["owner_type"], "ram_user");
    assert_eq!(incident["user_name"], "ci-deployer");
    let ttc = incident["time_to_containment_ms"]
        .as_i64()
        .expect("contained");
    assert!(ttc > 0 && ttc < 30_000, "{ttc}");

    let findings = &incident["findings"];
    assert_eq!(findings["triage"]["usage"], "in_use");
    assert_eq!(findings["triage"]["used_before_detection"], true);
    assert_eq!(findings["revoke"]["verified"], true);
    let required: Vec<&str> = findings["mfa"]["mfa_now_required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(required, ["alice", "bob"]);
    assert_eq!(findings["mfa"]["mfa_already_required"], json!(["dave"]));
    let audit = &findings["audit"];
    let ips = audit["source_ips"].as_array().unwrap();
    let ip = |addr: &str| {
        ips.iter()
            .find(|i| i["ip"] == addr)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(ip("45.134.26.19")["known"], false, "{audit:#}");
    assert_eq!(ip("10.0.8.14")["known"], true);
    assert!(audit.to_string().contains("RunInstances"));
    assert!(audit["identity_changes"].to_string().contains("CreateUser"));
    assert!(
        audit["refused_by_leak_protection"]
            .to_string()
            .contains("CreateUser")
    );
    assert!(!audit.to_string().contains("AccessKeySecret"));
    assert!(
        findings["billing"]["flags"].as_u64().unwrap() > 0,
        "{:#}",
        findings["billing"]
    );
    assert!(incident["settle_audit_at"].is_string());

    // The backdoor key the leaked key created is an incident of its own, linked to this one.
    let chained = app
        .get_ok(&format!("/v1/incidents?access_key_id={BACKDOOR_KEY}"))
        .await;
    let chained = &chained["incidents"][0];
    assert_eq!(chained["parent_incident_id"], id, "{chained:#}");

    // Each effect happened exactly once, and the cloud shows it.
    let cloud = state(&url).await;
    let deployer = user(&cloud, "ci-deployer");
    assert!(
        deployer["policies"]
            .to_string()
            .contains("akguard-deny-high-risk")
    );
    assert_eq!(
        user(&cloud, "alice")["login_profile"]["mfa_bind_required"],
        true
    );
    let profile_updates = calls_of(&url, "UpdateLoginProfile").await;
    assert!(
        !profile_updates
            .iter()
            .any(|c| c["params"]["UserName"] == "carol"),
        "carol has an MFA device and needs no change"
    );
    assert_eq!(successful_calls(&url, "CreatePolicy").await, 1);

    // The audit trail has the calls with their RequestIds and the transitions in order.
    let events = audit_actions(&app, id).await;
    let transitions: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "incident.transition")
        .map(|e| e["detail"]["to"].as_str().unwrap())
        .collect();
    assert_eq!(
        transitions,
        [
            "revoke",
            "enforce_mfa",
            "audit",
            "billing",
            "awaiting_operator"
        ]
    );
    let attach = events
        .iter()
        .find(|e| e["action"] == "cloud.call" && e["detail"]["api"] == "AttachPolicyToUser")
        .unwrap();
    assert!(
        attach["detail"]["request_id"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "cloud.intent" && e["detail"]["api"] == "AttachPolicyToUser")
    );

    assert!(app.stop().await.success());
    let (status, stdout, _) = run_cli(&["verify-audit"], &app.config_path());
    assert!(status.success(), "{stdout}");
}

#[tokio::test]
async fn an_unused_key_is_disabled_then_deleted_after_the_grace_period() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    let app = daemon(&url, &[("AKGUARD__ROTATION__DISABLE_GRACE", "2s")]).await;
    let id = report(&app, UNUSED_KEY, 5).await;
    let waiting = app
        .wait_for_incident(id, "waiting out the grace", |i| i["state"] == "delete_key")
        .await;
    assert_eq!(waiting["path"], "ram_key_unused");
    assert_eq!(waiting["findings"]["triage"]["usage"], "unused");
    assert_eq!(waiting["findings"]["disable_key"]["verified"], true);
    assert!(waiting["time_to_containment_ms"].as_i64().is_some());

    let incident = app
        .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    assert!(incident["closed_at"].is_string());
    let cloud = state(&url).await;
    assert_eq!(user(&cloud, "legacy-backup")["access_keys"], json!([]));
    assert_eq!(successful_calls(&url, "UpdateAccessKey").await, 1);
    assert_eq!(successful_calls(&url, "DeleteAccessKey").await, 1);
    assert_eq!(successful_calls(&url, "AttachPolicyToUser").await, 0);
    // From the call log rather than a look at the key while the grace runs, which a loaded
    // machine can miss: the key was disabled, and deleted only after the grace period.
    let answered = |call: &Value, field: &str| {
        call[field]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .unwrap()
    };
    let ok = |calls: Vec<Value>| calls.into_iter().find(|c| c["status"] == 200).unwrap();
    let disabled = ok(calls_of(&url, "UpdateAccessKey").await);
    assert_eq!(disabled["params"]["Status"], "Inactive");
    let deleted = ok(calls_of(&url, "DeleteAccessKey").await);
    let grace = answered(&deleted, "at") - answered(&disabled, "answered_at");
    assert!(
        grace >= chrono::Duration::seconds(2),
        "deleted {grace} after the disable, before the grace period"
    );
}

#[tokio::test]
async fn account_sts_and_unknown_keys_go_to_a_person_without_any_change() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon(&url, &[]).await;
    let root = report(&app, ROOT_KEY, 5).await;
    let sts = report(&app, "STS.NUgYrLnoC37mZZCNnAbez2Vgr", 5).await;
    let unknown = report(&app, "LTAI5tNOBODYOWNSTHIS0000", 5).await;
    for (id, reason) in [
        (root, "account_key"),
        (sts, "sts_key"),
        (unknown, "owner_unknown"),
    ] {
        let incident = app
            .wait_for_incident(id, "needs_attention", needs_attention)
            .await;
        assert_eq!(incident["reason"], reason, "{incident:#}");
        assert!(
            incident["explanation"]
                .as_str()
                .is_some_and(|e| !e.is_empty())
        );
    }
    let root = app.get_ok(&format!("/v1/incidents/{root}")).await;
    assert_eq!(root["owner_type"], "account");
    assert!(
        root["findings"]["billing"].is_object(),
        "account keys still get billing"
    );
    for action in MUTATING {
        assert_eq!(successful_calls(&url, action).await, 0, "{action}");
    }
}

#[tokio::test]
async fn no_permission_needs_a_person_and_an_operator_retry_resumes_the_step() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        s["faults"] = json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0,
            "fail_next": [{"action": "AttachPolicyToUser", "count": 1, "code": "NoPermission", "status": 403}]});
    })
    .await;
    let app = daemon(&url, &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "needs_attention", needs_attention)
        .await;
    assert_eq!(incident["reason"], "step_failed", "{incident:#}");
    assert!(
        incident["last_error"]
            .as_str()
            .unwrap()
            .contains("NoPermission")
    );
    assert!(incident["explanation"].as_str().unwrap().contains("revoke"));

    let act = |action: &'static str| {
        app.client
            .post(app.url(&format!("/v1/incidents/{id}/actions/{action}")))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
    };
    let retried = act("retry").await.unwrap();
    assert_eq!(retried.status(), 200);
    let incident = app
        .wait_for_incident(id, "awaiting the operator", awaiting_operator)
        .await;
    assert!(incident["time_to_containment_ms"].as_i64().is_some());
    let again = act("retry").await.unwrap();
    assert_eq!(again.status(), 409, "retry of a finished incident");
    let events = audit_actions(&app, id).await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "operator.retry" && e["actor"] == "operator:alice")
    );
}

#[tokio::test]
async fn dry_run_walks_the_path_without_changing_anything() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon(&url, &[("AKGUARD__REMEDIATION__DRY_RUN", "true")]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "needs_attention", needs_attention)
        .await;
    assert_eq!(incident["state"], "awaiting_operator", "{incident:#}");
    for action in MUTATING {
        assert_eq!(
            calls_of(&url, action).await.len(),
            0,
            "{action} was called in a dry run"
        );
    }
    let events = audit_actions(&app, id).await;
    let would: Vec<&str> = events
        .iter()
        .filter(|e| e["action"] == "cloud.dry_run")
        .map(|e| e["detail"]["api"].as_str().unwrap())
        .collect();
    assert!(would.contains(&"AttachPolicyToUser"), "{would:?}");
    // The MFA sweep's would-be calls are audited account-wide; the incident names its sweep.
    let sweep = events
        .iter()
        .find(|e| e["action"] == "mfa.sweep")
        .expect("the incident names its MFA sweep");
    assert_eq!(sweep["detail"]["dry_run"], true, "{sweep:#}");
    assert_eq!(incident["findings"]["mfa"]["dry_run"], true, "{incident:#}");
    assert!(
        incident["findings"]["mfa"]["mfa_now_required"]
            .as_array()
            .is_some_and(|users| !users.is_empty()),
        "{incident:#}"
    );
}

#[tokio::test]
async fn incidents_finish_under_throttling_and_server_errors() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        s["faults"] =
            json!({"throttle_rate": 0.3, "error_rate": 0.1, "latency_ms": 0, "fail_next": []});
    })
    .await;
    // With the default budgets: a read survives these rates in the transport (five attempts),
    // and a step in the worker, so nothing may end `step_failed`.
    let app = daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "4")]).await;
    let ids = [
        report(&app, LEAKED_KEY, 25).await,
        report(&app, ROOT_KEY, 5).await,
        report(&app, "STS.NUgYrLnoC37mZZCNnAbez2Vgr", 5).await,
    ];
    for id in ids {
        let incident = app
            .wait_for_incident(id, "needs_attention", needs_attention)
            .await;
        assert_ne!(
            incident["reason"],
            "step_failed",
            "{incident:#}\n{}",
            app.log()
        );
    }
    assert!(
        calls(&url)
            .await
            .iter()
            .any(|c| c["code"] == "Throttling.User")
    );
    for action in MUTATING {
        assert!(
            most_per_target(&url, action).await <= 1,
            "{action} repeated an effect"
        );
    }
}

#[tokio::test]
async fn two_daemons_on_one_database_never_run_a_step_twice() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        // Slow answers widen the window in which the two could collide.
        s["faults"] =
            json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 30, "fail_next": []});
    })
    .await;
    let first = daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "4")]).await;
    let second = first.spawn_another().await;
    let ids = [
        report(&first, LEAKED_KEY, 25).await,
        report(&second, ROOT_KEY, 5).await,
    ];
    for id in ids {
        first
            .wait_for_incident(id, "needs_attention", needs_attention)
            .await;
    }
    for action in MUTATING {
        assert!(
            most_per_target(&url, action).await <= 1,
            "{action} repeated an effect"
        );
    }
    // A step rescheduled after throttling (ActionTrail's quota is shared by both daemons)
    // records a transition to its own state: a retry, not a second run.
    let transitions: Vec<String> = audit_actions(&first, ids[0])
        .await
        .iter()
        .filter(|e| e["action"] == "incident.transition")
        .filter(|e| e["detail"]["from"] != e["detail"]["to"])
        .map(|e| e["detail"]["to"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        transitions,
        [
            "revoke",
            "enforce_mfa",
            "audit",
            "billing",
            "awaiting_operator"
        ]
    );
}

#[tokio::test]
async fn the_second_audit_pass_merges_into_the_first() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon(&url, &[("AKGUARD__AUDIT__SETTLE_DELAY", "1s")]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "settled", |i| {
            needs_attention(i) && i["settle_audit_at"].is_null()
        })
        .await;
    // Both passes saw the same events: the merge counts them once.
    let audit = &incident["findings"]["audit"];
    assert_eq!(audit["events_examined"].as_u64(), Some(11), "{audit:#}");
    let events = audit_actions(&app, id).await;
    let settled = events
        .iter()
        .find(|e| e["action"] == "audit.settle_pass")
        .expect("a settle pass");
    assert!(
        settled["detail"]["summary"]
            .as_str()
            .unwrap()
            .contains("calls")
    );
    let lookups = events
        .iter()
        .filter(|e| e["action"] == "cloud.read" && e["detail"]["api"] == "LookupEvents")
        .count();
    assert!(
        lookups >= 6,
        "two passes over three regions, {lookups} lookups"
    );
}

#[tokio::test]
async fn a_leak_webhook_wakes_the_workers_at_once() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    // Polling every minute: only the wake-up can start the work quickly.
    let app = daemon(&url, &[("AKGUARD__REMEDIATION__POLL_INTERVAL", "60s")]).await;
    let id = report(&app, UNUSED_KEY, 5).await;
    let started = std::time::Instant::now();
    app.wait_for_incident(id, "triaged", |i| i["state"] != "new")
        .await;
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[tokio::test]
async fn one_mfa_sweep_covers_every_incident_opened_before_it() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "4")]).await;
    let first = report(&app, LEAKED_KEY, 25).await;
    let second = report(&app, BACKDOOR_KEY, 5).await;
    let mut sweeps = std::collections::BTreeSet::new();
    for id in [first, second] {
        let incident = app
            .wait_for_incident(id, "needs_attention", needs_attention)
            .await;
        assert_eq!(incident["state"], "awaiting_operator", "{incident:#}");
        let started = &incident["findings"]["mfa"]["covered_by_sweep_started_at"];
        assert!(started.is_string(), "{incident:#}");
        sweeps.insert(started.to_string());
    }
    assert_eq!(
        sweeps.len(),
        1,
        "both incidents are covered by one sweep: {sweeps:?}"
    );
    assert!(most_per_target(&url, "UpdateLoginProfile").await <= 1);
    assert_eq!(calls_of(&url, "ListUsers").await.len(), 1);
}
