//! Restarts keep everything, and the audit log is append-only and tamper-evident. Apart
//! from the restart, these read the SQLite file itself and run on SQLite whatever the
//! suite's backend (the store's contract suite covers PostgreSQL).

use std::str::FromStr;

use akguard::domain::audit::ChainFault;
use akguard::store;
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::helpers::{SQLITE_FILE, TestDaemon, fixture, generic, run_cli};

#[tokio::test]
async fn incidents_survive_a_graceful_restart() {
    let mut app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&fixture("generic_full.json"))
        .await
        .incident_id();
    let before = app.get_ok(&format!("/v1/incidents/{id}")).await;

    let status = app.stop().await;
    assert!(status.success(), "exit status {status:?}\n{}", app.log());
    assert!(app.log().contains("stopped"), "{}", app.log());

    app.restart().await;
    assert_eq!(app.get_ok(&format!("/v1/incidents/{id}")).await, before);
    // The delivery is remembered too: resending it after the restart is a replay.
    let again = app.post_generic(&fixture("generic_full.json")).await;
    assert_eq!(again.body["outcome"], "replay");
    assert_eq!(again.incident_id(), id);
}

fn db_url(app: &TestDaemon) -> String {
    format!("sqlite://{}", app.dir.path().join("akguard.db").display())
}

#[tokio::test]
async fn the_database_refuses_to_update_or_delete_audit_rows() {
    let mut app = TestDaemon::spawn_with_env("", &[SQLITE_FILE]).await;
    app.post_generic(&generic("LTAI5tAPPENDONLY0001", "e1"))
        .await
        .incident_id();
    app.stop().await;

    let mut conn = SqliteConnectOptions::from_str(&db_url(&app))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
        .execute(&mut conn)
        .await;
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(&mut conn)
        .await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn verification_catches_an_edited_audit_row() {
    let mut app = TestDaemon::spawn_with_env("", &[SQLITE_FILE]).await;
    let id = app
        .post_generic(&generic("LTAI5tTAMPERED000001", "e1"))
        .await
        .incident_id();
    app.post_generic(&generic("LTAI5tTAMPERED000001", "e2"))
        .await
        .incident_id();
    app.post_generic(&generic("LTAI5tTAMPERED000002", "e3"))
        .await
        .incident_id();
    app.stop().await;

    let (status, stdout, stderr) = run_cli(&["verify-audit"], &app.config_path());
    assert!(status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("intact: 3 rows"), "{stdout}");
    let store = store::open(&db_url(&app), 1).await.unwrap();
    let report = store::verify_audit_chain(store.as_ref(), None)
        .await
        .unwrap();
    assert!(report.is_intact() && report.rows == 3, "{report:?}");

    // Someone with write access to the file drops the guard and rewrites history.
    let mut conn = SqliteConnectOptions::from_str(&db_url(&app))
        .unwrap()
        .connect()
        .await
        .unwrap();
    sqlx::query("DROP TRIGGER audit_log_refuses_update")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'operator:mallory' WHERE id = 2")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let (status, stdout, _) = run_cli(&["verify-audit"], &app.config_path());
    assert!(!status.success());
    assert!(
        stdout.contains("row 2") && stdout.contains("edited"),
        "{stdout}"
    );
    let report = store::verify_audit_chain(store.as_ref(), None)
        .await
        .unwrap();
    assert!(
        matches!(&report.faults[0], ChainFault::Broken(brk) if brk.id == 2),
        "tampering not detected: {report:?} (incident {id})"
    );
}

#[tokio::test]
async fn the_database_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt as _;
    let state = tempfile::tempdir().unwrap();
    let db = state.path().join("nested/state/akguard.db");
    let url = format!("sqlite://{}", db.display());
    let mut app = crate::helpers::TestDaemon::spawn_with_process(
        &[("AKGUARD__DATABASE__URL", url.as_str())],
        crate::helpers::ProcessSetup {
            nofile: None,
            umask: Some(0o022),
        },
    )
    .await;
    app.post_generic(&generic("LTAI5tPRIVATEDB00001", "evt-private-1"))
        .await
        .incident_id();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for dir in [db.parent().unwrap(), db.parent().unwrap().parent().unwrap()] {
        assert_eq!(mode(dir), 0o700, "{}", dir.display());
    }
    let wal = db.with_extension("db-wal");
    for file in [&db, &wal] {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    app.stop().await;
}
