//! Several daemons on one database act as one responder: account-wide work (the MFA sweep)
//! runs on one replica at a time under a lease in the database, resumes after a crash, and
//! the status API lists the replicas and who holds each singleton job.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::cloud_support::{calls_of, emulator};
use crate::remediation::{daemon, report};

/// Leaked keys of users with console access and no MFA: each user's login profile must be
/// changed once.
pub(crate) const USERS: usize = 24;

pub(crate) fn key_id(i: usize) -> String {
    format!("LTAI5tReplica{i:011}")
}

pub(crate) fn user_name(i: usize) -> String {
    format!("console-{i:03}")
}

/// The shipped in-use scenario plus `USERS` console users, each with one leaked key in use.
pub(crate) async fn many_console_users(
    latency_ms: u64,
) -> (String, akguard_emulator::EmulatorGuard) {
    emulator("leaked-in-use.json", |s| {
        let users = s["users"].as_array_mut().unwrap();
        for i in 0..USERS {
            users.push(json!({
                "name": user_name(i),
                "display_name": format!("console user {i}"),
                "create_date": "-100d",
                "last_login_date": "-3d",
                "login_profile": {"mfa_bind_required": false, "password_reset_required": false,
                    "create_date": "-100d"},
                "access_keys": [{
                    "id": key_id(i),
                    "secret": format!("replicaSecret{i:017}"),
                    "create_date": "-100d",
                    "last_used": "-1h",
                    "last_used_service": "Ecs",
                    "leaked": true,
                }],
            }));
        }
        // Slow answers widen the window in which two sweeps could overlap.
        s["faults"] = json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": latency_ms,
            "fail_next": []});
    })
    .await
}

/// Past the MFA step: the sweep it waited for is done.
pub(crate) fn past_mfa(incident: &Value) -> bool {
    !["new", "triage", "revoke", "disable_key", "enforce_mfa"]
        .contains(&incident["state"].as_str().unwrap_or_default())
}

/// Successful `UpdateLoginProfile` calls that required MFA, per user.
async fn mfa_required_per_user(url: &str) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for call in calls_of(url, "UpdateLoginProfile").await {
        if call["status"] == 200 && call["params"]["MFABindRequired"] == "true" {
            let user = call["params"]["UserName"].as_str().unwrap().to_owned();
            *counts.entry(user).or_insert(0) += 1;
        }
    }
    counts
}

/// Every console user got MFA required, each exactly once.
async fn assert_once_per_user(url: &str) {
    let counts = mfa_required_per_user(url).await;
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "UpdateLoginProfile MFABindRequired=true repeated for {} users: {repeated:?}",
        repeated.len()
    );
    for i in 0..USERS {
        assert_eq!(counts.get(&user_name(i)), Some(&1), "{counts:?}");
    }
}

#[tokio::test]
async fn two_daemons_require_mfa_of_each_user_once() {
    let (url, _emulator) = many_console_users(20).await;
    let first = daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "4")]).await;
    let second = first.spawn_another().await;
    let mut ids = Vec::new();
    for i in 0..USERS {
        let via = if i % 2 == 0 { &first } else { &second };
        ids.push(report(via, &key_id(i), 5).await);
    }
    for id in ids {
        first
            .wait_for_incident(id, "past the MFA step", past_mfa)
            .await;
    }
    assert_once_per_user(&url).await;
}

#[tokio::test]
async fn a_sweep_killed_midway_resumes_without_repeating_done_users() {
    let (url, _emulator) = many_console_users(60).await;
    let mut app = daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "4")]).await;
    let mut ids = Vec::new();
    for i in 0..USERS {
        ids.push(report(&app, &key_id(i), 5).await);
    }
    // Killed once part of the sweep is done, so there are both done and pending users.
    let started = std::time::Instant::now();
    while mfa_required_per_user(&url).await.len() < 5 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the sweep did not start:\n{}",
            app.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let status = app.kill().await;
    assert!(!status.success());
    let done_before = mfa_required_per_user(&url).await.len();
    assert!(done_before < USERS, "the sweep finished before the kill");

    app.restart().await;
    for id in ids {
        app.wait_for_incident(id, "past the MFA step", past_mfa)
            .await;
    }
    assert_once_per_user(&url).await;
    // The restarted daemon resumed the sweep it found rather than starting another.
    assert_eq!(calls_of(&url, "ListUsers").await.len(), 1);
}

#[tokio::test]
async fn the_status_lists_both_replicas_and_the_sweeps_holder() {
    let (url, _emulator) = many_console_users(0).await;
    let first = daemon(&url, &[]).await;
    let second = first.spawn_another().await;
    let status = first.get_ok("/v1/status").await;
    let replicas = status["replicas"].as_array().unwrap();
    assert_eq!(replicas.len(), 2, "{status:#}");
    let own = status["replica"].as_str().unwrap();
    let other = second.get_ok("/v1/status").await["replica"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(own, other);
    let hosts: Vec<&str> = replicas
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert!(hosts.iter().all(|h| *h == expected.trim()), "{status:#}");
    for r in replicas {
        assert!(r["id"] == own || r["id"] == other.as_str(), "{status:#}");
        assert_eq!(r["version"], env!("CARGO_PKG_VERSION"));
        assert!(r["started_at"].is_string() && r["last_heartbeat"].is_string());
    }

    // A leak starts a sweep; while it runs its holder is one of the two.
    report(&first, &key_id(0), 5).await;
    let started = std::time::Instant::now();
    let holder = loop {
        let status = second.get_ok("/v1/status").await;
        let jobs = status["singleton_jobs"].as_array().unwrap().clone();
        if let Some(job) = jobs.iter().find(|j| j["name"] == "mfa_sweep") {
            break job["holder"].as_str().unwrap().to_owned();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no replica took the MFA sweep: {status:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(holder == own || holder == other, "{holder}");
}

#[tokio::test]
async fn a_replica_with_other_settings_names_the_difference() {
    let (url, _emulator) = many_console_users(0).await;
    let first = daemon(&url, &[]).await;
    let mut second = first.spawn_another().await;
    second.stop().await;
    second.set_env("AKGUARD__REMEDIATION__DRY_RUN", Some("true"));
    second.restart().await;
    second.wait_for_log("settings [remediation] differ").await;
    let log = second.log();
    let line = log
        .lines()
        .find(|l| l.contains("settings [remediation] differ"))
        .unwrap();
    assert!(line.contains("WARN"), "{line}");
    // The first replica saw the same difference from its side.
    first.wait_for_log("settings [remediation] differ").await;
}

#[tokio::test]
async fn a_replica_reading_another_deny_policy_at_the_same_path_names_the_difference() {
    let (url, _emulator) = many_console_users(0).await;
    let policies = tempfile::tempdir().unwrap();
    let path = policies.path().join("deny.json");
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/policies/deny-high-risk.json"),
    )
    .unwrap();
    std::fs::write(&path, &shipped).unwrap();
    let file = path.to_str().unwrap();
    let first = daemon(&url, &[("AKGUARD__REVOKE__POLICY_FILE", file)]).await;
    // The second host's file at the same path denies one action less.
    let mut narrower: Value = serde_json::from_str(&shipped).unwrap();
    let statement = &mut narrower["Statement"][0]["Action"];
    statement.as_array_mut().unwrap().pop();
    std::fs::write(&path, narrower.to_string()).unwrap();
    let second = first.spawn_another().await;
    second.wait_for_log("settings [deny_policy] differ").await;
    first.wait_for_log("settings [deny_policy] differ").await;
    // Only the document differs: every other section matches.
    assert!(
        !second.log().contains("settings [revoke"),
        "{}",
        second.log()
    );
}
