//! The anchored audit chain end to end: every tamper case is caught by `verify-audit`, and
//! `serve` on a tampered database says so and appends nothing after the cut. The tamper
//! cases edit the SQLite file (its trigger syntax) and run on SQLite whatever the suite's
//! backend; the store's contract suite runs them on PostgreSQL.

use std::path::Path;

use reqwest::StatusCode;
use sqlx::{AnyConnection, Connection as _};

use crate::cloud_support::emulator;
use crate::helpers::{OPERATOR_TOKEN, SQLITE_FILE, TestDaemon, generic, run_cli};

const RESTORE_DELETE_GUARD: &str = "CREATE TRIGGER audit_log_refuses_delete BEFORE DELETE ON \
     audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END";

/// A daemon on a SQLite file, for the tests that tamper with it.
async fn on_sqlite() -> TestDaemon {
    TestDaemon::spawn_with_env("", &[SQLITE_FILE]).await
}

/// A connection to the daemon's database, whichever backend it is.
async fn connect(app: &TestDaemon) -> AnyConnection {
    sqlx::any::install_default_drivers();
    AnyConnection::connect(&app.database_url()).await.unwrap()
}

async fn hash_of_row(conn: &mut AnyConnection, id: i64) -> String {
    sqlx::query_scalar("SELECT hash FROM audit_log WHERE id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn audit_rows(app: &TestDaemon) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&mut connect(app).await)
        .await
        .unwrap()
}

/// A stopped daemon whose log holds six audit rows (one per opened incident); returns it and
/// the last row's hash.
async fn six_rows(app: &mut TestDaemon) -> String {
    for n in 1..=6 {
        app.post_generic(&generic(
            &format!("LTAI5tANCHORED00000{n}"),
            &format!("e{n}"),
        ))
        .await
        .incident_id();
    }
    assert!(app.stop().await.success());
    hash_of_row(&mut connect(app).await, 6).await
}

/// Runs `statements` on the database directly, as someone with write access to the file.
async fn tamper(app: &TestDaemon, statements: &[&str]) {
    let mut conn = connect(app).await;
    for sql in statements {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
}

/// Runs `verify-audit` with `extra` arguments; returns its exit code and stdout.
fn verify(app: &TestDaemon, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec!["verify-audit"];
    args.extend_from_slice(extra);
    let (status, stdout, _) = run_cli(&args, &app.config_path());
    (status.code(), stdout)
}

fn assert_fails(app: &TestDaemon, expected: &str) {
    let (code, stdout) = verify(app, &[]);
    assert_eq!(code, Some(1), "verify-audit on a tampered log: {stdout}");
    assert!(
        stdout.contains(expected),
        "expected `{expected}` in:\n{stdout}"
    );
}

#[tokio::test]
async fn an_intact_chain_verifies_with_its_head() {
    let mut app = TestDaemon::spawn().await;
    let head = six_rows(&mut app).await;
    let (code, stdout) = verify(&app, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(stdout, format!("audit chain intact: 6 rows, head {head}\n"));
}

#[tokio::test]
async fn concurrent_intake_keeps_the_anchor_on_the_last_row() {
    let mut app = TestDaemon::spawn().await;
    // Concurrent deliveries share transactions: the anchor moves row by row within each.
    let bodies = (0..40)
        .map(|n| generic(&format!("LTAI5tANCHOREDBATCH{n:02}"), &format!("b{n}")))
        .collect();
    for response in app.post_generic_all(bodies).await {
        response.incident_id();
    }
    assert!(app.stop().await.success());
    let head = hash_of_row(&mut connect(&app).await, 40).await;
    let (code, stdout) = verify(&app, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout,
        format!("audit chain intact: 40 rows, head {head}\n")
    );
}

#[tokio::test]
async fn an_edited_row_is_named() {
    let mut app = on_sqlite().await;
    six_rows(&mut app).await;
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_log_refuses_update",
            "UPDATE audit_log SET actor = 'operator:mallory' WHERE id = 3",
        ],
    )
    .await;
    assert_fails(
        &app,
        "audit chain broken at row 3: content does not match its hash",
    );
}

#[tokio::test]
async fn a_removed_middle_row_is_named_by_its_successor() {
    let mut app = on_sqlite().await;
    six_rows(&mut app).await;
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_log_refuses_delete",
            "DELETE FROM audit_log WHERE id = 3",
            RESTORE_DELETE_GUARD,
        ],
    )
    .await;
    assert_fails(
        &app,
        "audit chain broken at row 4: prev_hash does not match",
    );
}

#[tokio::test]
async fn a_removed_tail_is_caught_by_the_anchor_however_long() {
    for (cut, kept) in [("id = 6", 5), ("id > 3", 3), ("1 = 1", 0)] {
        let mut app = on_sqlite().await;
        let head = six_rows(&mut app).await;
        // The triggers are put back afterwards, so only the anchor can tell.
        tamper(
            &app,
            &[
                "DROP TRIGGER audit_log_refuses_delete",
                &format!("DELETE FROM audit_log WHERE {cut}"),
                RESTORE_DELETE_GUARD,
            ],
        )
        .await;
        let (code, stdout) = verify(&app, &[]);
        assert_eq!(code, Some(1), "removing {cut} went unseen: {stdout}");
        assert_eq!(
            stdout,
            format!("tail removed: expected 6 rows/head {head}, found {kept}\n")
        );
    }
}

#[tokio::test]
async fn a_dropped_trigger_is_named() {
    for trigger in [
        "audit_log_refuses_delete",
        "audit_log_moves_head",
        "audit_head_refuses_delete",
        "audit_head_moves_forward",
    ] {
        let mut app = on_sqlite().await;
        six_rows(&mut app).await;
        tamper(&app, &[&format!("DROP TRIGGER {trigger}")]).await;
        assert_fails(&app, &format!("append-only triggers missing: {trigger}"));
    }
}

#[tokio::test]
async fn a_removed_anchor_is_caught() {
    let mut app = on_sqlite().await;
    six_rows(&mut app).await;
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_head_refuses_delete",
            "DELETE FROM audit_head",
        ],
    )
    .await;
    assert_fails(&app, "the audit anchor is missing");
}

#[tokio::test]
async fn the_anchor_refuses_to_move_back_or_vanish() {
    let mut app = on_sqlite().await;
    six_rows(&mut app).await;
    let mut conn = connect(&app).await;
    for sql in [
        "UPDATE audit_head SET last_id = 3, row_count = 3",
        "DELETE FROM audit_head",
        "INSERT OR REPLACE INTO audit_head (singleton, last_id, last_hash, row_count) \
         VALUES (1, 0, 'x', 0)",
        // A row that does not continue the head cannot be appended either.
        "INSERT INTO audit_log (id, at, actor, action, detail, prev_hash, hash) \
         VALUES (9, 0, 'x', 'x', '{}', 'forged', 'forged')",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(err.to_string().contains("audit_"), "{sql}: {err}");
    }
    drop(conn);
    assert_eq!(verify(&app, &[]).0, Some(0));
}

#[tokio::test]
async fn expect_head_passes_a_recorded_head_and_fails_any_other() {
    let mut app = TestDaemon::spawn().await;
    let head = six_rows(&mut app).await;
    let earlier = hash_of_row(&mut connect(&app).await, 2).await;
    for recorded in [&head, &earlier] {
        let (code, stdout) = verify(&app, &["--expect-head", recorded]);
        assert_eq!(code, Some(0), "{recorded}: {stdout}");
    }
    let wrong = "ab".repeat(32);
    let (code, stdout) = verify(&app, &["--expect-head", &wrong]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("the expected head {wrong} is not in the chain")),
        "{stdout}"
    );
}

#[tokio::test]
async fn status_shows_an_intact_chain_with_the_head_verify_audit_prints() {
    let app = TestDaemon::spawn().await;
    app.post_generic(&generic("LTAI5tANCHOREDSTATUS1", "e1"))
        .await
        .incident_id();
    let status = app.get_ok("/v1/status").await;
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        status["database"]["backend"],
        crate::helpers::backend_name()
    );
    let chain = &status["audit_chain"];
    assert_eq!(chain["intact"], true, "{status:#}");
    assert_eq!(chain["reason"], serde_json::Value::Null);
    let (code, stdout) = verify(&app, &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        stdout,
        format!(
            "audit chain intact: {} rows, head {}\n",
            chain["rows"],
            chain["head"].as_str().unwrap()
        )
    );
    assert_eq!(chain["rows"], 1);
    assert_eq!(
        app.get("/v1/status", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert!(app.log().contains("audit chain intact"), "{}", app.log());
}

#[tokio::test]
async fn serve_on_a_cut_chain_is_unready_and_appends_nothing() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // Incidents recorded without workers, so work is waiting when the daemon comes back.
    let mut app =
        crate::remediation::daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "0"), SQLITE_FILE])
            .await;
    let head = six_rows(&mut app).await;
    tamper(
        &app,
        &[
            "DROP TRIGGER audit_log_refuses_delete",
            "DELETE FROM audit_log WHERE id > 3",
            RESTORE_DELETE_GUARD,
        ],
    )
    .await;
    app.set_env("AKGUARD__REMEDIATION__WORKERS", Some("2"));
    app.restart().await;
    let reason = format!("tail removed: expected 6 rows/head {head}, found 3");

    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(ready.error_message().contains(&reason), "{}", ready.text);
    let status = app.get_ok("/v1/status").await;
    let chain = &status["audit_chain"];
    assert_eq!(chain["intact"], false, "{status:#}");
    assert_eq!(chain["rows"], 3);
    assert_eq!(chain["reason"], reason.as_str());
    assert!(app.log().contains("audit chain broken"), "{}", app.log());

    // Intake, operators and workers all stop short of the audit log.
    let webhook = app
        .post_generic(&generic("LTAI5tANCHOREDAFTER01", "late"))
        .await;
    assert_eq!(
        webhook.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        webhook.text
    );
    assert!(
        webhook.error_message().contains("tail removed"),
        "{}",
        webhook.text
    );
    let action = app
        .client
        .post(app.url("/v1/incidents/1/actions/cancel"))
        .bearer_auth(OPERATOR_TOKEN)
        .json(&serde_json::json!({"reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(action.status(), StatusCode::SERVICE_UNAVAILABLE);
    app.wait_for_log("the audit chain is broken: not claiming incidents")
        .await;
    // Only the start-up question of who akguard is (a read that records nothing): no step ran.
    let calls = crate::cloud_support::calls(&url).await;
    assert!(
        calls.iter().all(|c| c["action"] == "GetCallerIdentity"),
        "{calls:#?}"
    );
    assert!(app.stop().await.success());
    assert_eq!(
        audit_rows(&app).await,
        3,
        "rows were appended after the cut"
    );
}

#[tokio::test]
async fn a_database_from_the_first_release_is_anchored_on_migration() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/fixtures/release-0.1.0.db");
    let mut app = TestDaemon::spawn_on_copy_of(&fixture).await;
    let status = app.get_ok("/v1/status").await;
    let head = hash_of_row(&mut connect(&app).await, 4).await;
    assert_eq!(status["audit_chain"]["intact"], true, "{status:#}");
    assert_eq!(status["audit_chain"]["rows"], 4);
    assert_eq!(status["audit_chain"]["head"], head.as_str());
    // The old incidents read back, and the chain grows from the anchored head.
    assert_eq!(app.get_ok("/v1/incidents/2").await["state"], "cancelling");
    app.post_generic(&generic("LTAI5tANCHOREDUPGRADE", "e1"))
        .await
        .incident_id();
    assert!(app.stop().await.success());
    let (code, stdout) = verify(&app, &["--expect-head", &head]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.starts_with("audit chain intact: 5 rows, head "),
        "{stdout}"
    );
}
