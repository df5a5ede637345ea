//! `SqlStore`: the one implementation of `Store`, on SQLite or PostgreSQL through sqlx's
//! `Any` driver. Statements are written once, with `$N` placeholders both backends read;
//! where the SQL differs, `Backend` supplies the fragment.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use super::backend::{Backend, Creation};
use super::checkpoint::Checkpointer;
use super::parked;
use super::rows::{AUDIT_COLUMNS, INCIDENT_COLUMNS, audit_from_row, scheduled_from_row, time};
use super::sql::Sql;
use super::turns::{Turn, Urgency, WriteTurns};
use super::{
    AuditBatch, BatchMember, BatchSeat, ClaimScope, Claimed, ConsoleSession, Delivery,
    DeliveryRecord, Durability, IncidentFilter, IncidentUpdate, IntakeOutcome, JobHolder, JobLease,
    Lease, MfaSweep, OperatorChange, OperatorError, OutboxItem, OutboxState, OutboxVerdict,
    Replica, ScheduleChange, Scheduled, SlotOutcome, SlotTake, Store, StoreError, SweepUser, Tally,
    Waiting, audit_log, deliveries, jobs, outbox_queue, rate_slots, sessions, sweeps, tally,
    trail_batches, work,
};
use crate::domain::audit::AuditHead;
use crate::domain::notice::Route;
use crate::domain::{AuditEntry, AuditRecord, Event, IncidentId, IncidentState, Sighting};

pub struct SqlStore {
    pub(super) pool: AnyPool,
    /// Where writes go that need not survive a power loss, `Durability::Deferred` ones (see
    /// `Backend::connect_volatile`); `None` where they share `pool`.
    volatile: Option<AnyPool>,
    pub(super) backend: Backend,
    routes: Vec<Route>,
    intake_writers: usize,
    /// SQLite's writers' turns at its one write lock; `None` on PostgreSQL.
    turns: Option<WriteTurns>,
    /// Counts this process's commits that append audit rows or settle deliveries.
    commits: tokio::sync::watch::Sender<u64>,
    /// Copies SQLite's log into the database file while the store is open; `None` where
    /// there is none.
    _checkpointer: Option<Checkpointer>,
}

impl SqlStore {
    /// Connects to the database `url` names by its scheme (`sqlite:` or `postgres:`).
    pub async fn connect(
        url: &str,
        max_connections: u32,
        creation: Creation,
    ) -> Result<Self, StoreError> {
        let backend = Backend::of(url)?;
        let pool = backend.connect(url, max_connections, creation).await?;
        let volatile = backend.connect_volatile(url).await?;
        let checkpointer = Checkpointer::start(backend, url).await?;
        // PostgreSQL: one connection is left to the worker, the sender and the API.
        let intake_writers = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => max_connections.saturating_sub(1).max(1) as usize,
        };
        Ok(Self {
            pool,
            volatile,
            backend,
            routes: Vec::new(),
            intake_writers,
            turns: (backend == Backend::Sqlite).then(WriteTurns::default),
            commits: tokio::sync::watch::Sender::new(0),
            _checkpointer: checkpointer,
        })
    }

    /// Which notifications each transition writes to the outbox.
    pub fn with_routes(self, routes: Vec<Route>) -> Self {
        Self { routes, ..self }
    }

    /// Waits for this writer's turn at SQLite's write lock (see `turns`).
    pub(super) async fn turn(&self, urgency: Urgency) -> Option<Turn<'_>> {
        match &self.turns {
            Some(turns) => Some(turns.take(urgency).await),
            None => None,
        }
    }

    async fn record_in_turn(
        &self,
        urgency: Urgency,
        lease: &Lease,
        update: IncidentUpdate,
        schedule: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        let _turn = self.turn(urgency).await;
        let (pool, backend, routes) = (&self.pool, self.backend, &self.routes);
        work::record(pool, backend, routes, lease, update, schedule, audit).await?;
        self.committed();
        Ok(())
    }

    /// Where a write of this durability goes.
    fn pool_for(&self, durability: Durability) -> &AnyPool {
        match (durability, &self.volatile) {
            (Durability::Deferred, Some(volatile)) => volatile,
            _ => &self.pool,
        }
    }

    /// Tells the event streams that something was committed.
    fn committed(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        self.backend.name()
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        self.backend.migrator().run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite {
            // While another process holds SQLite's write lock, reads still answer but nothing
            // commits (and this process's writers wait their turn, holding no connection), so
            // readiness takes the write lock itself and gives it straight back.
            let _turn = self.turn(Urgency::Other).await;
            let tx = self.backend.begin_write(&self.pool).await?;
            tx.rollback().await?;
            return Ok(());
        }
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn intake_writers(&self) -> usize {
        self.intake_writers
    }

    async fn record_deliveries(
        &self,
        batch: &[Delivery],
    ) -> Result<Vec<IntakeOutcome>, StoreError> {
        // A new incident's containment starts only once it is recorded.
        let _turn = self.turn(Urgency::Containment).await;
        // The batch's locks are taken before the reads the plan depends on, so no other
        // writer of its keys can change them between the reads and the writes.
        let keys = deliveries::lock_keys(batch);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let mut tx = self.backend.begin_keyed(&self.pool, &keys).await?;
        let outcomes = deliveries::record(&mut tx, self.backend, &self.routes, batch).await?;
        tx.commit().await?;
        self.committed();
        Ok(outcomes)
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Scheduled>, StoreError> {
        let mut q = Sql::new(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1"
        ));
        if let Some(state) = &filter.state {
            q.push(" AND state = ").bind(state.clone());
        }
        if let Some(key) = &filter.access_key_id {
            q.push(" AND access_key_id = ").bind(key.clone());
        }
        if filter.waiting == Some(Waiting::Operator) {
            q.push(
                " AND (state = 'awaiting_operator' OR \
                 (state = 'needs_attention' AND reason <> 'approval_timed_out'))",
            );
        }
        if filter.waiting == Some(Waiting::Approval) {
            // The current step's approval request, unanswered; or one that timed out.
            q.push(
                " AND ((state = 'needs_attention' AND reason = 'approval_timed_out') OR \
                 approval_pending = CASE state WHEN 'new' THEN 'triage' ELSE state END)",
            );
        }
        if let Some(before) = filter.before {
            q.push(" AND id < ").bind(before.0);
        }
        q.push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(filter.limit));
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(scheduled_from_row).collect()
    }

    async fn get_incident(&self, id: IncidentId) -> Result<Option<Scheduled>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(scheduled_from_row).transpose()
    }

    async fn get_incidents(&self, ids: &[IncidentId]) -> Result<Vec<Scheduled>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id IN ("
        ));
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.bind(id.0);
        }
        q.push(")");
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(scheduled_from_row).collect()
    }

    async fn list_sightings(&self, id: IncidentId) -> Result<Vec<Sighting>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, source, kind, observed_at, detail FROM sightings \
             WHERE incident_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let detail: String = row.try_get("detail")?;
                Ok(Sighting {
                    id: row.try_get("id")?,
                    incident_id: IncidentId(row.try_get("incident_id")?),
                    source: row.try_get("source")?,
                    kind: row.try_get("kind")?,
                    observed_at: time(row.try_get("observed_at")?)?,
                    detail: serde_json::from_str(&detail)
                        .map_err(|e| StoreError::Corrupt(format!("sighting detail: {e}")))?,
                })
            })
            .collect()
    }

    async fn incident_audit(&self, id: IncidentId) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE incident_id = $1 ORDER BY id"
        ))
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_page(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        audit_log::audit_head(&self.pool, self.backend).await
    }

    async fn missing_audit_guards(&self) -> Result<Vec<String>, StoreError> {
        audit_log::missing_audit_guards(&self.pool, self.backend).await
    }

    async fn delivery_ids(&self, id: IncidentId, source: &str) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT delivery_id FROM notifications WHERE incident_id = $1 AND source = $2 \
             ORDER BY id",
        )
        .bind(id.0)
        .bind(source)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn mark(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM poller_marks WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_mark(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        sqlx::query(
            "INSERT INTO poller_marks (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_next(
        &self,
        owner: &str,
        scope: ClaimScope,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        // On SQLite a claim takes the write lock even when it finds nothing, and a wake-up
        // sets every idle worker claiming at once: each first looks without the lock, one at a
        // time, so a new incident costs one claim rather than one per worker. A containment
        // step is claimed before the next worker looks; the others' claims wait their turn
        // without holding up the looks, and each takes whatever is left when its turn comes.
        // PostgreSQL's claims skip the rows others are taking and commit in parallel.
        let (_claiming, urgency) = match &self.turns {
            Some(turns) => {
                let claiming = turns.claim_look.lock().await;
                match work::claimable(&self.pool, self.backend, scope, now).await? {
                    None => return Ok(None),
                    Some(true) => (Some(claiming), Urgency::Containment),
                    Some(false) => (None, Urgency::Other),
                }
            }
            None => (None, Urgency::Other),
        };
        let _turn = self.turn(urgency).await;
        work::claim_next(&self.pool, self.backend, owner, scope, now, lease_for).await
    }

    async fn extend_lease(&self, lease: &Lease, until: DateTime<Utc>) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        work::extend_lease(&self.pool, lease, until).await
    }

    async fn record(
        &self,
        lease: &Lease,
        update: IncidentUpdate,
        schedule: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        self.record_in_turn(Urgency::Other, lease, update, schedule, audit)
            .await
    }

    async fn record_before_call(
        &self,
        lease: &Lease,
        update: IncidentUpdate,
        schedule: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        self.record_in_turn(Urgency::CallWaits, lease, update, schedule, audit)
            .await
    }

    async fn apply_operator_event(
        &self,
        id: IncidentId,
        event: Event,
        actor: &str,
        change: OperatorChange,
    ) -> Result<IncidentState, OperatorError> {
        let _turn = self.turn(Urgency::Other).await;
        let (pool, backend, routes) = (&self.pool, self.backend, &self.routes);
        let state =
            work::apply_operator_event(pool, backend, routes, id, event, actor, change).await?;
        self.committed();
        Ok(state)
    }

    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        outbox_queue::claim(&self.pool, owner, now, lease_for, limit).await
    }

    async fn settle_outbox(
        &self,
        item: &OutboxItem,
        verdict: &OutboxVerdict,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        let mut tx = self.backend.begin_settle(&self.pool).await?;
        let counted = outbox_queue::settle_one(&mut tx, item, verdict, now).await?;
        tx.commit().await?;
        if counted {
            self.committed();
        }
        Ok(counted)
    }

    async fn settle_outbox_all(
        &self,
        settled: &[(OutboxItem, OutboxVerdict)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        let kept = outbox_queue::settle(&self.pool, self.backend, settled, now).await?;
        if kept.contains(&true) {
            self.committed();
        }
        Ok(kept)
    }

    async fn incident_outbox(&self, id: IncidentId) -> Result<Vec<OutboxState>, StoreError> {
        outbox_queue::for_incident(&self.pool, id).await
    }

    async fn tally(&self) -> Result<Tally, StoreError> {
        tally::read(&self.pool).await
    }

    async fn delivery_page(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        outbox_queue::deliveries_after(&self.pool, after, limit).await
    }

    async fn last_delivery(&self) -> Result<i64, StoreError> {
        outbox_queue::last_delivery(&self.pool).await
    }

    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    async fn open_session(
        &self,
        session: &ConsoleSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        sessions::open(&self.pool, session, now).await
    }

    async fn find_session(
        &self,
        secret_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        sessions::find(&self.pool, secret_sha256, now).await
    }

    async fn close_session(&self, secret_sha256: &str) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        sessions::close(&self.pool, secret_sha256).await
    }

    async fn acquire_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<Option<JobLease>, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        jobs::acquire(&self.pool, name, holder, now, lease_for).await
    }

    async fn renew_job(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        lease_for: Duration,
    ) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        jobs::renew(&self.pool, lease, now, lease_for).await
    }

    async fn release_job(&self, lease: &JobLease) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        jobs::release(&self.pool, lease).await
    }

    async fn job_holders(&self, now: DateTime<Utc>) -> Result<Vec<JobHolder>, StoreError> {
        jobs::holders(&self.pool, now).await
    }

    async fn record_replica(&self, replica: &Replica) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        jobs::record_replica(&self.pool, replica).await
    }

    async fn remove_replica(&self, id: &str) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        jobs::remove_replica(&self.pool, id).await
    }

    async fn replicas_since(&self, since: DateTime<Utc>) -> Result<Vec<Replica>, StoreError> {
        jobs::replicas_since(&self.pool, since).await
    }

    async fn join_mfa_sweep(
        &self,
        account: &str,
        incident: IncidentId,
        opened_at: DateTime<Utc>,
        user: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<MfaSweep, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        let joining = sweeps::Joining {
            account,
            incident,
            opened_at,
            user,
        };
        sweeps::join(&self.pool, self.backend, joining, now).await
    }

    async fn next_mfa_sweep(&self, account: &str) -> Result<Option<MfaSweep>, StoreError> {
        sweeps::next(&self.pool, account).await
    }

    async fn mfa_sweep_of(&self, incident: IncidentId) -> Result<Option<MfaSweep>, StoreError> {
        sweeps::of_incident(&self.pool, incident).await
    }

    async fn mfa_sweep_users(&self, sweep: i64) -> Result<Vec<SweepUser>, StoreError> {
        sweeps::users(&self.pool, sweep).await
    }

    async fn start_mfa_sweep(
        &self,
        lease: &JobLease,
        sweep: i64,
        users: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        sweeps::start(&self.pool, self.backend, lease, sweep, users, now).await
    }

    async fn save_sweep_user(
        &self,
        lease: &JobLease,
        sweep: i64,
        user: &SweepUser,
        audit: Vec<AuditEntry>,
        now: DateTime<Utc>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        let appends = !audit.is_empty();
        let pool = self.pool_for(durability);
        sweeps::save_user(pool, self.backend, lease, sweep, user, audit, now).await?;
        if appends {
            self.committed();
        }
        Ok(())
    }

    async fn finish_mfa_sweep(
        &self,
        lease: &JobLease,
        sweep: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        sweeps::finish(&self.pool, self.backend, lease, sweep, now).await
    }

    async fn wake_mfa_waiters(&self, sweep: i64, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        parked::wake(&self.pool, self.backend, &sweeps::SWEEP_WAITERS, sweep, now).await
    }

    async fn join_audit_batch(
        &self,
        account: &str,
        incident: IncidentId,
        access_key_id: &str,
        window_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<BatchSeat, StoreError> {
        let joining = trail_batches::Joining {
            account,
            incident,
            access_key_id,
            window_start,
        };
        let _turn = self.turn(Urgency::Other).await;
        trail_batches::join(&self.pool, self.backend, joining, now).await
    }

    async fn next_audit_batch(&self, account: &str) -> Result<Option<AuditBatch>, StoreError> {
        trail_batches::next(&self.pool, account).await
    }

    async fn start_audit_batch(
        &self,
        lease: &JobLease,
        batch: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<BatchMember>, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        trail_batches::start(&self.pool, self.backend, lease, batch, now).await
    }

    async fn finish_audit_batch(
        &self,
        lease: &JobLease,
        batch: i64,
        events: Option<&HashMap<IncidentId, Vec<serde_json::Value>>>,
        audit: Vec<AuditEntry>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        let appends = !audit.is_empty();
        trail_batches::finish(&self.pool, self.backend, lease, batch, events, audit, now).await?;
        if appends {
            self.committed();
        }
        Ok(())
    }

    async fn wake_audit_waiters(&self, batch: i64, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let _turn = self.turn(Urgency::Other).await;
        parked::wake(
            &self.pool,
            self.backend,
            &trail_batches::BATCH_WAITERS,
            batch,
            now,
        )
        .await
    }

    async fn take_rate_slot(&self, take: &SlotTake<'_>) -> Result<SlotOutcome, StoreError> {
        // The call is held until its slot is taken, as it is for its intent; but a schedule
        // lost with the machine's power is worthless anyway, so the slot is not synced to disk.
        let _turn = self.turn(Urgency::CallWaits).await;
        let pool = self.pool_for(Durability::Deferred);
        rate_slots::take(pool, self.backend, take).await
    }
}
