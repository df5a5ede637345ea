//! What a person sees of the worker end to end: dry runs that say "would", approvals that
//! show, and the time to containment logged once.

use serde_json::{Value, json};

use crate::artefacts::act;
use crate::cloud_support::{LEAKED_KEY, calls, emulator};
use crate::helpers::{OPERATOR_TOKEN, TestDaemon, run_cli};
use crate::remediation::{MUTATING, daemon_with, report};

const UNUSED_KEY: &str = "LTAI5tLegacyBackup2x8QwP";

/// Whether a JSON log line is about incident `id`.
fn about(line: &Value, id: i64) -> bool {
    line["incident.id"] == id
}

fn log_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[tokio::test]
async fn a_dry_run_incident_says_would_and_the_cloud_sees_no_change() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, "", &[("AKGUARD__REMEDIATION__DRY_RUN", "true")]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "awaiting the operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    assert_eq!(incident["dry_run"], true, "{incident:#}");
    let explanation = incident["explanation"].as_str().unwrap();
    assert!(explanation.contains("Would be contained"), "{explanation}");
    assert!(
        !explanation.contains("Contained: the Deny policy is attached"),
        "{explanation}"
    );
    assert!(incident["contained_at"].is_null());
    for call in calls(&url).await {
        let action = call["action"].as_str().unwrap_or_default();
        assert!(
            !MUTATING.contains(&action),
            "{action} was called in a dry run"
        );
    }
    let lines = log_lines(&app.log());
    let about_it: Vec<&Value> = lines
        .iter()
        .filter(|l| about(l, id))
        .filter(|l| l["level"] == "INFO")
        .filter(|l| {
            l["target"]
                .as_str()
                .is_some_and(|t| t.starts_with("akguard::worker"))
        })
        .collect();
    assert!(!about_it.is_empty());
    for line in about_it {
        let message = line["message"]
            .as_str()
            .or_else(|| line["fields"]["message"].as_str())
            .unwrap_or_default();
        assert!(
            message.contains("would"),
            "a dry-run line without would: {line}"
        );
    }
    let listed = app.get_ok("/v1/incidents").await;
    let ours = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap();
    assert_eq!(ours["dry_run"], true, "the list shows it too");
}

#[tokio::test]
async fn a_step_waiting_for_approval_shows_in_the_incident_the_log_the_list_and_the_metrics() {
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    let config = "[approvals]\nsteps = [\"disable_key\"]\ndeadline = \"1h\"\n";
    let app = daemon_with(&url, config, &[]).await;
    let id = report(&app, UNUSED_KEY, 5).await;
    let other = report(&app, "STS.NUgYrLnoC37mZZCNnAbez2Vgr", 5).await;
    let waiting = app
        .wait_for_incident(id, "waiting for approval", |i| i["waiting_for"].is_object())
        .await;
    let wait = &waiting["waiting_for"];
    assert_eq!(wait["approval"], "disable_key", "{waiting:#}");
    let since: chrono::DateTime<chrono::Utc> = wait["since"].as_str().unwrap().parse().unwrap();
    let deadline: chrono::DateTime<chrono::Utc> =
        wait["deadline"].as_str().unwrap().parse().unwrap();
    assert_eq!((deadline - since).num_seconds(), 3600);
    let explanation = waiting["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("approval of the disable_key step"),
        "{explanation}"
    );
    app.wait_for_incident(other, "settled", |i| i["state"] == "needs_attention")
        .await;

    let listed = app.get_ok("/v1/incidents?waiting=approval").await;
    let ids: Vec<i64> = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [id]);
    assert_eq!(awaiting_approval(&app).await, 1);
    let for_operator = app.get_ok("/v1/incidents?waiting=operator").await;
    assert_eq!(for_operator["incidents"][0]["id"], other, "{for_operator}");
    assert_eq!(for_operator["incidents"].as_array().unwrap().len(), 1);
    let bad = app
        .get("/v1/incidents?waiting=someone", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(bad.status, 400);
    assert!(
        app.log()
            .contains("waiting for an operator's approval of the disable_key step"),
        "{}",
        app.log()
    );

    let (status, body) = act(&app, id, "approve", json!({})).await;
    assert_eq!(status, 200, "{body}");
    app.wait_for_incident(id, "past the approval", |i| i["state"] != "disable_key")
        .await;
    let listed = app.get_ok("/v1/incidents?waiting=approval").await;
    assert_eq!(listed["incidents"], json!([]));
    assert_eq!(awaiting_approval(&app).await, 0);
}

/// `akguard_incidents_awaiting_approval` as `/metrics` shows it.
async fn awaiting_approval(app: &TestDaemon) -> u64 {
    let text = app.get("/metrics", None).await.text;
    text.lines()
        .find_map(|l| l.strip_prefix("akguard_incidents_awaiting_approval "))
        .unwrap_or_else(|| panic!("no approval gauge in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn the_old_name_of_the_disable_step_is_refused_with_its_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("akguard.toml");
    std::fs::write(&config, "[approvals]\nsteps = [\"disable_in_use_key\"]\n").unwrap();
    let (status, stdout, stderr) = run_cli(&["check-config"], &config);
    assert!(!status.success(), "{stdout}");
    assert!(stderr.contains("disable_old_key"), "{stderr}");
    std::fs::write(&config, "[approvals]\nsteps = [\"disable_old_key\"]\n").unwrap();
    let (status, stdout, stderr) = run_cli(&["check-config"], &config);
    assert!(status.success(), "{stdout}{stderr}");
}

#[tokio::test]
async fn time_to_containment_is_logged_once_at_the_first_containment() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let fast = [
        ("AKGUARD__ROTATION__QUIET_PERIOD", "0s"),
        ("AKGUARD__ROTATION__POLL_INTERVAL", "0s"),
        ("AKGUARD__ROTATION__DISABLE_GRACE", "1h"),
    ];
    let app = daemon_with(&url, "", &fast).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let contained = app
        .wait_for_incident(id, "awaiting the operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    // The person moved the workload: the old key is then disabled, verified a second time.
    let (status, body) = act(&app, id, "confirm-cutover", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let disabled = app
        .wait_for_incident(id, "in its grace period", |i| i["state"] == "delete_key")
        .await;
    assert_eq!(
        disabled["time_to_containment_ms"],
        contained["time_to_containment_ms"]
    );
    let logged: Vec<i64> = log_lines(&app.log())
        .iter()
        .filter(|l| about(l, id))
        .filter_map(|l| {
            l["time_to_containment_ms"]
                .as_i64()
                .or_else(|| l["fields"]["time_to_containment_ms"].as_i64())
        })
        .collect();
    assert_eq!(logged.len(), 1, "{logged:?}\n{}", app.log());
    let api = contained["time_to_containment_ms"].as_i64().unwrap();
    assert!((logged[0] - api).abs() < 1000, "{logged:?} vs {api}");
}
