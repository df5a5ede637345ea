//! Notifications end to end: the real daemon, the emulator, and a local receiver per
//! platform that checks its documented format and signature.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cloud_support::{AKGUARD_SECRET, LEAKED_KEY, emulator};
use crate::helpers::{OPERATOR_TOKEN, SECRETS, TestDaemon, generic, run_cli_with_env};
use crate::receiver::{
    Receiver, verify_dingtalk, verify_lark, verify_pagerduty, verify_slack, verify_webhook,
    verify_wecom,
};
use crate::remediation::{daemon_with, report};

const DING_SECRET: &str = "SEC-ding-signing-secret-41f7";
const DING_TOKEN: &str = "dt-robot-token-9c2e";
const LARK_SECRET: &str = "lark-signing-secret-a1b2c3";
const WECOM_KEY: &str = "wecom-robot-key-5d6e7f";
const PD_ROUTING_KEY: &str = "pd-routing-key-0a9b8c7d";
const HOOK_SECRET: &str = "hook-hmac-secret-3c4d5e6f";
/// The backdoor key the leaked key created in the `leaked-in-use` scenario.
const BACKDOOR_KEY: &str = "LTAI5tBkD00rSvcBackup3Zq";

fn channel(name: &str, kind: &str, url: &str, more: &str) -> String {
    format!(
        "\n[[notify.channels]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n{more}\n"
    )
}

/// The notifications of incident `id`, once `done` holds for them (bounded).
async fn wait_for_notifications(
    app: &TestDaemon,
    id: i64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
        let rows = incident["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if done(&rows) {
            return rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the notifications of incident {id} never became {what}: {rows:#?}\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn row<'a>(rows: &'a [Value], channel: &str, event: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["channel"] == channel && r["event"] == event)
}

async fn cancel(app: &TestDaemon, id: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let resp = app
            .client
            .post(app.url(&format!("/v1/incidents/{id}/actions/cancel")))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&json!({"reason": "notification test"}))
            .send()
            .await
            .unwrap();
        if resp.status().is_success() {
            return;
        }
        // A worker may hold the incident for a moment (the audit pass).
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            resp.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Messages a receiver got about `id`'s key, by the words they carry.
fn texts(receiver: &Receiver) -> Vec<String> {
    receiver.hits().iter().map(|h| h.body.clone()).collect()
}

#[tokio::test]
async fn every_channel_gets_its_platforms_message_signed_and_in_its_language() {
    let ding = Receiver::start(
        &format!("/robot/send?access_token={DING_TOKEN}"),
        200,
        r#"{"errcode":0,"errmsg":"ok"}"#,
    )
    .await;
    let lark = Receiver::start(
        "/open-apis/bot/v2/hook/abc",
        200,
        r#"{"code":0,"msg":"success"}"#,
    )
    .await;
    let lark_ja = Receiver::start(
        "/open-apis/bot/v2/hook/ja",
        200,
        r#"{"code":0,"msg":"success"}"#,
    )
    .await;
    let slack = Receiver::start("/services/T000/B000/XXX", 200, "ok").await;
    let wecom = Receiver::start(
        &format!("/cgi-bin/webhook/send?key={WECOM_KEY}"),
        200,
        r#"{"errcode":0,"errmsg":"ok"}"#,
    )
    .await;
    let pager = Receiver::start(
        "/v2/enqueue",
        202,
        r#"{"status":"success","message":"Event processed"}"#,
    )
    .await;
    let hook = Receiver::start("/akguard", 204, "").await;
    let config = [
        channel("ding", "dingtalk", &ding.url, ""),
        channel("lark", "lark", &lark.url, ""),
        channel("lark_ja", "lark", &lark_ja.url, "language = \"ja\""),
        channel("slack", "slack", &slack.url, ""),
        channel("wecom", "wecom", &wecom.url, "language = \"zh\""),
        channel("pager", "pagerduty", &pager.url, ""),
        channel("hook", "webhook", &hook.url, ""),
    ]
    .concat();
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(
        &url,
        &config,
        &[
            ("AKGUARD__NOTIFY__CHANNELS__DING__SECRET", DING_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__LARK__SECRET", LARK_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__LARK_JA__SECRET", LARK_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__PAGER__SECRET", PD_ROUTING_KEY),
            ("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET),
        ],
    )
    .await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting_operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    cancel(&app, id).await;
    let chat = ["ding", "lark", "lark_ja", "slack", "wecom", "hook"];
    let rows = wait_for_notifications(&app, id, "sent", |rows| {
        let all_sent = |channels: &[&str], event: &str| {
            channels
                .iter()
                .all(|c| row(rows, c, event).is_some_and(|r| r["state"] == "sent"))
        };
        ["opened", "contained", "needs_person", "cancelled"]
            .iter()
            .all(|e| all_sent(&chat, e))
            && all_sent(&["pager"], "needs_person")
            && all_sent(&["pager"], "cancelled")
    })
    .await;
    assert!(
        row(&rows, "pager", "opened").is_none(),
        "PagerDuty pages only: {rows:#?}"
    );
    let needs = row(&rows, "hook", "needs_person").unwrap();
    assert_eq!(
        needs["dedup_key"],
        format!("incident-{id}-needs_person-awaiting_operator")
    );
    assert_eq!(needs["attempts"], 1);
    assert!(needs["last_error"].is_null());

    let masked = format!(
        "{}{}",
        "*".repeat(LEAKED_KEY.len() - 6),
        &LEAKED_KEY[LEAKED_KEY.len() - 6..]
    );
    let action = format!("/v1/incidents/{id}/actions/confirm-cutover");

    for hit in ding.hits() {
        verify_dingtalk(&hit, DING_SECRET, DING_TOKEN);
    }
    let ding_texts: Vec<String> = ding
        .hits()
        .iter()
        .map(|h| h.json()["markdown"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        ding_texts
            .iter()
            .any(|t| t.contains("needs a person") && t.contains(&action)),
        "{ding_texts:#?}"
    );
    assert!(ding_texts.iter().any(|t| t.contains("Time to containment")));
    assert!(
        ding_texts.iter().any(|t| t.contains("generic")),
        "the source is named"
    );

    for hit in lark.hits() {
        verify_lark(&hit, LARK_SECRET);
    }
    for hit in lark_ja.hits() {
        verify_lark(&hit, LARK_SECRET);
    }
    let ja = texts(&lark_ja).concat();
    assert!(
        ja.contains("担当者の対応が必要です") && ja.contains("封じ込めまでの時間"),
        "{ja}"
    );
    assert!(!ja.contains("needs a person"));
    let en = texts(&lark).concat();
    assert!(en.contains("needs a person") && !en.contains("担当者"));

    for hit in slack.hits() {
        verify_slack(&hit);
    }
    assert!(texts(&slack).concat().contains("confirm-cutover"));

    let zh: String = wecom
        .hits()
        .iter()
        .map(|hit| verify_wecom(hit, WECOM_KEY)["markdown"]["content"].to_string())
        .collect();
    assert!(
        zh.contains("需要人工处理") && zh.contains("遏制耗时"),
        "{zh}"
    );

    let pages: Vec<Value> = pager
        .hits()
        .iter()
        .map(|h| verify_pagerduty(h, PD_ROUTING_KEY))
        .filter(|b| b["dedup_key"] == format!("akguard-incident-{id}"))
        .collect();
    let actions: Vec<&str> = pages
        .iter()
        .map(|p| p["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"], "{pages:#?}");
    assert_eq!(pages[0]["payload"]["severity"], "critical");

    let events: Vec<Value> = hook
        .hits()
        .iter()
        .map(|h| verify_webhook(h, HOOK_SECRET))
        .collect();
    let chained = events
        .iter()
        .find(|e| e["event"] == "chain_opened")
        .expect("the attacker's key opened a chain incident");
    assert_eq!(chained["facts"]["parent_incident"], id.to_string());
    let contained = events
        .iter()
        .find(|e| e["event"] == "contained" && e["incident_id"] == id)
        .unwrap();
    assert!(contained["facts"]["time_to_containment"].is_string());
    let asked = events
        .iter()
        .find(|e| e["event"] == "needs_person" && e["incident_id"] == id)
        .unwrap();
    assert!(
        asked["command"].as_str().unwrap().contains(&action),
        "{asked:#}"
    );

    // No secret anywhere, and the leaked keys only masked.
    let receivers = [&ding, &lark, &lark_ja, &slack, &wecom, &pager, &hook];
    let mut all_secrets: Vec<&str> = SECRETS.to_vec();
    all_secrets.extend([AKGUARD_SECRET, DING_SECRET, LARK_SECRET, HOOK_SECRET]);
    for receiver in receivers {
        for hit in receiver.hits() {
            let sent = hit.everything();
            for secret in &all_secrets {
                assert!(
                    !sent.contains(secret),
                    "a secret was sent to {}: {sent}",
                    receiver.url
                );
            }
            assert!(
                !sent.contains(LEAKED_KEY) && !sent.contains(BACKDOOR_KEY),
                "{sent}"
            );
        }
    }
    assert!(texts(&hook).concat().contains(&masked));
    let log = app.log();
    for secret in all_secrets
        .iter()
        .chain(&[PD_ROUTING_KEY, WECOM_KEY, DING_TOKEN])
    {
        assert!(!log.contains(secret), "the log holds {secret}");
    }
    for receiver in [&ding, &lark, &slack, &wecom, &hook] {
        assert!(!texts(receiver).concat().contains(PD_ROUTING_KEY));
    }
}

#[tokio::test]
async fn failing_channels_are_retried_then_failed_with_the_platforms_error_and_never_block_remediation()
 {
    let flaky = Receiver::start("/hook", 500, "upstream on fire").await;
    let refusing = Receiver::start("/services/T/B/X", 400, "invalid_payload").await;
    let ding_bad = Receiver::start(
        "/robot/send?access_token=t",
        200,
        r#"{"errcode":310000,"errmsg":"sign not match"}"#,
    )
    .await;
    let config = [
        channel("flaky", "webhook", &flaky.url, "events = [\"opened\"]"),
        channel("refusing", "slack", &refusing.url, "events = [\"opened\"]"),
        channel(
            "ding_bad",
            "dingtalk",
            &ding_bad.url,
            "events = [\"opened\"]",
        ),
    ]
    .concat();
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(
        &url,
        &config,
        &[
            ("AKGUARD__NOTIFY__CHANNELS__FLAKY__SECRET", HOOK_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__DING_BAD__SECRET", DING_SECRET),
            ("AKGUARD__NOTIFY__RETRY_BASE_MS", "50"),
            ("AKGUARD__NOTIFY__RETRY_CAP_MS", "200"),
            ("AKGUARD__NOTIFY__MAX_ATTEMPTS", "4"),
            ("AKGUARD__NOTIFY__REFUSED_ATTEMPTS", "2"),
        ],
    )
    .await;
    let id = report(&app, LEAKED_KEY, 25).await;
    // Remediation goes on while every channel fails.
    app.wait_for_incident(id, "awaiting_operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    let rows = wait_for_notifications(&app, id, "failed", |rows| {
        ["flaky", "refusing", "ding_bad"]
            .iter()
            .all(|c| row(rows, c, "opened").is_some_and(|r| r["state"] == "failed"))
    })
    .await;
    let flaky_row = row(&rows, "flaky", "opened").unwrap();
    assert_eq!(flaky_row["attempts"], 4, "{flaky_row:#}");
    assert_eq!(flaky_row["last_error"], "HTTP 500: upstream on fire");
    let refused = row(&rows, "refusing", "opened").unwrap();
    assert_eq!(refused["attempts"], 2, "{refused:#}");
    assert_eq!(refused["last_error"], "HTTP 400: invalid_payload");
    let ding_row = row(&rows, "ding_bad", "opened").unwrap();
    assert_eq!(ding_row["attempts"], 2);
    assert_eq!(ding_row["last_error"], "errcode 310000: sign not match");
    // The leak's own messages: the audit step opens a chain incident for the attacker's key,
    // whose `opened` notices come to the same channels, some time later.
    let of_leak = |receiver: &Receiver| {
        receiver
            .hits()
            .iter()
            .filter(|h| h.body.contains(&LEAKED_KEY[LEAKED_KEY.len() - 6..]))
            .count()
    };
    assert_eq!(of_leak(&flaky), 4);
    assert_eq!(of_leak(&refusing), 2);
    assert_eq!(of_leak(&ding_bad), 2);
}

#[tokio::test]
async fn a_restart_between_the_transition_and_the_send_sends_one_message_per_dedup_key() {
    let hook = Receiver::start("/hook", 503, "maintenance").await;
    let mut app = TestDaemon::spawn_with_env(
        &channel("hook", "webhook", &hook.url, ""),
        &[
            ("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET),
            ("AKGUARD__NOTIFY__RETRY_BASE_MS", "50"),
            ("AKGUARD__NOTIFY__RETRY_CAP_MS", "1000"),
            ("AKGUARD__NOTIFY__MAX_ATTEMPTS", "100"),
        ],
    )
    .await;
    let bodies = [
        generic("LTAI5tRestartKeyOne001", "restart-1"),
        generic("LTAI5tRestartKeyTwo002", "restart-2"),
    ];
    let mut ids = Vec::new();
    for body in &bodies {
        ids.push(app.post_generic(body).await.incident_id());
    }
    for id in &ids {
        wait_for_notifications(&app, *id, "tried", |rows| {
            rows.len() == 1 && rows[0]["last_error"] == "HTTP 503: maintenance"
        })
        .await;
    }
    assert!(app.stop().await.success());

    hook.answer(200, "");
    app.restart().await;
    for body in &bodies {
        let replay = app.post_generic(body).await;
        assert_eq!(
            replay.incident_id(),
            ids[bodies.iter().position(|b| b == body).unwrap()]
        );
    }
    for id in &ids {
        wait_for_notifications(&app, *id, "sent", |rows| {
            rows.len() == 1 && rows[0]["state"] == "sent"
        })
        .await;
    }
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for hit in hook.hits().iter().filter(|h| h.answered == 200) {
        let body = verify_webhook(hit, HOOK_SECRET);
        *accepted
            .entry(body["dedup_key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: HashMap<String, usize> = ids
        .iter()
        .map(|id| (format!("incident-{id}-opened"), 1))
        .collect();
    assert_eq!(accepted, expected);
}

#[tokio::test]
async fn notify_test_sends_one_signed_message_and_names_an_unknown_channel() {
    let hook = Receiver::start("/hook", 200, "").await;
    let pager = Receiver::start("/v2/enqueue", 202, r#"{"status":"success"}"#).await;
    let app = TestDaemon::spawn_with_env(
        &[
            channel("hook", "webhook", &hook.url, "language = \"ja\""),
            channel("pager", "pagerduty", &pager.url, ""),
        ]
        .concat(),
        &[
            ("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__PAGER__SECRET", PD_ROUTING_KEY),
        ],
    )
    .await;
    let config = app.config_path();
    let run = |channel: &'static str| {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            run_cli_with_env(
                &["notify", "test", "--channel", channel],
                &config,
                &[
                    ("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET),
                    ("AKGUARD__NOTIFY__CHANNELS__PAGER__SECRET", PD_ROUTING_KEY),
                ],
            )
        })
    };
    let (status, stdout, stderr) = run("hook").await.unwrap();
    assert!(status.success(), "{stdout}{stderr}");
    let hits = hook.hits();
    assert_eq!(hits.len(), 1);
    let body = verify_webhook(&hits[0], HOOK_SECRET);
    assert_eq!(body["event"], "test");
    assert!(body["title"].as_str().unwrap().contains("テスト"));

    // A test page is resolved at once, under the same dedup key.
    let (status, stdout, stderr) = run("pager").await.unwrap();
    assert!(status.success(), "{stdout}{stderr}");
    let pages: Vec<Value> = pager
        .hits()
        .iter()
        .map(|h| verify_pagerduty(h, PD_ROUTING_KEY))
        .collect();
    let actions: Vec<&str> = pages
        .iter()
        .map(|p| p["event_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["trigger", "resolve"]);
    assert_eq!(pages[0]["dedup_key"], pages[1]["dedup_key"]);

    let (status, _, stderr) = run("nosuch").await.unwrap();
    assert!(!status.success());
    assert!(
        stderr.contains("no notification channel is named `nosuch`"),
        "{stderr}"
    );
    hook.answer(401, "bad signature");
    let (status, _, stderr) = run("hook").await.unwrap();
    assert!(!status.success());
    assert!(stderr.contains("HTTP 401: bad signature"), "{stderr}");
}

#[tokio::test]
async fn check_config_names_the_channel_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("akguard.toml");
    std::fs::write(
        &config,
        [
            channel("ding", "dingtalk", "http://oapi.example.com/robot/send", ""),
            channel(
                "pager",
                "pagerduty",
                "https://events.example.com/v2/enqueue",
                "events = [\"opened\"]",
            ),
            channel(
                "hook",
                "webhook",
                "https://hooks.example.com/a",
                "secret = \"in-the-file-0000\"",
            ),
            channel("Bad-Name", "slack", "https://hooks.example.com/b", ""),
        ]
        .concat(),
    )
    .unwrap();
    let (status, _, stderr) = run_cli_with_env(&["check-config"], &config, &[]);
    assert!(!status.success());
    for expected in [
        "notify.channels[0].url (channel `ding`)",
        "notify.channels[0].secret (channel `ding`)",
        "AKGUARD__NOTIFY__CHANNELS__DING__SECRET",
        "notify.channels[1].events (channel `pager`)",
        "notify.channels[2].secret",
        "secrets are never read from the configuration file",
        "notify.channels[3].name (channel `Bad-Name`)",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(!stderr.contains("in-the-file-0000"));
}

#[tokio::test]
async fn an_approval_a_step_failing_repeatedly_and_the_resolution_are_each_told_once() {
    let hook = Receiver::start("/hook", 200, "").await;
    let (url, _emulator) = emulator("leaked-unused.json", |_| {}).await;
    crate::cloud_support::set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "retry_after_ms": 0, "fail_next": [
            {"action": "UpdateAccessKey", "count": 3, "code": "ServiceUnavailable", "status": 503}
        ]}),
    )
    .await;
    let config = format!(
        "[approvals]\nsteps = [\"disable_key\"]\ndeadline = \"1h\"\n{}",
        channel("hook", "webhook", &hook.url, "")
    );
    let app = daemon_with(
        &url,
        &config,
        &[
            ("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET),
            ("AKGUARD__ROTATION__DISABLE_GRACE", "1s"),
        ],
    )
    .await;
    let id = report(&app, crate::remediation::UNUSED_KEY, 5).await;
    let asked = format!("incident-{id}-needs_person-approval_disable_key");
    wait_for_notifications(&app, id, "asking for approval", |rows| {
        rows.iter()
            .any(|r| r["dedup_key"] == asked && r["state"] == "sent")
    })
    .await;
    let approve = app
        .client
        .post(app.url(&format!("/v1/incidents/{id}/actions/approve")))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(
        approve.status().is_success(),
        "{}",
        approve.text().await.unwrap()
    );
    app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    let rows = wait_for_notifications(&app, id, "all sent", |rows| {
        ["step_failing", "resolved"]
            .iter()
            .all(|e| row(rows, "hook", e).is_some_and(|r| r["state"] == "sent"))
    })
    .await;
    assert_eq!(
        row(&rows, "hook", "step_failing").unwrap()["dedup_key"],
        format!("incident-{id}-step_failing-disable_key")
    );

    let events: Vec<Value> = hook
        .hits()
        .iter()
        .map(|h| verify_webhook(h, HOOK_SECRET))
        .filter(|e| e["incident_id"] == id)
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    for kind in [
        "opened",
        "needs_person",
        "step_failing",
        "contained",
        "resolved",
    ] {
        assert_eq!(
            kinds.iter().filter(|k| **k == kind).count(),
            1,
            "{kind} in {kinds:?}"
        );
    }
    let approval = events
        .iter()
        .find(|e| e["event"] == "needs_person")
        .unwrap();
    assert!(
        approval["command"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/incidents/{id}/actions/approve\"")),
        "{approval:#}"
    );
    assert_eq!(approval["facts"]["step"], "disable_key");
    let failing = events
        .iter()
        .find(|e| e["event"] == "step_failing")
        .unwrap();
    assert_eq!(failing["facts"]["step"], "disable_key");
    assert!(
        failing["facts"]["last_error"]
            .as_str()
            .unwrap()
            .contains("ServiceUnavailable"),
        "{failing:#}"
    );
}

#[tokio::test]
async fn two_processes_on_one_database_send_each_notification_once() {
    let hook = Receiver::start("/hook", 200, "").await;
    let app = TestDaemon::spawn_with_env(
        &channel("hook", "webhook", &hook.url, ""),
        &[("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET)],
    )
    .await;
    let other = app.spawn_another().await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let target = if n % 2 == 0 { &app } else { &other };
        let body = generic(&format!("LTAI5tReplicaKey{n:06}"), &format!("replica-{n}"));
        ids.push(target.post_generic(&body).await.incident_id());
    }
    for id in &ids {
        wait_for_notifications(&app, *id, "sent", |rows| {
            rows.len() == 1 && rows[0]["state"] == "sent"
        })
        .await;
    }
    let mut sent: HashMap<String, usize> = HashMap::new();
    for hit in hook.hits() {
        let body = verify_webhook(&hit, HOOK_SECRET);
        *sent
            .entry(body["dedup_key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(sent.len(), ids.len());
    assert!(sent.values().all(|n| *n == 1), "{sent:?}");
}

#[tokio::test]
async fn a_shutdown_during_a_send_leaves_it_to_the_next_start_without_waiting_for_its_lease() {
    // The platform sees the requests but never answers: the sends are in flight at shutdown.
    let hook = Receiver::start("/hook", 0, "").await;
    let mut app = TestDaemon::spawn_with_env(
        &channel("hook", "webhook", &hook.url, ""),
        &[("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET)],
    )
    .await;
    let mut ids = Vec::new();
    for n in 0..2 {
        let body = generic(
            &format!("LTAI5tInFlightKey{n:05}"),
            &format!("inflight-{n}"),
        );
        ids.push(app.post_generic(&body).await.incident_id());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while hook.hits().len() < ids.len() {
        assert!(std::time::Instant::now() < deadline, "{}", app.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(app.stop().await.success());

    hook.answer(200, "");
    app.restart().await;
    // Well within the 60 s lease a crashed sender would leave behind.
    let started = std::time::Instant::now();
    for id in &ids {
        wait_for_notifications(&app, *id, "sent", |rows| {
            rows.len() == 1 && rows[0]["state"] == "sent"
        })
        .await;
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let mut accepted: HashMap<String, usize> = HashMap::new();
    for hit in hook.hits().iter().filter(|h| h.answered == 200) {
        let body = verify_webhook(hit, HOOK_SECRET);
        *accepted
            .entry(body["dedup_key"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let expected: HashMap<String, usize> = ids
        .iter()
        .map(|id| (format!("incident-{id}-opened"), 1))
        .collect();
    assert_eq!(accepted, expected);
}

#[tokio::test]
async fn a_burst_of_opened_incidents_reaches_each_chat_channel_as_one_digest() {
    let answer_ok = |kind: &str| match kind {
        "dingtalk" | "wecom" => r#"{"errcode":0,"errmsg":"ok"}"#,
        "lark" => r#"{"code":0,"msg":"success"}"#,
        _ => "",
    };
    // Down at first: every notice is tried, then waits for its retry...
    let ding = Receiver::start(
        &format!("/robot/send?access_token={DING_TOKEN}"),
        503,
        "busy",
    )
    .await;
    let lark_ja = Receiver::start("/open-apis/bot/v2/hook/ja", 503, "busy").await;
    let slack = Receiver::start("/services/T000/B000/XXX", 503, "busy").await;
    let wecom = Receiver::start(
        &format!("/cgi-bin/webhook/send?key={WECOM_KEY}"),
        503,
        "busy",
    )
    .await;
    let hook = Receiver::start("/hook", 503, "busy").await;
    let config = [
        channel("ding", "dingtalk", &ding.url, ""),
        channel("lark_ja", "lark", &lark_ja.url, "language = \"ja\""),
        channel("slack", "slack", &slack.url, "show_key_id = true"),
        channel("wecom", "wecom", &wecom.url, "language = \"zh\""),
        channel("hook", "webhook", &hook.url, ""),
    ]
    .concat();
    let mut app = TestDaemon::spawn_with_env(
        &config,
        &[
            ("AKGUARD__NOTIFY__CHANNELS__DING__SECRET", DING_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__LARK_JA__SECRET", LARK_SECRET),
            ("AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET", HOOK_SECRET),
            ("AKGUARD__NOTIFY__RETRY_BASE_MS", "20"),
            ("AKGUARD__NOTIFY__RETRY_CAP_MS", "40"),
            ("AKGUARD__NOTIFY__MAX_ATTEMPTS", "100000"),
        ],
    )
    .await;
    let keys = [
        "LTAI5tDigestKeyAlpha01",
        "LTAI5tDigestKeyBravo02",
        "LTAI5tDigestKeyCharl03",
    ];
    let mut ids = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let body = generic(key, &format!("digest-{n}"));
        ids.push(app.post_generic(&body).await.incident_id());
    }
    for id in &ids {
        wait_for_notifications(&app, *id, "tried on every channel", |rows| {
            rows.len() == 5 && rows.iter().all(|r| r["last_error"] == "HTTP 503: busy")
        })
        .await;
    }
    // ...so after a restart all fifteen are due at once, as in a burst: each retry falls due
    // within the 40 ms cap of its last attempt, and the wait below outlasts it.
    assert!(app.stop().await.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (receiver, kind) in [
        (&ding, "dingtalk"),
        (&lark_ja, "lark"),
        (&slack, "slack"),
        (&wecom, "wecom"),
        (&hook, "webhook"),
    ] {
        receiver.answer(200, answer_ok(kind));
    }
    app.restart().await;
    for id in &ids {
        let rows = wait_for_notifications(&app, *id, "sent", |rows| {
            rows.len() == 5 && rows.iter().all(|r| r["state"] == "sent")
        })
        .await;
        for row in &rows {
            assert_eq!(
                row["dedup_key"],
                format!("incident-{id}-opened"),
                "{rows:#?}"
            );
        }
    }
    let accepted = |receiver: &Receiver| -> Vec<crate::receiver::Hit> {
        receiver
            .hits()
            .into_iter()
            .filter(|h| h.answered == 200)
            .collect()
    };
    let masked: Vec<String> = keys
        .iter()
        .map(|k| format!("{}{}", "*".repeat(k.len() - 6), &k[k.len() - 6..]))
        .collect();
    // Each line of a digest: `ID: KEY (SOURCE)`.
    let lines = |shown: &[String]| -> Vec<String> {
        ids.iter()
            .zip(shown)
            .map(|(id, key)| format!("{id}: {key} (generic)"))
            .collect()
    };
    let lines_masked = lines(&masked);
    let digest_of = |hits: Vec<crate::receiver::Hit>, text: &dyn Fn(&Value) -> String| {
        assert_eq!(hits.len(), 1, "one digest: {:#?}", texts_of(&hits));
        text(&hits[0].json())
    };

    let ding_text = digest_of(accepted(&ding), &|b| {
        b["markdown"]["text"].as_str().unwrap().to_owned()
    });
    verify_dingtalk(&accepted(&ding)[0], DING_SECRET, DING_TOKEN);
    let ding_title = accepted(&ding)[0].json()["markdown"]["title"].to_string();
    assert!(ding_title.contains("3 incidents opened"), "{ding_title}");
    for line in &lines_masked {
        let line = akguard::escape::markdown(line);
        assert!(ding_text.contains(&line), "{line} in {ding_text}");
    }
    assert!(
        keys.iter().all(|k| !ding_text.contains(k)),
        "masked: {ding_text}"
    );

    verify_lark(&accepted(&lark_ja)[0], LARK_SECRET);
    let ja = digest_of(accepted(&lark_ja), &|b| b.to_string());
    assert!(ja.contains("インシデントを 3 件起票しました"), "{ja}");
    assert!(lines_masked.iter().all(|l| ja.contains(l.as_str())), "{ja}");
    assert!(!ja.contains("incidents opened"));

    verify_slack(&accepted(&slack)[0]);
    let en = digest_of(accepted(&slack), &|b| b.to_string());
    assert!(
        en.contains("akguard: 3 incidents opened for leaked AccessKeys"),
        "{en}"
    );
    // This channel shows whole key ids.
    let shown: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    assert!(
        lines(&shown).iter().all(|l| en.contains(l.as_str())),
        "{en}"
    );

    let zh = digest_of(accepted(&wecom), &|b| {
        b["markdown"]["content"].as_str().unwrap().to_owned()
    });
    verify_wecom(&accepted(&wecom)[0], WECOM_KEY);
    assert!(zh.contains("已为泄露的 AccessKey 创建 3 个事件"), "{zh}");
    for line in &lines_masked {
        let line = akguard::escape::markdown(line);
        assert!(zh.contains(&line), "{line} in {zh}");
    }

    // The webhook is never digested: one event per notice, with its own dedup key.
    let mut hooked: Vec<String> = accepted(&hook)
        .iter()
        .map(|h| {
            verify_webhook(h, HOOK_SECRET)["dedup_key"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    hooked.sort();
    let mut expected: Vec<String> = ids
        .iter()
        .map(|id| format!("incident-{id}-opened"))
        .collect();
    expected.sort();
    assert_eq!(hooked, expected);
}

fn texts_of(hits: &[crate::receiver::Hit]) -> Vec<String> {
    hits.iter().map(|h| h.body.clone()).collect()
}
