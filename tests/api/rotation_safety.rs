//! Rotation under the faults that once broke it: an answer lost after the cloud acted, an
//! error that echoes the new secret, and sinks an operator or an attacker chose.

use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, calls_of, emulator, state};
use crate::helpers::{SQLITE_FILE, TestDaemon};
use crate::remediation::{daemon_with, report, settled, successful_calls, user};
use crate::rotation::{FAST, act, delivered_key, kms_sink, workload_uses};

fn key_ids(cloud: &Value) -> Vec<String> {
    user(cloud, "ci-deployer")["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_owned())
        .collect()
}

/// A KMS rotation of the leaked key whose `action` answer is lost once after the cloud acted;
/// returns the daemon, the emulator's URL and guard, and the incident waiting for the cutover.
async fn rotation_losing(action: &str) -> (TestDaemon, String, impl Sized, i64, Value) {
    let lost = json!({"fail_next": [
        {"action": action, "code": "ServiceUnavailable", "status": 503, "lose_answer": true}
    ]});
    let (url, guard) = emulator("leaked-in-use.json", |s| s["faults"] = lost).await;
    let app = daemon_with(&url, kms_sink(), FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let waiting = app
        .wait_for_incident(id, "awaiting cutover", |i| i["state"] == "awaiting_cutover")
        .await;
    (app, url, guard, id, waiting)
}

/// The workload moves to the delivered key; the rotation ends with that key alone and live.
async fn finish_with_the_delivered_key(app: &TestDaemon, url: &str, id: i64, waiting: &Value) {
    let new_key = waiting["findings"]["rotation"]["new_access_key_id"]
        .as_str()
        .unwrap();
    let version = waiting["findings"]["rotation"]["secret_version"]
        .as_str()
        .unwrap();
    let (delivered, secret) = delivered_key(&state(url).await, version);
    assert_eq!(delivered, new_key);
    workload_uses(url, &delivered, &secret).await;
    app.wait_for_incident(id, "resolved", |i| i["state"] == "resolved")
        .await;
    let cloud = state(url).await;
    assert_eq!(key_ids(&cloud), [new_key], "no orphan key is left");
    assert_eq!(
        user(&cloud, "ci-deployer")["access_keys"][0]["status"],
        "Active"
    );
}

#[tokio::test]
async fn a_lost_create_access_key_answer_still_ends_with_one_delivered_key() {
    let (app, url, _guard, id, waiting) = rotation_losing("CreateAccessKey").await;
    let codes: Vec<Value> = calls_of(&url, "CreateAccessKey")
        .await
        .iter()
        .map(|c| c["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [json!("ServiceUnavailable"), Value::Null],
        "the lost create is not resent blindly (no LimitExceeded.User.AccessKey)"
    );
    // The key whose answer was lost has an unknown secret: reconciled away, not delivered.
    let new_key = waiting["findings"]["rotation"]["new_access_key_id"].clone();
    // ci-deployer's keys only: the backdoor key the leaked key created is deleted too.
    let deleted: Vec<Value> = calls_of(&url, "DeleteAccessKey")
        .await
        .iter()
        .filter(|c| c["params"]["UserName"] == "ci-deployer")
        .map(|c| c["params"]["UserAccessKeyId"].clone())
        .collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_ne!(deleted[0], new_key);
    assert_ne!(deleted[0], json!(LEAKED_KEY));
    assert_eq!(key_ids(&state(&url).await).len(), 2);
    finish_with_the_delivered_key(&app, &url, id, &waiting).await;
}

#[tokio::test]
async fn a_lost_put_secret_value_answer_keeps_the_delivered_key() {
    let (app, url, _guard, id, waiting) = rotation_losing("PutSecretValue").await;
    assert_eq!(successful_calls(&url, "CreateAccessKey").await, 1);
    let ci_deletions = calls_of(&url, "DeleteAccessKey")
        .await
        .iter()
        .filter(|c| c["params"]["UserName"] == "ci-deployer")
        .count();
    assert_eq!(
        ci_deletions, 0,
        "the delivered key was taken for a lost one"
    );
    assert_eq!(
        waiting["findings"]["rotation"]["recovered_after_interruption"],
        true
    );
    finish_with_the_delivered_key(&app, &url, id, &waiting).await;
}

#[tokio::test]
async fn a_signature_error_echoing_the_new_secret_leaves_no_trace_of_it() {
    // The gateway's SignatureDoesNotMatch quotes its string-to-sign, which holds every
    // parameter of PutSecretValue: the new key's secret among them.
    let mismatch = json!({"fail_next": [
        {"action": "PutSecretValue", "code": "SignatureDoesNotMatch", "status": 400}
    ]});
    let (url, _guard) = emulator("leaked-in-use.json", |s| s["faults"] = mismatch).await;
    // It reads the database file: SQLite, whatever the suite's backend.
    let env = [FAST, &[SQLITE_FILE]].concat();
    let mut app = daemon_with(&url, kms_sink(), &env).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app.wait_for_incident(id, "needs a person", settled).await;
    assert_eq!(incident["reason"], "step_failed", "{incident:#}");
    let last_error = incident["last_error"].as_str().unwrap().to_owned();
    assert!(last_error.contains("SignatureDoesNotMatch"), "{last_error}");
    assert!(!last_error.contains("string to sign is"), "{last_error}");
    let calls = calls_of(&url, "PutSecretValue").await;
    assert_eq!(calls.len(), 1);

    let cloud = state(&url).await;
    let new_key = user(&cloud, "ci-deployer")["access_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] != LEAKED_KEY)
        .unwrap()
        .clone();
    let secret = new_key["secret"].as_str().unwrap().to_owned();
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    assert!(
        audit.to_string().contains("SignatureDoesNotMatch"),
        "{audit:#}"
    );
    assert!(!audit.to_string().contains(&secret), "the audit API");
    assert!(!incident.to_string().contains(&secret), "the incident API");
    assert!(app.stop().await.success());
    assert!(!app.log().contains(&secret), "the daemon's log");
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a database file"
        );
    }
}

/// A contained incident for the leaked key, whose user has no configured sink.
async fn awaiting_operator(
    url: &str,
    config: &str,
    more: &[(&'static str, &str)],
) -> (TestDaemon, i64) {
    let env = [FAST, more].concat();
    let app = daemon_with(url, config, &env).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    (app, id)
}

/// Nothing an operator's refused choice could have started: no key, no secret written, and
/// the incident still waiting with no sink recorded.
async fn nothing_created(app: &TestDaemon, url: &str, id: i64, secrets_before: &Value) {
    for action in ["CreateAccessKey", "PutSecretValue", "CreateSecret"] {
        assert_eq!(calls_of(url, action).await.len(), 0, "{action}");
    }
    assert_eq!(&state(url).await["secrets"], secrets_before);
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["state"], "awaiting_operator");
    assert!(incident["findings"].get("rotation_sink").is_none());
}

#[tokio::test]
async fn set_rotation_to_a_secret_outside_the_allowlist_is_forbidden() {
    let (url, _guard) = emulator("leaked-in-use.json", |_| {}).await;
    let allow = "[rotation.operator_sinks]\nkms_secret_prefixes = [\"acme/apps/\"]\n";
    let (app, id) = awaiting_operator(&url, allow, &[]).await;
    let secrets_before = state(&url).await["secrets"].clone();
    // A secret the operator can read, holding no key of this user.
    let sink = json!({"sink": "kms", "secret_name": "acme/ci-deployer/accesskey"});
    let (status, body) = act(&app, id, "set-rotation", sink).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rotation.operator_sinks"),
        "{body}"
    );
    nothing_created(&app, &url, id, &secrets_before).await;
}

#[tokio::test]
async fn set_rotation_to_a_directory_outside_the_allowlist_or_akguards_own_is_forbidden() {
    let (url, _guard) = emulator("leaked-in-use.json", |_| {}).await;
    let allowed = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let allow = format!(
        "[rotation.operator_sinks]\ndirectories = [\"{}\"]\n",
        allowed.path().display()
    );
    // The database's directory is akguard's own: SQLite, whatever the suite's backend.
    let (mut app, id) = awaiting_operator(&url, &allow, &[SQLITE_FILE]).await;
    let secrets_before = state(&url).await["secrets"].clone();
    let outside = elsewhere.path().join("ci-deployer.json");
    let sink = json!({"sink": "file", "path": outside});
    let (status, body) = act(&app, id, "set-rotation", sink).await;
    assert_eq!(status, 403, "{body}");
    let escape = format!("{}/../ci-deployer.json", allowed.path().display());
    let (status, body) = act(
        &app,
        id,
        "set-rotation",
        json!({"sink": "file", "path": escape}),
    )
    .await;
    assert_eq!(status, 403, "{body}");

    // Even when allowed, akguard's own database directory is refused.
    let own = app.dir.path().to_str().unwrap().to_owned();
    app.set_env("AKGUARD__ROTATION__OPERATOR_SINKS__DIRECTORIES", Some(&own));
    app.restart().await;
    let database = app.dir.path().join("akguard.db");
    let (status, body) = act(
        &app,
        id,
        "set-rotation",
        json!({"sink": "file", "path": database}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("akguard's own")
    );
    assert!(!outside.exists());
    nothing_created(&app, &url, id, &secrets_before).await;
}

#[tokio::test]
async fn a_symbolic_link_at_the_file_sink_is_refused_and_nothing_is_written_through_it() {
    let (url, _guard) = emulator("leaked-in-use.json", |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let path = dir.path().join("ci-deployer.json");
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    let config = format!(
        "[[rotation.users]]\nuser = \"ci-deployer\"\nsink = \"file\"\npath = \"{}\"\n",
        path.display()
    );
    let app = daemon_with(&url, &config, FAST).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app.wait_for_incident(id, "needs a person", settled).await;
    assert_eq!(incident["reason"], "step_failed", "{incident:#}");
    assert!(
        incident["last_error"]
            .as_str()
            .unwrap()
            .contains("symbolic link"),
        "{incident:#}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(calls_of(&url, "CreateAccessKey").await.len(), 0);
    let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(leftovers, 2, "no temporary file is left beside the link");
}
