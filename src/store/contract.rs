//! The store's contract: one set of tests run on SQLite (a temporary file) and on PostgreSQL
//! (a fresh database per test, created through `AKGUARD_TEST_DATABASE_URL`, by default
//! `postgres://postgres@127.0.0.1:5432/postgres`). An unreachable PostgreSQL fails the tests;
//! it never skips them.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::AnyConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

use super::backend::{Backend, Creation};
use super::turns::Urgency;
use super::{
    BatchAnswer, ClaimScope, ConsoleSession, Delivery, Durability, IncidentFilter, IncidentUpdate,
    IntakeOutcome, OperatorChange, OperatorError, Replica, ScheduleChange, SlotOutcome, SlotTake,
    SqlStore, Store, StoreError, SweepState, SweepUserState, verify_audit_chain,
};
use crate::domain::audit::ChainFault;
use crate::domain::findings::{Cancel, Finding, FindingsPatch, Triage};
use crate::domain::notice::{NoticeKind, Route, Severity};
use crate::domain::{
    AccessKeyId, AuditEntry, Event, IncidentId, IncidentState, LeakNotification, Signal, Step,
};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A migrated store on a database of its own, removed when the test is done with it.
struct TestDb {
    store: Arc<SqlStore>,
    url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

impl TestDb {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("akguard.db").display());
        Self::open(&url, Some(dir), None).await
    }

    async fn postgres() -> Self {
        let admin = std::env::var("AKGUARD_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned());
        let (url, name) = create_postgres_database(&admin).await;
        Self::open(&url, None, Some((admin, name))).await
    }

    async fn open(url: &str, dir: Option<tempfile::TempDir>, pg: Option<(String, String)>) -> Self {
        let store = SqlStore::connect(url, 8, Creation::IfMissing)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        Self {
            store: Arc::new(store),
            url: url.to_owned(),
            _dir: dir,
            postgres: pg,
        }
    }

    /// A second store on the same database that writes notifications for `routes`.
    async fn routed(&self, routes: Vec<Route>) -> SqlStore {
        let store = SqlStore::connect(&self.url, 8, Creation::IfMissing).await;
        store.unwrap().with_routes(routes)
    }

    /// Another process's store on the same database.
    async fn second_store(&self) -> SqlStore {
        SqlStore::connect(&self.url, 8, Creation::IfMissing)
            .await
            .unwrap()
    }

    /// Runs `sql` as someone with direct write access to the database.
    async fn tamper(&self, sql: &str) {
        self.store.pool.execute(sql).await.unwrap();
    }

    /// Drops an append-only trigger, as a tamperer would before editing the log.
    async fn drop_guard(&self, name: &str, table: &str) {
        match self.store.backend {
            Backend::Sqlite => self.tamper(&format!("DROP TRIGGER {name}")).await,
            Backend::Postgres => {
                self.tamper(&format!("DROP TRIGGER {name} ON {table}"))
                    .await
            }
        }
    }

    async fn finish(mut self) {
        self.store.pool.close().await;
        if let Some((admin, name)) = self.postgres.take() {
            drop_postgres_database(&admin, &name).await;
        }
    }
}

impl Drop for TestDb {
    /// A failed test leaves no database behind either; `DROP ... WITH (FORCE)` closes the
    /// pool's connections. Its own runtime, on a thread: the test's may be shutting down.
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(drop_postgres_database(&admin, &name));
            })
            .join();
        }
    }
}

async fn drop_postgres_database(admin: &str, name: &str) {
    let mut conn = PgConnection::connect(admin).await.unwrap();
    conn.execute(&*format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

/// Creates `akguard_t_<random>` through `admin` and returns its URL and name.
async fn create_postgres_database(admin: &str) -> (String, String) {
    let mut conn = PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {admin} ({e}); the store's contract runs on \
             PostgreSQL too: start it, or point AKGUARD_TEST_DATABASE_URL at one whose role \
             may CREATE DATABASE"
        )
    });
    let name = format!("akguard_t_{:016x}", getrandom::u64().unwrap());
    conn.execute(&*format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    conn.close().await.unwrap();
    let mut url = AnyConnectOptions::from_str(admin).unwrap().database_url;
    url.set_path(&name);
    (url.to_string(), name)
}

/// Runs each contract test on both backends.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::postgres().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

contract!(
    fifty_concurrent_duplicates_open_one_incident,
    fifty_concurrent_reports_of_one_key_open_one_incident,
    a_stale_workers_writes_are_refused,
    operator_events_go_through_the_state_machine,
    an_operator_event_fences_out_a_worker_whose_lease_lapsed,
    concurrent_writers_keep_the_audit_chain_intact,
    incidents_and_audit_rows_page_without_gaps_or_repeats,
    the_audit_log_refuses_updates_and_deletes,
    the_anchor_moves_only_with_rows_that_continue_it,
    an_edited_row_breaks_the_chain,
    a_removed_middle_row_breaks_the_chain,
    a_removed_tail_is_caught_by_the_anchor,
    an_emptied_log_is_caught_by_the_anchor,
    a_missing_trigger_is_named,
    console_sessions_last_until_they_expire_or_are_closed,
    concurrent_senders_claim_each_notification_of_a_batch_once,
    a_singleton_job_has_one_holder_and_fences_a_lapsed_one,
    an_mfa_sweep_keeps_progress_per_user_and_wakes_its_parked_incidents,
    an_audit_batch_outlives_a_lost_lease_and_answers_each_parked_incident,
    replicas_are_listed_while_their_heartbeat_is_recent,
    two_stores_on_one_database_never_hand_out_two_slots_within_an_interval,
    lower_priorities_do_not_book_ahead_of_containment,
    a_sweep_lists_more_users_than_one_statement_holds,
);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
}

fn leak(key: &str, event: &str) -> Delivery {
    Delivery {
        source: "generic".into(),
        format: "generic",
        delivery_id: event.into(),
        received_at: at(0),
        body_sha256: "00".into(),
        actor: "source:generic".into(),
        parent: None,
        signal: Signal::Leak(LeakNotification {
            access_key_id: AccessKeyId::parse(key).unwrap(),
            account_id: Some("1234567890".into()),
            account_name: None,
            owner_type: None,
            user_name: Some("ci-bot".into()),
            leak_url: None,
            detected_at: None,
            stated_detected_at: None,
            event_id: Some(event.into()),
        }),
    }
}

fn key(n: usize) -> String {
    format!("LTAI5tCONTRACT{n:06}")
}

/// Records `deliveries` concurrently, one batch each.
async fn record_concurrently(db: &TestDb, deliveries: Vec<Delivery>) -> Vec<IntakeOutcome> {
    let tasks: Vec<_> = deliveries
        .into_iter()
        .map(|d| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move { store.record_deliveries(&[d]).await.unwrap()[0] })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn opened(db: &TestDb, n: usize) -> Vec<IncidentId> {
    let batch: Vec<_> = (0..n)
        .map(|i| leak(&key(i), &format!("open-{i}")))
        .collect();
    let outcomes = db.store.record_deliveries(&batch).await.unwrap();
    outcomes.iter().map(|o| o.incident_id().unwrap()).collect()
}

async fn chain_faults(db: &TestDb) -> Vec<ChainFault> {
    verify_audit_chain(db.store.as_ref(), None)
        .await
        .unwrap()
        .faults
}

async fn fifty_concurrent_duplicates_open_one_incident(db: &TestDb) {
    let outcomes = record_concurrently(db, vec![leak(&key(1), "same"); 50]).await;
    let created: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, IntakeOutcome::Created(_)))
        .collect();
    assert_eq!(created.len(), 1, "{outcomes:?}");
    let id = created[0].incident_id().unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| *o == IntakeOutcome::Created(id) || *o == IntakeOutcome::Replay(id)),
        "{outcomes:?}"
    );
    assert_eq!(list_all(db).await.len(), 1);
    assert_eq!(db.store.list_sightings(id).await.unwrap().len(), 0);
    let audit = db.store.incident_audit(id).await.unwrap();
    assert_eq!(audit.len(), 1, "one audit row for one recorded delivery");
}

async fn fifty_concurrent_reports_of_one_key_open_one_incident(db: &TestDb) {
    let reports = (0..50)
        .map(|i| leak(&key(2), &format!("report-{i}")))
        .collect();
    let outcomes = record_concurrently(db, reports).await;
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, IntakeOutcome::Created(_)))
        .count();
    let sightings = outcomes
        .iter()
        .filter(|o| matches!(o, IntakeOutcome::Sighting(_)))
        .count();
    assert_eq!((created, sightings), (1, 49), "{outcomes:?}");
    let id = outcomes[0].incident_id().unwrap();
    assert_eq!(db.store.list_sightings(id).await.unwrap().len(), 49);
    assert!(chain_faults(db).await.is_empty());
}

async fn a_stale_workers_writes_are_refused(db: &TestDb) {
    let [id] = opened(db, 1).await[..] else {
        unreachable!()
    };
    let lease_for = Duration::from_secs(30);
    let now = Utc::now();
    let stale = db
        .store
        .claim_next("worker-a", ClaimScope::Any, now, lease_for)
        .await
        .unwrap()
        .expect("the new incident is due");
    assert_eq!(stale.incident.id, id);
    assert!(
        db.store
            .claim_next("worker-b", ClaimScope::Any, now, lease_for)
            .await
            .unwrap()
            .is_none(),
        "a leased incident is not claimed twice"
    );
    // Worker A stalls past its lease; B takes the incident over.
    let later = now + chrono::Duration::seconds(60);
    let current = db
        .store
        .claim_next("worker-b", ClaimScope::Any, later, lease_for)
        .await
        .unwrap()
        .expect("an expired lease is claimed again");
    assert_eq!(current.lease.attempt, stale.lease.attempt + 1);

    let entry = |action: &str| AuditEntry {
        incident_id: Some(id),
        actor: "worker".into(),
        action: action.into(),
        detail: serde_json::json!({}),
    };
    let update = || IncidentUpdate {
        findings: FindingsPatch::one(Finding::Triage(Triage {
            user_name: Some("by-test".into()),
            ..Triage::default()
        })),
        ..IncidentUpdate::default()
    };
    let release = || ScheduleChange {
        release: true,
        ..ScheduleChange::default()
    };
    let refused = db
        .store
        .record(
            &stale.lease,
            update(),
            release(),
            vec![entry("stale.write")],
        )
        .await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(i)) if i == id));
    // An intent goes before other writes, but through the same fence.
    let refused = db
        .store
        .record_before_call(
            &stale.lease,
            update(),
            ScheduleChange::default(),
            vec![entry("stale.intent")],
        )
        .await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(i)) if i == id));
    let extended = db.store.extend_lease(&stale.lease, later).await;
    assert!(matches!(extended, Err(StoreError::LeaseLost(_))));
    db.store
        .extend_lease(&current.lease, later + chrono::Duration::seconds(30))
        .await
        .unwrap();
    db.store
        .record_before_call(
            &current.lease,
            IncidentUpdate::default(),
            ScheduleChange::default(),
            vec![entry("current.intent")],
        )
        .await
        .unwrap();
    db.store
        .record(
            &current.lease,
            update(),
            release(),
            vec![entry("current.write")],
        )
        .await
        .unwrap();
    let audit = db.store.incident_audit(id).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        ["incident.opened", "current.intent", "current.write"]
    );
    let found = db.store.get_incident(id).await.unwrap().unwrap();
    let triage = found
        .incident
        .findings
        .triage
        .expect("the current worker's findings");
    assert_eq!(triage.user_name.as_deref(), Some("by-test"));
    assert_eq!(found.schedule.lease_owner, None, "released");
}

async fn operator_events_go_through_the_state_machine(db: &TestDb) {
    let ids = opened(db, 2).await;
    let change = || OperatorChange {
        note: serde_json::json!("no longer needed"),
        findings: FindingsPatch::one(Finding::Cancel(Cancel {
            undone: vec!["asked by alice".into()],
            ..Cancel::default()
        })),
        ..OperatorChange::default()
    };
    let state = db
        .store
        .apply_operator_event(ids[0], Event::Cancel, "operator:alice", change())
        .await
        .unwrap();
    assert_eq!(state, IncidentState::Active(Step::Cancelling));
    let incident = db
        .store
        .get_incident(ids[0])
        .await
        .unwrap()
        .unwrap()
        .incident;
    assert_eq!(incident.state, state);
    let cancel = incident.findings.cancel.expect("the operator's findings");
    assert_eq!(cancel.undone, ["asked by alice"]);
    let again = db
        .store
        .apply_operator_event(ids[0], Event::Cancel, "operator:alice", change())
        .await;
    assert!(matches!(again, Err(OperatorError::Illegal(_))), "{again:?}");

    // A worker holds the other incident: the operator waits for it.
    db.store
        .claim_next(
            "worker",
            ClaimScope::Any,
            Utc::now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .unwrap();
    let busy = db
        .store
        .apply_operator_event(ids[1], Event::Cancel, "operator:alice", change())
        .await;
    assert!(
        matches!(busy, Err(OperatorError::Busy(i)) if i == ids[1]),
        "{busy:?}"
    );
    let missing = db
        .store
        .apply_operator_event(
            IncidentId(1_000_000),
            Event::Cancel,
            "operator:alice",
            change(),
        )
        .await;
    assert!(matches!(missing, Err(OperatorError::NotFound(_))));
    let audit = db.store.incident_audit(ids[0]).await.unwrap();
    assert_eq!(audit.last().unwrap().action, "operator.cancel");
    assert_eq!(audit.last().unwrap().actor, "operator:alice");
}

async fn an_operator_event_fences_out_a_worker_whose_lease_lapsed(db: &TestDb) {
    let [id] = opened(db, 1).await[..] else {
        unreachable!()
    };
    // The lease ran out a minute ago and no other worker has reclaimed the incident.
    let long_ago = Utc::now() - chrono::Duration::seconds(120);
    let lapsed = db
        .store
        .claim_next(
            "worker-a",
            ClaimScope::Any,
            long_ago,
            Duration::from_secs(60),
        )
        .await
        .unwrap()
        .expect("the new incident is due");
    let change = OperatorChange {
        note: serde_json::json!("false alarm"),
        ..OperatorChange::default()
    };
    let state = db
        .store
        .apply_operator_event(id, Event::Cancel, "operator:alice", change)
        .await
        .unwrap();
    assert_eq!(state, IncidentState::Active(Step::Cancelling));

    // The worker wakes up and finishes its triage step as if nothing had happened.
    let finish = IncidentUpdate {
        state: Some(IncidentState::Active(Step::Revoke)),
        findings: FindingsPatch::one(Finding::Triage(Triage {
            user_name: Some("stale".into()),
            ..Triage::default()
        })),
        ..IncidentUpdate::default()
    };
    let release = ScheduleChange {
        release: true,
        ..ScheduleChange::default()
    };
    let stale = AuditEntry {
        incident_id: Some(id),
        actor: "worker".into(),
        action: "stale.write".into(),
        detail: serde_json::json!({}),
    };
    let refused = db
        .store
        .record(&lapsed.lease, finish, release, vec![stale])
        .await;
    assert!(
        matches!(refused, Err(StoreError::LeaseLost(i)) if i == id),
        "{refused:?}"
    );
    let heartbeat = db.store.extend_lease(&lapsed.lease, Utc::now()).await;
    assert!(
        matches!(heartbeat, Err(StoreError::LeaseLost(_))),
        "{heartbeat:?}"
    );
    let found = db.store.get_incident(id).await.unwrap().unwrap();
    assert_eq!(
        found.incident.state,
        IncidentState::Active(Step::Cancelling)
    );
    assert!(
        found.incident.findings.triage.is_none(),
        "{:?}",
        found.incident.findings
    );
    assert_eq!(
        found.schedule.lease_owner, None,
        "the operator cleared the lease"
    );
    assert_eq!(found.schedule.attempt, lapsed.lease.attempt + 1);
    let audit = db.store.incident_audit(id).await.unwrap();
    assert_eq!(audit.last().unwrap().action, "operator.cancel");

    // The cancel itself is claimed and run like any step, under a newer fencing token.
    let next = db
        .store
        .claim_next(
            "worker-b",
            ClaimScope::Any,
            Utc::now(),
            Duration::from_secs(30),
        )
        .await
        .unwrap()
        .expect("the cancel is due");
    assert!(next.lease.attempt > lapsed.lease.attempt + 1, "{next:?}");
    assert_eq!(next.work, super::Work::Step(Step::Cancelling));
}

async fn concurrent_writers_keep_the_audit_chain_intact(db: &TestDb) {
    let ids = opened(db, 10).await;
    let mut tasks = Vec::new();
    for writer in 0..8 {
        let store = Arc::clone(&db.store);
        tasks.push(tokio::spawn(async move {
            for round in 0..5 {
                // Batches of two: multi-row appends interleave with single ones.
                let batch = [
                    leak(
                        &key(100 + writer * 10 + round),
                        &format!("w{writer}-{round}"),
                    ),
                    leak(&key(round), &format!("w{writer}-{round}-again")),
                ];
                store.record_deliveries(&batch).await.unwrap();
            }
        }));
    }
    for (n, id) in ids.iter().enumerate() {
        let store = Arc::clone(&db.store);
        let id = *id;
        tasks.push(tokio::spawn(async move {
            let change = OperatorChange {
                note: serde_json::json!(format!("cancel {n}")),
                ..OperatorChange::default()
            };
            store
                .apply_operator_event(id, Event::Cancel, "operator:alice", change)
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = verify_audit_chain(db.store.as_ref(), None).await.unwrap();
    assert!(report.is_intact(), "{report}");
    // 10 opened, 8 writers x 5 rounds x 2 deliveries, 10 cancels.
    assert_eq!(report.rows, 10 + 80 + 10);
    let head = db.store.audit_head().await.unwrap().unwrap();
    assert_eq!(
        (head.rows, head.last_id),
        (100, 100),
        "ids continue the head"
    );
}

async fn list_all(db: &TestDb) -> Vec<IncidentId> {
    let filter = IncidentFilter {
        limit: 1000,
        ..IncidentFilter::default()
    };
    let incidents = db.store.list_incidents(&filter).await.unwrap();
    incidents.iter().map(|i| i.incident.id).collect()
}

async fn incidents_and_audit_rows_page_without_gaps_or_repeats(db: &TestDb) {
    let mut ids = opened(db, 25).await;
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let filter = IncidentFilter {
            before,
            limit: 10,
            ..IncidentFilter::default()
        };
        let page = db.store.list_incidents(&filter).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.incident.id);
        pages.push(page.iter().map(|i| i.incident.id).collect::<Vec<_>>());
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    ids.reverse();
    assert_eq!(pages.concat(), ids, "newest first, every incident once");

    let by_key = IncidentFilter {
        access_key_id: Some(key(7)),
        limit: 10,
        ..IncidentFilter::default()
    };
    assert_eq!(db.store.list_incidents(&by_key).await.unwrap().len(), 1);
    let by_state = IncidentFilter {
        state: Some("new".into()),
        limit: 100,
        ..IncidentFilter::default()
    };
    assert_eq!(db.store.list_incidents(&by_state).await.unwrap().len(), 25);

    let mut after = 0;
    let mut audit_ids = Vec::new();
    loop {
        let page = db.store.audit_page(after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id;
        audit_ids.extend(page.iter().map(|a| a.id));
    }
    assert_eq!(audit_ids, (1..=25).collect::<Vec<i64>>());
}

async fn the_audit_log_refuses_updates_and_deletes(db: &TestDb) {
    opened(db, 2).await;
    let refused = |sql: &'static str| async move {
        let err = db.store.pool.execute(sql).await.unwrap_err().to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    };
    refused("UPDATE audit_log SET actor = 'someone else'").await;
    refused("DELETE FROM audit_log").await;
    if db.store.backend == Backend::Postgres {
        refused("TRUNCATE audit_log").await;
        let err = db
            .store
            .pool
            .execute("TRUNCATE audit_head")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("audit_head"), "{err}");
    }
    assert!(chain_faults(db).await.is_empty());
}

async fn the_anchor_moves_only_with_rows_that_continue_it(db: &TestDb) {
    opened(db, 2).await;
    let head = db.store.audit_head().await.unwrap().unwrap();
    let (next, last) = (head.last_id + 1, head.hash.clone());
    for sql in [
        "UPDATE audit_head SET last_id = 1, row_count = 1".to_owned(),
        format!("UPDATE audit_head SET last_id = {next}, row_count = {next}"),
        "DELETE FROM audit_head".to_owned(),
        format!(
            "INSERT INTO audit_log (id, at, actor, action, detail, prev_hash, hash) \
             VALUES ({next}, 0, 'x', 'x', '{{}}', 'forged', 'forged-1')"
        ),
        // Several rows in one statement: each must continue the one before.
        format!(
            "INSERT INTO audit_log (id, at, actor, action, detail, prev_hash, hash) \
             VALUES ({next}, 0, 'x', 'x', '{{}}', '{last}', 'forged-2'), \
                    ({}, 0, 'x', 'x', '{{}}', 'forged', 'forged-3')",
            next + 1
        ),
    ] {
        let err = db.store.pool.execute(&*sql).await.unwrap_err().to_string();
        assert!(err.contains("audit_"), "{sql}: {err}");
    }
    assert_eq!(db.store.audit_head().await.unwrap(), Some(head));
    assert!(chain_faults(db).await.is_empty());
}

async fn six_rows(db: &TestDb) {
    opened(db, 6).await;
    assert!(chain_faults(db).await.is_empty());
}

async fn an_edited_row_breaks_the_chain(db: &TestDb) {
    six_rows(db).await;
    db.drop_guard("audit_log_refuses_update", "audit_log").await;
    db.tamper("UPDATE audit_log SET detail = '{}' WHERE id = 3")
        .await;
    let faults = chain_faults(db).await;
    assert!(
        faults
            .iter()
            .any(|f| matches!(f, ChainFault::Broken(b) if b.id == 3)),
        "{faults:?}"
    );
}

async fn a_removed_middle_row_breaks_the_chain(db: &TestDb) {
    six_rows(db).await;
    db.drop_guard("audit_log_refuses_delete", "audit_log").await;
    db.tamper("DELETE FROM audit_log WHERE id = 3").await;
    let faults = chain_faults(db).await;
    assert!(
        faults
            .iter()
            .any(|f| matches!(f, ChainFault::Broken(b) if b.id == 4)),
        "{faults:?}"
    );
}

async fn a_removed_tail_is_caught_by_the_anchor(db: &TestDb) {
    six_rows(db).await;
    db.drop_guard("audit_log_refuses_delete", "audit_log").await;
    db.tamper("DELETE FROM audit_log WHERE id >= 5").await;
    let faults = chain_faults(db).await;
    assert!(
        faults.iter().any(|f| matches!(
            f,
            ChainFault::TailRemoved { expected, found: 4 } if expected.rows == 6
        )),
        "{faults:?}"
    );
}

async fn an_emptied_log_is_caught_by_the_anchor(db: &TestDb) {
    six_rows(db).await;
    db.drop_guard("audit_log_refuses_delete", "audit_log").await;
    db.tamper("DELETE FROM audit_log").await;
    let faults = chain_faults(db).await;
    assert!(
        faults
            .iter()
            .any(|f| matches!(f, ChainFault::TailRemoved { found: 0, .. })),
        "{faults:?}"
    );
}

async fn a_missing_trigger_is_named(db: &TestDb) {
    six_rows(db).await;
    db.drop_guard("audit_head_moves_forward", "audit_head")
        .await;
    let faults = chain_faults(db).await;
    assert_eq!(
        faults,
        [ChainFault::MissingGuards(vec![
            "audit_head_moves_forward".into()
        ])]
    );
    if db.store.backend == Backend::Postgres {
        // A disabled trigger is listed but guards nothing.
        db.tamper("ALTER TABLE audit_log DISABLE TRIGGER audit_log_refuses_delete")
            .await;
        let faults = chain_faults(db).await;
        assert!(
            faults.iter().any(|f| matches!(
                f,
                ChainFault::MissingGuards(names) if names.contains(&"audit_log_refuses_delete".to_owned())
            )),
            "{faults:?}"
        );
    }
}

async fn console_sessions_last_until_they_expire_or_are_closed(db: &TestDb) {
    let session = |digest: &str, expires: i64| ConsoleSession {
        secret_sha256: digest.into(),
        token_name: "alice".into(),
        role: "operator".into(),
        expires_at: at(expires),
    };
    let alice = session("aa", 100);
    db.store.open_session(&alice, at(0)).await.unwrap();
    let found = db.store.find_session("aa", at(50)).await.unwrap();
    assert_eq!(found, Some(alice.clone()));
    assert_eq!(db.store.find_session("bb", at(50)).await.unwrap(), None);
    assert_eq!(
        db.store.find_session("aa", at(100)).await.unwrap(),
        None,
        "expired"
    );

    // A later sign-in purges the expired row: even a clock set back does not find it.
    db.store
        .open_session(&session("bb", 300), at(200))
        .await
        .unwrap();
    assert_eq!(db.store.find_session("aa", at(50)).await.unwrap(), None);
    assert!(
        db.store
            .find_session("bb", at(250))
            .await
            .unwrap()
            .is_some()
    );
    db.store.close_session("bb").await.unwrap();
    assert_eq!(db.store.find_session("bb", at(250)).await.unwrap(), None);
}

/// An intake batch writes one `opened` row per new incident (in one statement), and senders
/// claiming at once each take a row exactly once: the claim reads its candidates before it
/// takes them, so only the fence on the row's lease keeps two from taking the same one.
async fn concurrent_senders_claim_each_notification_of_a_batch_once(db: &TestDb) {
    let route = Route {
        channel: "chat".into(),
        events: vec![NoticeKind::Opened],
        min_severity: Severity::Info,
    };
    let store = Arc::new(db.routed(vec![route]).await);
    let batch: Vec<_> = (0..40)
        .map(|i| leak(&key(i), &format!("open-{i}")))
        .collect();
    let outcomes = store.record_deliveries(&batch).await.unwrap();
    let incidents: Vec<_> = outcomes.iter().map(|o| o.incident_id().unwrap()).collect();
    let senders: Vec<_> = (0..4)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut taken = Vec::new();
                loop {
                    let owner = format!("sender-{n}");
                    let lease = Duration::from_secs(60);
                    let items = store.claim_outbox(&owner, Utc::now(), lease, 4).await;
                    let items = items.unwrap();
                    if items.is_empty() {
                        break taken;
                    }
                    taken.extend(items);
                }
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for sender in senders {
        claimed.extend(sender.await.unwrap());
    }
    let mut ids: Vec<_> = claimed.iter().map(|item| item.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), claimed.len(), "a row was claimed twice");
    for item in &claimed {
        assert_eq!(item.kind, NoticeKind::Opened);
        assert_eq!(item.dedup_key, format!("incident-{}-opened", item.incident));
        assert_eq!(item.attempts, 1);
    }
    let mut notified: Vec<_> = claimed.iter().map(|item| item.incident.0).collect();
    notified.sort_unstable();
    let mut incidents: Vec<_> = incidents.iter().map(|id| id.0).collect();
    incidents.sort_unstable();
    assert_eq!(notified, incidents, "one notification per incident opened");
    store.pool.close().await;
}

async fn a_singleton_job_has_one_holder_and_fences_a_lapsed_one(db: &TestDb) {
    let store = &db.store;
    let lease_for = Duration::from_secs(30);
    let now = Utc::now();
    // Twenty replicas race for a free job: one wins.
    let racers: Vec<_> = (0..20)
        .map(|n| {
            let store = Arc::clone(&db.store);
            tokio::spawn(async move {
                store
                    .acquire_job("contract_job", &format!("r{n}"), now, lease_for)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        winners.extend(racer.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let first = winners.pop().unwrap();
    assert_eq!(first.token, 1);
    // The holder keeps its token when it takes the job again; others wait.
    let again = store
        .acquire_job("contract_job", &first.holder, now, lease_for)
        .await
        .unwrap();
    assert_eq!(again.as_ref(), Some(&first));
    store.renew_job(&first, now, lease_for).await.unwrap();
    let holders = store.job_holders(now).await.unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].holder, first.holder);

    // The holder stalls past its lease; another replica takes over with a larger token.
    let later = now + chrono::Duration::seconds(60);
    let second = store
        .acquire_job("contract_job", "other", later, lease_for)
        .await
        .unwrap()
        .expect("a lapsed lease is taken over");
    assert_eq!(second.token, first.token + 1);
    let renewed = store.renew_job(&first, later, lease_for).await;
    assert!(
        matches!(renewed, Err(StoreError::JobLost(_))),
        "{renewed:?}"
    );
    let sweep = store
        .join_mfa_sweep("", opened(db, 1).await[0], later, None, later)
        .await
        .unwrap();
    let stale = store
        .start_mfa_sweep(&first, sweep.id, &["u".to_owned()], later)
        .await;
    assert!(matches!(stale, Err(StoreError::JobLost(_))), "{stale:?}");
    assert_eq!(
        store.next_mfa_sweep("").await.unwrap().unwrap().state,
        SweepState::Queued,
        "the stale holder changed nothing"
    );

    // A release lets the next replica in at once.
    store.release_job(&second).await.unwrap();
    assert!(store.job_holders(later).await.unwrap().is_empty());
    let third = store
        .acquire_job("contract_job", &first.holder, later, lease_for)
        .await
        .unwrap()
        .expect("a released job is free");
    assert_eq!(third.token, second.token + 1);
}

async fn an_audit_batch_outlives_a_lost_lease_and_answers_each_parked_incident(db: &TestDb) {
    let store = &db.store;
    let ids = opened(db, 3).await;
    // To the millisecond, as times are stored.
    let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap();
    let far = now + chrono::Duration::hours(1);
    let window = now - chrono::Duration::days(7);
    let keys: Vec<String> = (0..3).map(key).collect();
    let seat = |n: usize| store.join_audit_batch("", ids[n], &keys[n], window, now);
    let first = seat(0).await.unwrap();
    assert_eq!(
        (first.state, first.answer.clone()),
        (SweepState::Queued, None)
    );
    assert_eq!(seat(1).await.unwrap().batch, first.batch);
    assert_eq!(seat(0).await.unwrap().batch, first.batch, "asking again");
    // Both are parked in the audit step.
    for _ in 0..2 {
        let claimed = store
            .claim_next("w", ClaimScope::Any, now, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        let update = IncidentUpdate {
            state: Some(IncidentState::Active(Step::Audit)),
            ..IncidentUpdate::default()
        };
        let schedule = ScheduleChange {
            next_attempt_at: Some(Some(far)),
            release: true,
            ..ScheduleChange::default()
        };
        store
            .record(&claimed.lease, update, schedule, vec![])
            .await
            .unwrap();
    }

    let lease_for = Duration::from_secs(30);
    let stale = store
        .acquire_job("audit_batch", "r1", now, lease_for)
        .await
        .unwrap()
        .unwrap();
    let members = store
        .start_audit_batch(&stale, first.batch, now)
        .await
        .unwrap();
    let named: Vec<_> = members.iter().map(|m| m.access_key_id.clone()).collect();
    assert_eq!(named, keys[..2]);
    assert_eq!(members[0].window_start, window);
    // A running batch takes no one: a later incident starts the next.
    let next = seat(2).await.unwrap();
    assert_ne!(next.batch, first.batch);

    // The holder stalls past its lease; its answer is refused and the batch stays running.
    let later = now + chrono::Duration::seconds(60);
    let holder = store
        .acquire_job("audit_batch", "r2", later, lease_for)
        .await
        .unwrap()
        .unwrap();
    let event = serde_json::json!({"eventId": "e1", "userIdentity": {"accessKeyId": key(0)}});
    let answer = std::collections::HashMap::from([(ids[0], vec![event.clone()]), (ids[1], vec![])]);
    let refused = store
        .finish_audit_batch(&stale, first.batch, Some(&answer), vec![], later)
        .await;
    assert!(
        matches!(refused, Err(StoreError::JobLost(_))),
        "{refused:?}"
    );
    let pending = store.next_audit_batch("").await.unwrap().unwrap();
    assert_eq!(
        (pending.id, pending.state),
        (first.batch, SweepState::Running)
    );

    // The next holder gets the same members and answers them, with its calls' audit rows.
    let again = store
        .start_audit_batch(&holder, first.batch, later)
        .await
        .unwrap();
    assert_eq!(again, members);
    let entry = AuditEntry {
        incident_id: None,
        actor: "job:audit_batch:r2".into(),
        action: "cloud.read".into(),
        detail: serde_json::json!({"api": "LookupEvents", "target": "cn-hangzhou"}),
    };
    store
        .finish_audit_batch(&holder, first.batch, Some(&answer), vec![entry], later)
        .await
        .unwrap();
    assert_eq!(
        seat(0).await.unwrap().answer,
        Some(BatchAnswer::Events(vec![event]))
    );
    assert_eq!(
        seat(1).await.unwrap().answer,
        Some(BatchAnswer::Events(vec![]))
    );
    for id in &ids[..2] {
        let incident = store.get_incident(*id).await.unwrap().unwrap();
        assert_eq!(
            incident.schedule.next_attempt_at,
            Some(later),
            "incident {id}"
        );
    }
    assert!(chain_faults(db).await.is_empty());

    // A batch answered per key leaves each incident its own query.
    assert_eq!(
        store.next_audit_batch("").await.unwrap().unwrap().id,
        next.batch
    );
    store
        .start_audit_batch(&holder, next.batch, later)
        .await
        .unwrap();
    store
        .finish_audit_batch(&holder, next.batch, None, vec![], later)
        .await
        .unwrap();
    assert_eq!(seat(2).await.unwrap().answer, Some(BatchAnswer::PerKey));
    assert!(store.next_audit_batch("").await.unwrap().is_none());
}

async fn an_mfa_sweep_keeps_progress_per_user_and_wakes_its_parked_incidents(db: &TestDb) {
    let store = &db.store;
    let ids = opened(db, 3).await;
    let opened_at = store
        .get_incident(ids[0])
        .await
        .unwrap()
        .unwrap()
        .incident
        .created_at;
    let now = opened_at + chrono::Duration::seconds(1);
    let far = now + chrono::Duration::hours(1);
    // Two incidents join one queued sweep; asking again returns it.
    let sweep = store
        .join_mfa_sweep("", ids[0], opened_at, Some("alice"), now)
        .await
        .unwrap();
    assert_eq!(sweep.state, SweepState::Queued);
    let same = store
        .join_mfa_sweep("", ids[1], opened_at, None, now)
        .await
        .unwrap();
    assert_eq!(same.id, sweep.id);
    assert_eq!(
        store
            .join_mfa_sweep("", ids[0], opened_at, None, now)
            .await
            .unwrap()
            .id,
        sweep.id
    );
    // Both are parked in the MFA step.
    for _ in 0..2 {
        let claimed = store
            .claim_next("w", ClaimScope::Any, now, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        let update = IncidentUpdate {
            state: Some(IncidentState::Active(Step::EnforceMfa)),
            ..IncidentUpdate::default()
        };
        let schedule = ScheduleChange {
            next_attempt_at: Some(Some(far)),
            release: true,
            ..ScheduleChange::default()
        };
        store
            .record(&claimed.lease, update, schedule, vec![])
            .await
            .unwrap();
    }

    let lease = sweep_lease(db, now).await;
    let users = ["alice".to_owned(), "bob".to_owned()];
    store
        .start_mfa_sweep(&lease, sweep.id, &users, now)
        .await
        .unwrap();
    assert_eq!(
        store.next_mfa_sweep("").await.unwrap().unwrap().state,
        SweepState::Running
    );
    // An incident opened before the sweep started joins it; the leaked user's own row asks
    // for a new password.
    let third = store
        .join_mfa_sweep("", ids[2], opened_at, Some("carol"), now)
        .await
        .unwrap();
    assert_eq!(third.id, sweep.id);
    let rows = store.mfa_sweep_users(sweep.id).await.unwrap();
    let names: Vec<_> = rows
        .iter()
        .map(|u| (u.user_name.as_str(), u.reset_password))
        .collect();
    assert_eq!(names, [("alice", true), ("bob", false), ("carol", true)]);

    // Alice is done; Bob failed once and waits; Carol is mid-call (the intent record).
    let mut alice = rows[0].clone();
    alice.state = SweepUserState::Done;
    alice.outcome = Some("mfa_now_required".into());
    alice.password_reset = true;
    let entry = AuditEntry {
        action: "cloud.call".into(),
        detail: serde_json::json!({"api": "UpdateLoginProfile", "target": "alice"}),
        ..sweep_entry()
    };
    store
        .save_sweep_user(
            &lease,
            sweep.id,
            &alice,
            vec![entry],
            now,
            Durability::Synced,
        )
        .await
        .unwrap();
    // Progress that is only redone if lost is written by the same rules, its audit rows in
    // the same chain.
    let mut bob = rows[1].clone();
    bob.attempts = 1;
    bob.error = Some("Throttling".into());
    bob.next_attempt_at = now + chrono::Duration::seconds(5);
    let read = AuditEntry {
        action: "cloud.read".into(),
        detail: serde_json::json!({"api": "GetLoginProfile", "target": "bob"}),
        ..sweep_entry()
    };
    store
        .save_sweep_user(
            &lease,
            sweep.id,
            &bob,
            vec![read],
            now,
            Durability::Deferred,
        )
        .await
        .unwrap();
    let mut carol = rows[2].clone();
    carol.state = SweepUserState::Applying;
    carol.want_mfa = true;
    carol.want_reset = true;
    store
        .save_sweep_user(&lease, sweep.id, &carol, vec![], now, Durability::Synced)
        .await
        .unwrap();
    // Deferred or not, a save is fenced by the job's lease.
    let stale = super::JobLease {
        token: lease.token - 1,
        ..lease.clone()
    };
    let refused = store
        .save_sweep_user(&stale, sweep.id, &bob, vec![], now, Durability::Deferred)
        .await;
    assert!(
        matches!(refused, Err(StoreError::JobLost(_))),
        "{refused:?}"
    );
    assert!(
        !store.finish_mfa_sweep(&lease, sweep.id, now).await.unwrap(),
        "users are left"
    );
    let kept = store.mfa_sweep_users(sweep.id).await.unwrap();
    assert_eq!(
        kept,
        vec![alice, bob.clone(), carol.clone()],
        "progress survives"
    );
    let audit = store.audit_page(0, 100).await.unwrap();
    for action in ["cloud.call", "cloud.read"] {
        assert!(
            audit
                .iter()
                .any(|a| a.action == action && a.incident_id.is_none()),
            "{action}"
        );
    }
    assert!(chain_faults(db).await.is_empty());

    bob.state = SweepUserState::Failed;
    carol.state = SweepUserState::Done;
    for (user, durability) in [(&bob, Durability::Deferred), (&carol, Durability::Synced)] {
        store
            .save_sweep_user(&lease, sweep.id, user, vec![], now, durability)
            .await
            .unwrap();
    }
    assert!(store.finish_mfa_sweep(&lease, sweep.id, now).await.unwrap());
    assert!(store.next_mfa_sweep("").await.unwrap().is_none());
    assert_eq!(
        store.mfa_sweep_of(ids[0]).await.unwrap().unwrap().state,
        SweepState::Done
    );
    // The parked incidents are due now, and claimable.
    for id in &ids[..2] {
        let incident = store.get_incident(*id).await.unwrap().unwrap();
        assert_eq!(
            incident.schedule.next_attempt_at,
            Some(now),
            "incident {id}"
        );
    }
    let mut claimed = Vec::new();
    while let Some(c) = store
        .claim_next("w", ClaimScope::Any, now, Duration::from_secs(30))
        .await
        .unwrap()
    {
        claimed.push(c.incident.id);
    }
    assert!(
        claimed.contains(&ids[0]) && claimed.contains(&ids[1]),
        "{claimed:?}"
    );
    // A done sweep still covers an incident opened before it started; a later incident
    // gets a sweep of its own.
    let more = opened(db, 5).await;
    let covered = store
        .join_mfa_sweep("", more[3], opened_at, None, now)
        .await
        .unwrap();
    assert_eq!((covered.id, covered.state), (sweep.id, SweepState::Done));
    let later = now + chrono::Duration::seconds(10);
    let next = store
        .join_mfa_sweep("", more[4], later, None, later)
        .await
        .unwrap();
    assert_ne!(next.id, sweep.id);
    assert_eq!(next.state, SweepState::Queued);
}

async fn replicas_are_listed_while_their_heartbeat_is_recent(db: &TestDb) {
    let replica = |id: &str, beat: i64| Replica {
        id: id.into(),
        host: "host-a".into(),
        version: "1.2.3".into(),
        started_at: at(0),
        heartbeat_at: at(beat),
        account_id: None,
        config_digest: "{}".into(),
    };
    db.store.record_replica(&replica("old", 10)).await.unwrap();
    db.store.record_replica(&replica("live", 10)).await.unwrap();
    let mut beat = replica("live", 100);
    beat.account_id = Some("1234567890123456".into());
    db.store.record_replica(&beat).await.unwrap();
    let live = db.store.replicas_since(at(50)).await.unwrap();
    assert_eq!(live, vec![beat]);
    assert_eq!(db.store.replicas_since(at(0)).await.unwrap().len(), 2);
    db.store.remove_replica("live").await.unwrap();
    assert!(db.store.replicas_since(at(50)).await.unwrap().is_empty());
}

/// An hour from now: the schedule starts at the later of the caller's time and the
/// database's, so the slots handed out follow from this time alone.
fn soon(seconds: i64) -> DateTime<Utc> {
    static BASE: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let base = *BASE.get_or_init(|| Utc::now().timestamp() + 3600);
    DateTime::from_timestamp(base + seconds, 0).unwrap()
}

fn slot_take(class: &str, interval_ms: u64, within: Option<Duration>) -> SlotTake<'_> {
    SlotTake {
        account: "1234567890",
        class,
        interval: Duration::from_millis(interval_ms),
        within,
        now: soon(0),
    }
}

/// Eight takers on each of two stores, all at once: the slots handed out are spaced at least
/// one interval apart, so no window of one second holds more than the rate.
async fn two_stores_on_one_database_never_hand_out_two_slots_within_an_interval(db: &TestDb) {
    let stores = [db.store.clone(), Arc::new(db.second_store().await)];
    let mut takers = Vec::new();
    for i in 0..16 {
        let store = stores[i % 2].clone();
        takers.push(tokio::spawn(async move {
            let mut slots = Vec::new();
            for _ in 0..10 {
                match store
                    .take_rate_slot(&slot_take("ram_write", 50, None))
                    .await
                {
                    Ok(SlotOutcome::Granted(at)) => slots.push(at),
                    other => panic!("containment is always granted a slot: {other:?}"),
                }
            }
            slots
        }));
    }
    let mut slots = Vec::new();
    for taker in takers {
        slots.extend(taker.await.unwrap());
    }
    slots.sort();
    assert_eq!(slots.len(), 160);
    assert_eq!(slots[0], soon(0));
    for pair in slots.windows(2) {
        assert!(
            pair[1] - pair[0] >= chrono::Duration::milliseconds(50),
            "two slots {} ms apart",
            (pair[1] - pair[0]).num_milliseconds()
        );
    }
    // Twenty per second (one every 50 ms): one second of slots holds twenty.
    let first_second = slots.iter().filter(|t| **t < soon(1)).count();
    assert_eq!(first_second, 20);
    // Other classes and accounts have schedules of their own.
    let other = db.store.take_rate_slot(&slot_take("other", 50, None)).await;
    assert_eq!(other.unwrap(), SlotOutcome::Granted(soon(0)));
    stores[1].pool.close().await;
}

/// The users of a large account go in several statements; every one is listed once, also
/// when a holder that lost its lease before the sweep ran starts it again.
async fn a_sweep_lists_more_users_than_one_statement_holds(db: &TestDb) {
    let store = &db.store;
    let ids = opened(db, 1).await;
    let now = Utc::now();
    let sweep = store
        .join_mfa_sweep("", ids[0], now, None, now)
        .await
        .unwrap();
    let lease = sweep_lease(db, now).await;
    let users: Vec<String> = (0..1201).map(|n| format!("user-{n:04}")).collect();
    for _ in 0..2 {
        store
            .start_mfa_sweep(&lease, sweep.id, &users, now)
            .await
            .unwrap();
    }
    let rows = store.mfa_sweep_users(sweep.id).await.unwrap();
    let mut listed: Vec<_> = rows.iter().map(|u| u.user_name.clone()).collect();
    listed.sort();
    assert_eq!(listed, users);
    assert!(rows.iter().all(|u| u.state == SweepUserState::Pending));
}

/// SQLite only (PostgreSQL's claimers take no turns): a claim that finds nothing does not
/// queue for the write lock, and one that takes a containment step goes before writes that
/// queued earlier for less urgent work.
#[tokio::test]
async fn on_sqlite_claims_queue_for_the_write_lock_only_when_they_take_something() {
    let db = TestDb::sqlite().await;
    let store = db.store.clone();
    let lease_for = Duration::from_secs(30);
    let held = store.turn(Urgency::Other).await;
    let empty = tokio::time::timeout(
        Duration::from_secs(2),
        store.claim_next("w", ClaimScope::Containment, Utc::now(), lease_for),
    )
    .await
    .expect("an empty claim waited for the write lock");
    assert!(empty.unwrap().is_none());
    drop(held);

    opened(&db, 1).await;
    let held = store.turn(Urgency::Other).await;
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (first, log) = (store.clone(), order.clone());
    let ping = tokio::spawn(async move {
        first.ping().await.unwrap();
        log.lock().unwrap().push("readiness");
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (second, log) = (store.clone(), order.clone());
    let claim = tokio::spawn(async move {
        let claimed = second
            .claim_next("w", ClaimScope::Any, Utc::now(), lease_for)
            .await
            .unwrap();
        assert!(claimed.is_some());
        log.lock().unwrap().push("containment claim");
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(held);
    ping.await.unwrap();
    claim.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["containment claim", "readiness"]);
    db.finish().await;
}

async fn take_lookup(
    store: &SqlStore,
    within: Option<Duration>,
    now: DateTime<Utc>,
) -> SlotOutcome {
    let take = SlotTake {
        now,
        ..slot_take("lookup_events", 500, within)
    };
    store.take_rate_slot(&take).await.unwrap()
}

async fn lower_priorities_do_not_book_ahead_of_containment(db: &TestDb) {
    let other = db.second_store().await;
    // A free schedule: a forensics call (reach 0) gets the slot now.
    let first = take_lookup(&other, Some(Duration::ZERO), soon(0)).await;
    assert_eq!(first, SlotOutcome::Granted(soon(0)));
    // Containment books the next three slots, up to 1.5 s ahead.
    for n in 1..=3 {
        let expected = soon(0) + chrono::Duration::milliseconds(500 * n);
        let booked = take_lookup(&db.store, None, soon(0)).await;
        assert_eq!(booked, SlotOutcome::Granted(expected));
    }
    // Neither a forensics nor a normal call (reach one interval) books behind them: they are
    // told when the schedule frees and ask again then.
    for within in [Duration::ZERO, Duration::from_millis(500)] {
        let refused = take_lookup(&other, Some(within), soon(0)).await;
        assert_eq!(refused, SlotOutcome::Busy { next_free: soon(2) });
    }
    // Once the schedule is within its reach, a normal call books the next slot.
    let now = soon(1) + chrono::Duration::milliseconds(600);
    let later = take_lookup(&other, Some(Duration::from_millis(500)), now).await;
    assert_eq!(later, SlotOutcome::Granted(soon(2)));
    other.pool.close().await;
}

/// PostgreSQL only (SQLite has one writer, so there every batch waits for every other): a
/// batch waits for a batch of its own keys, but neither for batches of other keys nor for
/// the worker's write lock, so intake batches commit in parallel.
#[tokio::test]
async fn on_postgres_a_batch_waits_only_for_batches_of_its_own_keys() {
    let db = TestDb::postgres().await;
    let pool = &db.store.pool;
    let keys = super::deliveries::lock_keys(&[leak(&key(1), "held")]);
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let held = Backend::Postgres.begin_keyed(pool, &keys).await.unwrap();
    let worker = Backend::Postgres.begin_write(pool).await.unwrap();

    let other = tokio::time::timeout(
        Duration::from_secs(30),
        db.store.record_deliveries(&[leak(&key(2), "free")]),
    )
    .await
    .expect("a batch of other keys waited for the held ones or the write lock")
    .unwrap();
    assert!(matches!(other[0], IntakeOutcome::Created(_)), "{other:?}");

    let store = Arc::clone(&db.store);
    let same =
        tokio::spawn(async move { store.record_deliveries(&[leak(&key(1), "waits")]).await });
    let waiting = "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while sqlx::query_scalar::<_, i64>(waiting)
        .fetch_one(pool)
        .await
        .unwrap()
        == 0
    {
        assert!(
            !same.is_finished(),
            "a batch of a held key went ahead: {:?}",
            same.await
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the batch never queued"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    held.rollback().await.unwrap();
    worker.rollback().await.unwrap();
    let outcome = same.await.unwrap().unwrap();
    assert!(
        matches!(outcome[0], IntakeOutcome::Created(_)),
        "{outcome:?}"
    );
    assert!(chain_faults(&db).await.is_empty());
    db.finish().await;
}

/// An audit row of the MFA sweep's job.
fn sweep_entry() -> AuditEntry {
    AuditEntry {
        incident_id: None,
        actor: "job:mfa_sweep:r1".into(),
        action: String::new(),
        detail: serde_json::Value::Null,
    }
}

/// The MFA sweep's job, taken by replica `r1` at `now`.
async fn sweep_lease(db: &TestDb, now: DateTime<Utc>) -> super::JobLease {
    db.store
        .acquire_job("mfa_sweep", "r1", now, Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap()
}
