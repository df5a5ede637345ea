//! Crash safety end to end: the daemon is killed right after a side effect (the
//! `fault-injection` build's crash hook), restarted, and must finish without repeating it.

use serde_json::{Value, json};

use crate::artefacts::{BACKDOOR_USER, act, with_backdoor_console};
use crate::cloud_support::{LEAKED_KEY, calls_of, emulator, state};
use crate::helpers::run_cli;
use crate::remediation::{
    MUTATING, UNUSED_KEY, daemon, daemon_with, most_per_target, report, settled, successful_calls,
    user,
};
use crate::rotation::{FAST, delivered_key, kms_sink, workload_uses};

#[tokio::test]
async fn a_crash_right_after_each_cloud_call_repeats_no_effect() {
    for (scenario, key, api) in [
        ("leaked-in-use.json", LEAKED_KEY, "CreatePolicy"),
        ("leaked-in-use.json", LEAKED_KEY, "AttachPolicyToUser"),
        ("leaked-in-use.json", LEAKED_KEY, "UpdateLoginProfile"),
        ("leaked-in-use.json", LEAKED_KEY, "SetAccessKeyPolicy"),
        ("leaked-unused.json", UNUSED_KEY, "UpdateAccessKey"),
        ("leaked-unused.json", UNUSED_KEY, "DeleteAccessKey"),
    ] {
        let (url, _emulator) = emulator(scenario, |_| {}).await;
        let mut app = daemon(
            &url,
            &[
                ("AKGUARD_TEST_CRASH_AFTER", api),
                ("AKGUARD__ROTATION__DISABLE_GRACE", "0s"),
            ],
        )
        .await;
        let id = report(&app, key, 25).await;
        let status = app.wait_exit().await;
        assert!(!status.success(), "{api}: the crash hook did not fire");
        assert_eq!(
            successful_calls(&url, api).await,
            1,
            "{api}: the hook fired after the first call"
        );

        app.set_env("AKGUARD_TEST_CRASH_AFTER", None);
        app.restart().await;
        let incident = app.wait_for_incident(id, "settled", settled).await;
        assert!(
            incident["state"] == "awaiting_operator" || incident["state"] == "resolved",
            "{api}: {incident:#}"
        );
        for action in MUTATING {
            assert!(
                most_per_target(&url, action).await <= 1,
                "after a crash at {api}, {action} repeated an effect"
            );
        }
        assert!(app.stop().await.success());
        let (status, stdout, _) = run_cli(&["verify-audit"], &app.config_path());
        assert!(status.success(), "{api}: {stdout}");
    }
}

#[tokio::test]
async fn a_crash_between_creating_and_delivering_the_key_replaces_the_lost_key() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let mut fast: Vec<(&str, &str)> = FAST.to_vec();
    fast.push(("AKGUARD_TEST_CRASH_AFTER", "CreateAccessKey"));
    let mut app = daemon_with(&url, kms_sink(), &fast).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    assert!(
        !app.wait_exit().await.success(),
        "the crash hook did not fire"
    );
    let lost = calls_of(&url, "CreateAccessKey").await;
    assert_eq!(lost.len(), 1);
    let cloud = state(&url).await;
    let lost_key = user(&cloud, "ci-deployer")["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] != LEAKED_KEY)
        .unwrap()["id"]
        .clone();

    app.set_env("AKGUARD_TEST_CRASH_AFTER", None);
    app.restart().await;
    let waiting = app
        .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    let new_key = waiting["findings"]["rotation"]["new_access_key_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        json!(new_key),
        lost_key,
        "the key whose secret was lost must not be handed over"
    );
    // ci-deployer's keys only: the backdoor key the leaked key created is deleted too.
    let deleted: Vec<Value> = calls_of(&url, "DeleteAccessKey")
        .await
        .iter()
        .filter(|c| c["params"]["UserName"] == "ci-deployer")
        .map(|c| c["params"]["UserAccessKeyId"].clone())
        .collect();
    assert_eq!(deleted, [lost_key]);
    let cloud = state(&url).await;
    let version = waiting["findings"]["rotation"]["secret_version"]
        .as_str()
        .unwrap();
    let (delivered, secret) = delivered_key(&cloud, version);
    assert_eq!(delivered, new_key);
    workload_uses(&url, &new_key, &secret).await;
    app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
}

/// Steps of a rotation after which the crash hook fires, in the order the rotation reaches
/// them; `FileSinkWrite` is the file sink's write.
const ROTATION_CRASH_POINTS: &[&str] = &[
    "PutSecretValue",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "DetachPolicyFromUser",
];

/// Before the cutover the daemon dies on its own; after it, once the workload moved.
fn before_cutover(point: &str) -> bool {
    ["CreateAccessKey", "PutSecretValue", "FileSinkWrite"].contains(&point)
}

/// The delivered key and its secret, as the workload reads them from `sink`.
fn read_sink(cloud: &Value, incident: &Value, file: Option<&std::path::Path>) -> (String, String) {
    match file {
        Some(path) => {
            let data: Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            (
                data["AccessKeyId"].as_str().unwrap().to_owned(),
                data["AccessKeySecret"].as_str().unwrap().to_owned(),
            )
        }
        None => delivered_key(
            cloud,
            incident["findings"]["rotation"]["secret_version"]
                .as_str()
                .unwrap(),
        ),
    }
}

/// One rotation with a crash at `point`: restarted, it ends resolved with the delivered key
/// live and alone, and no side effect repeated.
async fn rotate_through_a_crash(point: &str, file: Option<&std::path::Path>) {
    // Without the backdoor key the leaked key created: its chain incident disables and deletes
    // it with the same APIs, and the hook must fire in the rotation.
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        s["events"]
            .as_array_mut()
            .unwrap()
            .retain(|e| e["eventName"] != "CreateAccessKey");
    })
    .await;
    let config = match file {
        Some(path) => format!(
            "[[rotation.users]]\nuser = \"ci-deployer\"\nsink = \"file\"\npath = \"{}\"\n",
            path.display()
        ),
        None => kms_sink().to_owned(),
    };
    let mut env: Vec<(&str, &str)> = FAST.to_vec();
    env.push(("AKGUARD_TEST_CRASH_AFTER", point));
    let mut app = daemon_with(&url, &config, &env).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    if !before_cutover(point) {
        let waiting = app
            .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
            .await;
        let (key, secret) = read_sink(&state(&url).await, &waiting, file);
        workload_uses(&url, &key, &secret).await;
    }
    assert!(
        !app.wait_exit().await.success(),
        "{point}: the crash hook did not fire"
    );
    app.set_env("AKGUARD_TEST_CRASH_AFTER", None);
    app.restart().await;
    if before_cutover(point) {
        let waiting = app
            .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
            .await;
        let (key, secret) = read_sink(&state(&url).await, &waiting, file);
        assert_eq!(
            json!(key),
            waiting["findings"]["rotation"]["new_access_key_id"],
            "{point}: the incident names the delivered key"
        );
        workload_uses(&url, &key, &secret).await;
    }
    let incident = app
        .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    let new_key = incident["findings"]["rotation"]["new_access_key_id"].clone();
    let cloud = state(&url).await;
    let (delivered, _) = read_sink(&cloud, &incident, file);
    assert_eq!(json!(delivered), new_key, "{point}: {incident:#}");
    let keys = user(&cloud, "ci-deployer")["access_keys"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 1, "{point}: {keys:#?}");
    assert_eq!(keys[0]["id"], new_key, "{point}");
    assert_eq!(
        keys[0]["status"], "Active",
        "{point}: the delivered key is live"
    );
    for action in MUTATING.iter().chain(&["PutSecretValue"]) {
        assert!(
            most_per_target(&url, action).await <= 1,
            "after a crash at {point}, {action} repeated an effect"
        );
    }
    assert_eq!(
        successful_calls(&url, "CreateAccessKey").await,
        1,
        "{point}"
    );
    assert!(app.stop().await.success());
}

#[tokio::test]
async fn a_crash_at_any_point_of_a_kms_rotation_leaves_the_delivered_key_live() {
    for point in ROTATION_CRASH_POINTS {
        rotate_through_a_crash(point, None).await;
    }
}

#[tokio::test]
async fn a_crash_right_after_the_file_sink_is_written_keeps_the_written_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ci-deployer.json");
    rotate_through_a_crash("FileSinkWrite", Some(&path)).await;
}

#[tokio::test]
async fn a_crash_right_after_switching_a_logon_off_repeats_nothing_and_cancel_says_it_cannot_tell()
{
    // Every other console user already has to bind MFA, so the first UpdateLoginProfile call
    // that succeeds is the one that switches the backdoor's logon off.
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        with_backdoor_console(s);
        for user in s["users"].as_array_mut().unwrap() {
            if let Some(profile) = user.get_mut("login_profile") {
                profile["mfa_bind_required"] = json!(true);
            }
        }
    })
    .await;
    let mut app = daemon_with(
        &url,
        "",
        &[("AKGUARD_TEST_CRASH_AFTER", "UpdateLoginProfile")],
    )
    .await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let switched = |calls: Vec<Value>| {
        calls
            .into_iter()
            .filter(|c| c["status"] == 200 && c["params"]["Status"] == "Inactive")
            .count()
    };
    // Bounded: without the switch the daemon would never crash.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while switched(calls_of(&url, "UpdateLoginProfile").await) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the logon was never switched off:\n{}",
            app.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = app.wait_exit().await;
    assert!(!status.success(), "the crash hook did not fire");
    assert_eq!(switched(calls_of(&url, "UpdateLoginProfile").await), 1);

    app.set_env("AKGUARD_TEST_CRASH_AFTER", None);
    app.restart().await;
    let incident = app
        .wait_for_incident(id, "awaiting the operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    assert_eq!(
        switched(calls_of(&url, "UpdateLoginProfile").await),
        1,
        "switched off twice"
    );
    assert_eq!(
        user(&state(&url).await, BACKDOOR_USER)["login_profile"]["status"],
        "Inactive"
    );
    let logons = incident["findings"]["attacker_logins"]["users"].to_string();
    assert!(logons.contains("already_disabled"), "{logons}");

    // The change has an intent and no recorded result: cancel does not guess.
    let (status, body) = act(&app, id, "cancel", json!({"reason": "drill"})).await;
    assert_eq!(status, 200, "{body}");
    let cannot = body["cancel"]["cannot_undo"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["api"] == "UpdateLoginProfile")
        .cloned()
        .unwrap_or_else(|| panic!("{body:#}"));
    assert!(
        cannot["why"].as_str().unwrap().contains("never recorded"),
        "{cannot}"
    );
    app.wait_for_incident(id, "cancelled", |i| i["state"] == "cancelled")
        .await;
    assert_eq!(
        user(&state(&url).await, BACKDOOR_USER)["login_profile"]["status"],
        "Inactive"
    );
}
