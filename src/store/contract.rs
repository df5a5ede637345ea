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
use super::{
    ClaimScope, Delivery, IncidentFilter, IncidentUpdate, IntakeOutcome, OperatorChange,
    OperatorError, SlotOutcome, SlotTake, SqlStore, Store, StoreError, verify_audit_chain,
};
use crate::domain::audit::ChainFault;
use crate::domain::findings::{Cancel, Finding, FindingsPatch, Triage};
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
    concurrent_writers_keep_the_audit_chain_intact,
    incidents_and_audit_rows_page_without_gaps_or_repeats,
    the_audit_log_refuses_updates_and_deletes,
    an_edited_row_breaks_the_chain,
    a_removed_middle_row_breaks_the_chain,
    a_removed_tail_is_caught_by_the_anchor,
    an_emptied_log_is_caught_by_the_anchor,
    a_missing_trigger_is_named,
    two_stores_on_one_database_never_hand_out_two_slots_within_an_interval,
    lower_priorities_do_not_book_ahead_of_containment,
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
        release: true,
        ..IncidentUpdate::default()
    };
    let refused = db
        .store
        .record(&stale.lease, update(), vec![entry("stale.write")])
        .await;
    assert!(matches!(refused, Err(StoreError::LeaseLost(i)) if i == id));
    let extended = db.store.extend_lease(&stale.lease, later).await;
    assert!(matches!(extended, Err(StoreError::LeaseLost(_))));
    db.store
        .extend_lease(&current.lease, later + chrono::Duration::seconds(30))
        .await
        .unwrap();
    db.store
        .record(&current.lease, update(), vec![entry("current.write")])
        .await
        .unwrap();
    let audit = db.store.incident_audit(id).await.unwrap();
    let actions: Vec<_> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, ["incident.opened", "current.write"]);
    let incident = db.store.get_incident(id).await.unwrap().unwrap();
    let triage = incident
        .findings
        .triage
        .expect("the current worker's findings");
    assert_eq!(triage.user_name.as_deref(), Some("by-test"));
    assert_eq!(incident.lease_owner, None, "released");
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
    let incident = db.store.get_incident(ids[0]).await.unwrap().unwrap();
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
    incidents.iter().map(|i| i.id).collect()
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
        before = Some(last.id);
        pages.push(page.iter().map(|i| i.id).collect::<Vec<_>>());
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
        lead: Duration::from_millis(20),
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
