//! What the daemon writes to stderr: no colour codes on a pipe, no line an attacker can
//! forge, operator actions on record, and JSON fields typed as documented.

use reqwest::StatusCode;

use crate::helpers::{OPERATOR_TOKEN, TestDaemon};

const TEXT_LOGS: &[(&str, &str)] = &[("AKGUARD__LOG__FORMAT", "text")];

#[tokio::test]
async fn text_logs_on_a_pipe_carry_no_colour_codes() {
    let mut app = TestDaemon::spawn_with_env("", TEXT_LOGS).await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    app.stop().await;
    let log = app.log();
    assert!(log.contains("listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "colour codes on a pipe:\n{log:?}");
}

#[tokio::test]
async fn a_hostile_owner_type_cannot_forge_a_log_line_or_reach_the_terminal() {
    let mut app = TestDaemon::spawn_with_env("", TEXT_LOGS).await;
    let forged = "2026-12-05T00:00:00.000000Z  INFO akguard::worker: transition \
                  incident.id=1 to=resolved";
    let body = serde_json::json!({
        "access_key_id": "LTAI5tFORGEDLOGLINE01",
        "event_id": "evt-forge-1",
        "owner_type": format!("x\n{forged}\u{1b}[31m"),
    })
    .to_string();
    let resp = app.post_generic(&body).await;
    assert_eq!(resp.status, StatusCode::BAD_REQUEST, "{}", resp.text);
    assert!(
        !resp.text.contains('\u{1b}'),
        "raw ESC in the answer: {}",
        resp.text
    );
    app.stop().await;
    let log = app.log();
    assert!(
        log.contains("notification refused"),
        "the refusal was not logged:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|line| line.starts_with("2026-12-05T00:00:00")),
        "a forged line reached the log:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "a raw ESC reached the log:\n{log:?}"
    );
}

#[tokio::test]
async fn operator_actions_are_logged_with_the_actor_and_never_the_token() {
    let mut app = TestDaemon::spawn().await;
    let report = app
        .client
        .post(app.url("/v1/incidents"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"access_key_id": "LTAI5tOPERATORLOG01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), StatusCode::ACCEPTED);
    let id = report.json::<serde_json::Value>().await.unwrap()["incident_id"]
        .as_i64()
        .unwrap();
    let cancel = app
        .client
        .post(app.url(&format!("/v1/incidents/{id}/actions/cancel")))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"reason": "a drill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        cancel.status(),
        StatusCode::OK,
        "{}",
        cancel.text().await.unwrap()
    );
    app.stop().await;
    let log = app.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let reported = lines
        .iter()
        .find(|l| l["message"] == "leak reported by an operator")
        .unwrap_or_else(|| panic!("the report was not logged:\n{log}"));
    assert_eq!(reported["actor"], "operator:alice");
    assert_eq!(reported["incident.id"], id);
    let acted = lines
        .iter()
        .find(|l| l["message"] == "operator action applied")
        .unwrap_or_else(|| panic!("the action was not logged:\n{log}"));
    assert_eq!(acted["action"], "cancel");
    assert_eq!(acted["actor"], "operator:alice");
    assert_eq!(acted["incident.id"], id, "incident.id is a number: {acted}");
    assert!(!log.contains(OPERATOR_TOKEN), "the token reached the log");
}

#[tokio::test]
async fn json_logs_give_the_incident_id_as_a_number() {
    let mut app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&crate::helpers::generic(
            "LTAI5tNUMERICID00001",
            "evt-num-1",
        ))
        .await
        .incident_id();
    app.stop().await;
    let log = app.log();
    let opened = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["message"] == "incident opened")
        .unwrap_or_else(|| panic!("no incident opened line:\n{log}"));
    assert_eq!(opened["incident.id"], id, "{opened}");
    assert!(log.contains(&format!("\"incident.id\":{id}")), "{log}");
}
