//! Many accounts end to end: the real daemon against one emulator holding the home account
//! and member accounts, each member reached through STS `AssumeRole`.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection as _};

use crate::cloud_support::{calls, emulator, scenario_json, set_faults, state};
use crate::helpers::TestDaemon;
use crate::remediation::{UNUSED_KEY, daemon_with};

const HOME: &str = "1234567890123456";
const MEMBER: &str = "2222222222222222";
/// A member whose role akguard is configured for does not exist there.
const BROKEN: &str = "3333333333333333";
const MEMBER_KEY: &str = "LTAI5tMemberBackup2x8QwP";

/// `leaked-unused.json` as another account: its own uid, leaked key and role, and no user of
/// akguard's (akguard acts there only through the role).
fn member(uid: &str, with_role: bool) -> Value {
    member_with_key(uid, MEMBER_KEY, with_role)
}

/// `member`, its leaked key `key` (AccessKey IDs are unique across accounts).
fn member_with_key(uid: &str, key: &str, with_role: bool) -> Value {
    let text = scenario_json("leaked-unused.json")
        .to_string()
        .replace(HOME, uid)
        .replace(UNUSED_KEY, key)
        .replace("\"alias\":\"acme\"", "\"alias\":\"member\"");
    let mut member: Value = serde_json::from_str(&text).unwrap();
    let users = member["users"].as_array_mut().unwrap();
    users.retain(|u| u["name"] != "akguard");
    if !with_role {
        member["roles"] = json!([]);
    }
    member
}

async fn cloud() -> (String, akguard_emulator::EmulatorGuard) {
    emulator("leaked-unused.json", |s| {
        s["members"] = json!([member(MEMBER, true), member(BROKEN, false)]);
    })
    .await
}

/// The member's RAM writes at one a second: its quota, not the home account's ten.
fn accounts(broken_too: bool) -> String {
    let mut config = format!(
        r#"
[[alibaba.accounts]]
account_id = "{MEMBER}"
role_arn = "acs:ram::{MEMBER}:role/akguard-responder"
rate_limits = {{ ram_writes = 1.0 }}
"#
    );
    if broken_too {
        config.push_str(&format!(
            r#"
[[alibaba.accounts]]
account_id = "{BROKEN}"
role_arn = "acs:ram::{BROKEN}:role/akguard-responder"
"#
        ));
    }
    config
}

const METRICS_TOKEN: &str = "metrics-token-accounts-5e7d";

async fn daemon(url: &str, broken_too: bool) -> TestDaemon {
    daemon_with(
        url,
        &accounts(broken_too),
        &[
            ("AKGUARD__ROTATION__DISABLE_GRACE", "0s"),
            ("AKGUARD__METRICS__TOKEN", METRICS_TOKEN),
        ],
    )
    .await
}

async fn report(app: &TestDaemon, key: &str, account: &str) -> i64 {
    let detected = chrono::Utc::now() - chrono::Duration::minutes(5);
    let body = json!({"access_key_id": key, "account_id": account,
        "event_id": format!("accounts-{key}-{account}"), "detected_at": detected.to_rfc3339()});
    app.post_generic(&body.to_string()).await.incident_id()
}

fn calls_in<'a>(log: &'a [Value], account: &str, action: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|c| c["account"] == account && c["action"] == action && c["status"] == 200)
        .collect()
}

fn user<'a>(world: &'a Value, name: &str) -> &'a Value {
    world["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == name)
        .unwrap()
}

#[tokio::test]
async fn two_accounts_keep_separate_incidents_and_separate_rate_limits() {
    let (url, _emulator) = cloud().await;
    let app = daemon(&url, false).await;
    let home = report(&app, UNUSED_KEY, HOME).await;
    let other = report(&app, MEMBER_KEY, MEMBER).await;
    assert_ne!(home, other);
    for id in [home, other] {
        let done = app
            .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
            .await;
        assert_eq!(done["path"], "ram_key_unused", "{done:#}");
    }
    assert_eq!(
        app.get_ok(&format!("/v1/incidents/{other}")).await["account_id"],
        MEMBER
    );

    // Each key was deleted in its own account, by a caller of that account.
    let world = state(&url).await;
    assert_eq!(user(&world, "legacy-backup")["access_keys"], json!([]));
    let member_world = &world["members"][0];
    assert_eq!(member_world["account"]["uid"], MEMBER);
    assert_eq!(
        user(member_world, "legacy-backup")["access_keys"],
        json!([])
    );
    let log = calls(&url).await;
    for (account, key) in [(HOME, UNUSED_KEY), (MEMBER, MEMBER_KEY)] {
        let deleted = calls_in(&log, account, "DeleteAccessKey");
        assert_eq!(deleted.len(), 1, "{account}: {deleted:?}");
        assert_eq!(deleted[0]["params"]["UserAccessKeyId"], key);
    }
    // The member's incident acted in a role session named for it.
    let assumed = calls_in(&log, HOME, "AssumeRole");
    assert!(
        assumed.iter().any(
            |c| c["params"]["RoleSessionName"] == format!("akguard-{other}")
                && c["params"]["RoleArn"] == format!("acs:ram::{MEMBER}:role/akguard-responder")
        ),
        "{assumed:#?}"
    );

    // Separate limits: the member's writes kept its own 1/s; both accounts booked their
    // slots apart in the fleet's schedule.
    let mut writes: Vec<chrono::DateTime<chrono::Utc>> = log
        .iter()
        .filter(|c| c["account"] == MEMBER && c["status"] == 200)
        .filter(|c| ["UpdateAccessKey", "DeleteAccessKey"].contains(&c["action"].as_str().unwrap()))
        .map(|c| c["at"].as_str().unwrap().parse().unwrap())
        .collect();
    writes.sort();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(
        writes[1] - writes[0] >= chrono::Duration::milliseconds(900),
        "the member's writes came faster than its 1/s: {writes:?}"
    );
    sqlx::any::install_default_drivers();
    let mut db = AnyConnection::connect(&app.database_url()).await.unwrap();
    let booked: Vec<String> = sqlx::query_scalar(
        "SELECT account FROM rate_slots WHERE class = 'ram_write' ORDER BY account",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(booked, vec![MEMBER.to_owned(), "self".to_owned()]);

    // Metrics name the account.
    let metrics = app.get("/metrics", Some(METRICS_TOKEN)).await.text;
    for series in [
        format!("akguard_time_to_containment_seconds_count{{account=\"{MEMBER}\"}}"),
        "akguard_time_to_containment_seconds_count{account=\"home\"}".to_owned(),
        format!(
            "akguard_rate_limit_wait_seconds_count{{account=\"{MEMBER}\",class=\"ram_write\"}}"
        ),
    ] {
        assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    }
}

#[tokio::test]
async fn a_notification_for_an_unknown_account_makes_no_call_and_waits_for_a_person() {
    let (url, _emulator) = cloud().await;
    let hook = crate::receiver::Receiver::start("/akguard", 204, "").await;
    let channel = format!(
        "\n[[notify.channels]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url
    );
    let app = daemon_with(
        &url,
        &format!("{}{channel}", accounts(false)),
        &[
            ("AKGUARD__ROTATION__DISABLE_GRACE", "0s"),
            (
                "AKGUARD__NOTIFY__CHANNELS__HOOK__SECRET",
                "hook-hmac-secret-3c4d5e6f",
            ),
        ],
    )
    .await;
    let stranger = "9999999999999999";
    let id = report(&app, UNUSED_KEY, stranger).await;
    let stopped = app
        .wait_for_incident(id, "needs_attention", |i| i["state"] == "needs_attention")
        .await;
    assert_eq!(stopped["reason"], "unknown_account", "{stopped:#}");
    assert_eq!(stopped["account_id"], stranger);
    assert!(
        stopped["explanation"]
            .as_str()
            .unwrap()
            .contains("[[alibaba.accounts]]"),
        "{stopped:#}"
    );
    let log = calls(&url).await;
    let about_it: Vec<&Value> = log
        .iter()
        .filter(|c| c.to_string().contains(UNUSED_KEY) || c.to_string().contains(stranger))
        .collect();
    assert!(
        about_it.is_empty(),
        "calls made for the unknown account: {about_it:#?}"
    );
    let world = state(&url).await;
    assert_eq!(
        user(&world, "legacy-backup")["access_keys"][0]["status"],
        "Active"
    );
    // Durable, audited and notified like any other halt.
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    assert!(audit.to_string().contains("UnknownAccount"), "{audit:#}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !hook
        .hits()
        .iter()
        .any(|h| h.body.contains("unknown_account"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no notification of the halt: {:#?}",
            hook.hits()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_its_account_only() {
    let (url, _emulator) = cloud().await;
    let app = daemon(&url, true).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let ready = loop {
        let ready = app.get("/readyz", None).await;
        let accounts = &ready.body["checks"]["accounts"]["accounts"];
        if accounts[BROKEN]["status"] == "failing" && accounts[MEMBER]["status"] == "ok" {
            break ready;
        }
        assert!(std::time::Instant::now() < deadline, "{:#}", ready.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        ready.status, 200,
        "one account's role must not fail the daemon"
    );
    let check = &ready.body["checks"]["accounts"];
    assert_eq!(check["status"], "degraded");
    let broken = &check["accounts"][BROKEN]["credentials"];
    assert!(
        broken["reason"]
            .as_str()
            .unwrap()
            .contains("EntityNotExist.Role"),
        "{broken:#}"
    );
    let status = app.get_ok("/v1/status").await;
    assert_eq!(
        status["checks"]["accounts"]["accounts"][BROKEN]["status"], "failing",
        "{status:#}"
    );

    // The other member's incident goes on regardless.
    let id = report(&app, MEMBER_KEY, MEMBER).await;
    app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
}

#[tokio::test]
async fn an_sts_outage_longer_than_a_calls_retries_delays_the_step_instead_of_failing_it() {
    let (url, _emulator) = cloud().await;
    let app = daemon(&url, false).await;
    // More failures than one credentials fetch tries: the step must be rescheduled, not given
    // up as if the role were refused.
    set_faults(
        &url,
        json!({"fail_next": [{"action": "AssumeRole", "count": 7, "status": 503}]}),
    )
    .await;
    let id = report(&app, MEMBER_KEY, MEMBER).await;
    let done = app
        .wait_for_incident(id, "resolved", |i| {
            i["state"] == "resolved" || i["state"] == "needs_attention"
        })
        .await;
    assert_eq!(done["state"], "resolved", "{done:#}");
    let log = calls(&url).await;
    let refused = log
        .iter()
        .filter(|c| c["action"] == "AssumeRole" && c["status"] == 503)
        .count();
    assert_eq!(refused, 7);
}

#[test]
fn check_config_names_the_account_entry_that_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("accounts.toml");
    let entries = format!(
        "[[alibaba.accounts]]\naccount_id = \"{MEMBER}\"\nrole_arn = \"acs:ram::{MEMBER}:role/a\"\n\
         [[alibaba.accounts]]\naccount_id = \"{MEMBER}\"\nrole_arn = \"acs:ram::{MEMBER}:role/a\"\n\
         [[alibaba.accounts]]\naccount_id = \"{BROKEN}\"\nrole_arn = \"role/akguard\"\n"
    );
    std::fs::write(&config, entries).unwrap();
    let (status, stdout, stderr) = crate::helpers::run_cli(&["check-config"], &config);
    assert!(!status.success(), "accepted:\n{stdout}");
    assert!(
        stderr.contains("alibaba.accounts[1].account_id")
            && stderr.contains(&format!("account {MEMBER}: listed twice")),
        "{stderr}"
    );
    assert!(
        stderr.contains("alibaba.accounts[2].role_arn")
            && stderr.contains(&format!("account {BROKEN}: expected acs:ram::")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_security_center_poller_covers_every_account_by_role_or_through_the_directory() {
    const DIRECTORY_MEMBER: &str = "4444444444444444";
    const DIRECTORY_KEY: &str = "LTAI5tDirectBackup2x8QwP";
    // The same record id in each account: ids are the account's own.
    let leak = |uid: &str, key: &str| {
        let mut leak = scenario_json("leaked-in-use.json")["leaks"][0].clone();
        leak["access_key_id"] = key.into();
        leak["ali_user_name"] = format!("member-{uid}").into();
        json!([leak])
    };
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        let mut by_role = member(MEMBER, true);
        by_role["leaks"] = leak(MEMBER, MEMBER_KEY);
        let mut by_directory = member_with_key(DIRECTORY_MEMBER, DIRECTORY_KEY, true);
        by_directory["leaks"] = leak(DIRECTORY_MEMBER, DIRECTORY_KEY);
        s["members"] = json!([by_role, by_directory]);
    })
    .await;
    let config = format!(
        r#"
[[alibaba.accounts]]
account_id = "{MEMBER}"
role_arn = "acs:ram::{MEMBER}:role/akguard-responder"

[[alibaba.accounts]]
account_id = "{DIRECTORY_MEMBER}"
role_arn = "acs:ram::{DIRECTORY_MEMBER}:role/akguard-responder"
security_center = "resource_directory"
"#
    );
    let app = TestDaemon::spawn_with_env(
        &config,
        &[
            ("AKGUARD__INTAKE__SECURITY_CENTER__ENABLED", "true"),
            ("AKGUARD__INTAKE__SECURITY_CENTER__INTERVAL", "1s"),
            ("AKGUARD__REMEDIATION__WORKERS", "2"),
            ("AKGUARD__ROTATION__DISABLE_GRACE", "0s"),
            ("AKGUARD__ALIBABA__ENDPOINT", &url),
            (
                "AKGUARD__ALIBABA__ACCESS_KEY_ID",
                crate::cloud_support::AKGUARD_KEY,
            ),
            (
                "AKGUARD__ALIBABA__ACCESS_KEY_SECRET",
                crate::cloud_support::AKGUARD_SECRET,
            ),
        ],
    )
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let incidents = loop {
        let listed = app.get_ok("/v1/incidents").await["incidents"].clone();
        if listed.as_array().unwrap().len() >= 3 {
            break listed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{listed:#}\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut found: Vec<(String, String)> = incidents
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["account_name"].as_str().unwrap_or_default().to_owned(),
                // The home account's records name it once its id is known.
                match i["account_id"].as_str() {
                    None | Some(HOME) => "home".to_owned(),
                    Some(other) => other.to_owned(),
                },
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("acme-prod".to_owned(), "home".to_owned()),
            (format!("member-{MEMBER}"), MEMBER.to_owned()),
            (
                format!("member-{DIRECTORY_MEMBER}"),
                DIRECTORY_MEMBER.to_owned()
            ),
        ]
    );
    let log = calls(&url).await;
    // The member polled by its role read its own records; the directory's member was read
    // by the home account, naming it.
    assert!(!calls_in(&log, MEMBER, "DescribeAccesskeyLeakList").is_empty());
    assert!(
        calls_in(&log, HOME, "DescribeAccesskeyLeakList")
            .iter()
            .any(|c| c["params"]["ResourceDirectoryAccountId"] == DIRECTORY_MEMBER)
    );
    assert!(calls_in(&log, DIRECTORY_MEMBER, "DescribeAccesskeyLeakList").is_empty());
    let ready = app.get_ok("/readyz").await;
    assert_eq!(ready["checks"]["accounts"]["status"], "ok", "{ready:#}");

    // Once each member's key is deleted, its record is closed in that member, with its role
    // (ModifyAccessKeyLeakDeal names no directory member), whichever way it was read.
    for (n, (uid, key)) in [(MEMBER, MEMBER_KEY), (DIRECTORY_MEMBER, DIRECTORY_KEY)]
        .into_iter()
        .enumerate()
    {
        let id = incidents
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["access_key_id"] == key)
            .unwrap()["id"]
            .as_i64()
            .unwrap();
        app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
            .await;
        let world = state(&url).await;
        assert_eq!(world["members"][n]["leaks"][0]["status"], "dealed", "{uid}");
        assert_eq!(
            calls_in(&calls(&url).await, uid, "ModifyAccessKeyLeakDeal").len(),
            1
        );
    }
}

#[tokio::test]
async fn once_the_account_is_configured_a_retry_resumes_where_it_stopped() {
    let (url, _emulator) = cloud().await;
    let mut app = daemon_with(&url, "", &[("AKGUARD__ROTATION__DISABLE_GRACE", "0s")]).await;
    let id = report(&app, MEMBER_KEY, MEMBER).await;
    let stopped = app
        .wait_for_incident(id, "needs_attention", |i| i["state"] == "needs_attention")
        .await;
    assert_eq!(stopped["reason"], "unknown_account", "{stopped:#}");

    assert!(app.stop().await.success());
    app.append_config(&accounts(false));
    app.restart().await;
    let retried = app
        .client
        .post(app.url(&format!("/v1/incidents/{id}/actions/retry")))
        .bearer_auth(crate::helpers::OPERATOR_TOKEN)
        .json(&json!({"reason": "account configured"}))
        .send()
        .await
        .unwrap();
    assert!(
        retried.status().is_success(),
        "{}",
        retried.text().await.unwrap()
    );
    let done = app
        .wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    assert_eq!(done["account_id"], MEMBER);
    let log = calls(&url).await;
    assert_eq!(calls_in(&log, MEMBER, "DeleteAccessKey").len(), 1);
}
