//! Nothing the daemon writes or logs contains a secret it was configured with.

use std::path::Path;

use crate::helpers::{
    OPERATOR_TOKEN, SECRETS, SQLITE_FILE, TestDaemon, VIEWER_TOKEN, fixture, generic,
    hmac_signature, now, run_cli,
};

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn no_secret_appears_in_logs_database_files_or_responses() {
    // It reads the database file: SQLite, whatever the suite's backend.
    let mut app = TestDaemon::spawn_with_env("", &[SQLITE_FILE]).await;
    let mut responses = String::new();
    // Accepted, refused and failing requests of every kind.
    for resp in [
        app.post_generic(&fixture("generic_full.json")).await,
        app.post_generic(&fixture("generic_full.json")).await,
        app.post_generic_at(&generic("LTAI5tSECRETS000001", "e"), now() - 1000)
            .await,
        app.post_generic("{broken").await,
        app.post_eventbridge(&fixture("eventbridge_leak_protection.json"))
            .await,
        app.post_eventbridge(&fixture("eventbridge_activity.json"))
            .await,
        app.post_cloudmonitor(&fixture("cloudmonitor_system_event.json"))
            .await,
        app.get("/v1/incidents", Some(VIEWER_TOKEN)).await,
        app.get("/v1/incidents/1", Some(VIEWER_TOKEN)).await,
        app.get("/v1/incidents/1/audit", Some(OPERATOR_TOKEN)).await,
        app.get("/v1/incidents", Some("wrong-token")).await,
    ] {
        responses.push_str(&resp.text);
    }
    let wrong_sig = app
        .client
        .post(app.url("/v1/notifications/generic"))
        .header("content-type", "application/json")
        .header("x-akguard-timestamp", now().to_string())
        .header("x-akguard-signature", hmac_signature("guess", now(), b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    responses.push_str(&wrong_sig.text().await.unwrap());
    let (_, check_out, check_err) = run_cli(&["check-config"], &app.config_path());
    assert!(app.stop().await.success());

    let log = app.log();
    assert!(
        log.contains("incident opened"),
        "the log was not captured:\n{log}"
    );
    let mut stored = Vec::new();
    for path in files_under(app.dir.path()) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The operator's own config files are where the secrets legitimately live.
        if name == "akguard.toml" || name == "tokens.toml" {
            continue;
        }
        stored.push((name, std::fs::read(&path).unwrap()));
    }
    assert!(
        stored
            .iter()
            .any(|(name, _)| name.starts_with("akguard.db"))
    );
    for secret in SECRETS {
        assert!(!log.contains(secret), "log contains {secret}");
        assert!(!responses.contains(secret), "a response contains {secret}");
        assert!(
            !check_out.contains(secret) && !check_err.contains(secret),
            "check-config shows {secret}"
        );
        for (name, bytes) in &stored {
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{name} contains {secret}");
        }
    }
}
