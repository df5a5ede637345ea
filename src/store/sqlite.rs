//! SQLite: WAL, `synchronous=FULL` so a commit survives power loss, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};

use super::batch::{self, Heads, Known, OpenIncident, Plan};
use super::{
    ClaimScope, Claimed, Delivery, IncidentFilter, IncidentUpdate, IntakeOutcome, Lease,
    OperatorChange, OperatorError, Store, StoreError, Waiting, migrations,
};
use super::{
    DeliveryRecord, OutboxItem, OutboxState, OutboxVerdict, sqlite_audit, sqlite_outbox,
    sqlite_work,
};
use crate::domain::audit::AuditHead;
use crate::domain::notice::{Change, Route};
use crate::domain::{
    AccessKeyId, AuditEntry, AuditRecord, Event, Incident, IncidentId, IncidentState, OwnerType,
    Path, Sighting, Step,
};

const INCIDENT_COLUMNS: &str = "id, access_key_id, account_id, account_name, user_name, \
    owner_type, leak_url, detected_at, stated_detected_at, state, created_at, updated_at, closed_at, attempt, \
    next_attempt_at, lease_owner, lease_expires_at, path, reason, resume_step, step_attempts, \
    last_error, contained_at, settle_audit_at, parent_incident_id, findings, dry_run";
const AUDIT_COLUMNS: &str = "id, incident_id, at, actor, action, detail, prev_hash, hash";

pub struct SqliteStore {
    pool: SqlitePool,
    routes: Vec<Route>,
    /// Counts this process's commits that append audit rows or settle deliveries.
    commits: tokio::sync::watch::Sender<u64>,
}

/// Whether connecting may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    IfMissing,
    /// Tools that only read (`verify-audit`) must not turn a mistyped path into a new,
    /// empty, "intact" database.
    Never,
}

impl SqliteStore {
    pub async fn connect(
        url: &str,
        max_connections: u32,
        creation: Creation,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(creation == Creation::IfMissing)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let file = options.get_filename();
        let in_memory = file.as_os_str() == ":memory:";
        if !in_memory {
            match creation {
                Creation::IfMissing => create_private(file)?,
                Creation::Never if !file.exists() => {
                    return Err(StoreError::Missing(file.to_path_buf()));
                }
                Creation::Never => {}
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            routes: Vec::new(),
            commits: tokio::sync::watch::Sender::new(0),
        })
    }

    /// Which notifications each transition writes to the outbox.
    pub fn with_routes(self, routes: Vec<Route>) -> Self {
        Self { routes, ..self }
    }

    /// Tells the event streams that something was committed.
    fn committed(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Creates the database's missing directories (0700) and the empty database file (0600),
/// whatever the umask: the file holds incident details and the audit log. SQLite gives
/// the `-wal` and `-shm` files the database file's mode.
fn create_private(file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // The umask may have taken bits from the mode above; directories that already
        // existed are the operator's and keep theirs.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(created) => created.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// Reads what the batch's deliveries may refer to: earlier deliveries and open incidents.
async fn load_known(
    conn: &mut SqliteConnection,
    batch: &[Delivery],
    now: DateTime<Utc>,
) -> Result<Known, StoreError> {
    let mut known = Known::default();
    // A join on VALUES uses the (source, delivery_id) index; `IN (VALUES ...)` would scan.
    let mut replays =
        QueryBuilder::<Sqlite>::new("SELECT n.source, n.delivery_id, n.incident_id FROM (");
    replays.push_values(batch, |mut row, d| {
        row.push_bind(&d.source).push_bind(&d.delivery_id);
    });
    replays
        .push(") AS v JOIN notifications n ON n.source = v.column1 AND n.delivery_id = v.column2");
    for row in replays.build().fetch_all(&mut *conn).await? {
        known.replays.insert(
            (row.try_get("source")?, row.try_get("delivery_id")?),
            IncidentId(row.try_get("incident_id")?),
        );
    }
    // `busy`: leased now, or a disable of the key was intended (perhaps made, then a crash).
    let mut open = QueryBuilder::<Sqlite>::new(
        "SELECT i.access_key_id, i.id, i.state, i.reason, i.resume_step, i.path, i.detected_at, \
         (IFNULL(i.lease_expires_at, 0) > ",
    );
    open.push_bind(now.timestamp_millis()).push(
        " OR EXISTS (SELECT 1 FROM audit_log a WHERE a.incident_id = i.id \
         AND a.action IN ('cloud.intent', 'cloud.dry_run') \
         AND json_extract(a.detail, '$.api') = 'UpdateAccessKey')) AS busy \
         FROM incidents i WHERE i.closed_at IS NULL AND i.access_key_id IN ",
    );
    open.push_tuples(batch, |mut row, d| {
        row.push_bind(d.signal.access_key_id().as_str());
    });
    for row in open.build().fetch_all(&mut *conn).await? {
        let state: String = row.try_get("state")?;
        let reason: Option<String> = row.try_get("reason")?;
        let resume: Option<String> = row.try_get("resume_step")?;
        let path: Option<String> = row.try_get("path")?;
        let incident = OpenIncident {
            id: IncidentId(row.try_get("id")?),
            state: IncidentState::parse(&state, reason.as_deref(), resume.as_deref())
                .ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
            path: path.as_deref().and_then(Path::parse),
            detected_at: time(row.try_get("detected_at")?)?,
            busy: row.try_get("busy")?,
        };
        known.open.insert(row.try_get("access_key_id")?, incident);
    }
    Ok(known)
}

async fn load_heads(conn: &mut SqliteConnection) -> Result<Heads, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT IFNULL(MAX(id), 0) FROM incidents) AS incident, \
                (SELECT IFNULL(MAX(id), 0) FROM notifications) AS notification, \
                (SELECT IFNULL(MAX(id), 0) FROM sightings) AS sighting, \
                (SELECT last_id FROM audit_head) AS audit, \
                (SELECT last_hash FROM audit_head) AS audit_hash",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(Heads {
        incident: row.try_get("incident")?,
        notification: row.try_get("notification")?,
        sighting: row.try_get("sighting")?,
        audit: row
            .try_get::<Option<i64>, _>("audit")?
            .ok_or(StoreError::AuditAnchorMissing)?,
        audit_hash: row
            .try_get::<Option<String>, _>("audit_hash")?
            .ok_or(StoreError::AuditAnchorMissing)?,
    })
}

/// Writes a plan with one multi-row statement per table.
async fn write_plan(conn: &mut SqliteConnection, plan: &Plan<'_>) -> Result<(), StoreError> {
    if !plan.incidents.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO incidents (id, access_key_id, account_id, account_name, user_name, \
             owner_type, leak_url, detected_at, stated_detected_at, state, created_at, updated_at, \
             parent_incident_id) ",
        );
        q.push_values(&plan.incidents, |mut row, i| {
            row.push_bind(i.id.0)
                .push_bind(i.leak.access_key_id.as_str())
                .push_bind(&i.leak.account_id)
                .push_bind(&i.leak.account_name)
                .push_bind(&i.leak.user_name)
                .push_bind(i.leak.effective_owner_type().as_str())
                .push_bind(&i.leak.leak_url)
                .push_bind(i.detected_at.timestamp_millis())
                .push_bind(i.leak.stated_detected_at.map(|t| t.timestamp_millis()))
                .push_bind(IncidentState::Active(Step::Triage).as_str())
                .push_bind(i.created_at.timestamp_millis())
                .push_bind(i.created_at.timestamp_millis())
                .push_bind(i.parent.map(|p| p.0));
        });
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    if !plan.notifications.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO notifications (id, source, format, delivery_id, received_at, \
             body_sha256, kind, access_key_id, event_id, normalized, outcome, incident_id) ",
        );
        q.push_values(&plan.notifications, |mut row, n| {
            let d = n.delivery;
            row.push_bind(n.id)
                .push_bind(&d.source)
                .push_bind(d.format)
                .push_bind(&d.delivery_id)
                .push_bind(d.received_at.timestamp_millis())
                .push_bind(&d.body_sha256)
                .push_bind(n.kind)
                .push_bind(d.signal.access_key_id().as_str())
                .push_bind(d.signal.event_id())
                .push_bind(&n.normalized)
                .push_bind(n.outcome)
                .push_bind(n.incident.0);
        });
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    if !plan.sightings.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO sightings (id, incident_id, notification_id, source, kind, observed_at, detail) ",
        );
        q.push_values(&plan.sightings, |mut row, s| {
            row.push_bind(s.id)
                .push_bind(s.incident.0)
                .push_bind(s.notification)
                .push_bind(s.source)
                .push_bind(s.kind)
                .push_bind(s.observed_at.timestamp_millis())
                .push_bind(&s.detail);
        });
        q.build().persistent(false).execute(&mut *conn).await?;
        for (incident, at) in &plan.touched {
            sqlx::query("UPDATE incidents SET updated_at = MAX(updated_at, ?) WHERE id = ?")
                .bind(at.timestamp_millis())
                .bind(incident.0)
                .execute(&mut *conn)
                .await?;
        }
    }
    for retriage in &plan.retriages {
        // The plan was made under this transaction's write lock; the guard on the state only
        // restates the condition it checked.
        sqlx::query(
            "UPDATE incidents SET state = ?, reason = NULL, resume_step = NULL, path = NULL, \
             detected_at = ?, stated_detected_at = ?, next_attempt_at = NULL, step_attempts = 0, \
             last_error = NULL WHERE id = ? AND state = ?",
        )
        .bind(retriage.to.as_str())
        .bind(retriage.detected_at.timestamp_millis())
        .bind(
            retriage
                .leak
                .stated_detected_at
                .map(|t| t.timestamp_millis()),
        )
        .bind(retriage.incident.0)
        .bind(retriage.from.as_str())
        .execute(&mut *conn)
        .await?;
    }
    if !plan.audit.is_empty() {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO audit_log (id, incident_id, at, actor, action, detail, prev_hash, hash) ",
        );
        q.push_values(&plan.audit, |mut row, a| {
            row.push_bind(a.id)
                .push_bind(a.incident_id.map(|i| i.0))
                .push_bind(a.at.timestamp_millis())
                .push_bind(&a.actor)
                .push_bind(&a.action)
                .push_bind(&a.detail_json)
                .push_bind(&a.prev_hash)
                .push_bind(&a.hash);
        });
        q.build().persistent(false).execute(&mut *conn).await?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        migrations::sqlite().run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn record_deliveries(
        &self,
        batch: &[Delivery],
    ) -> Result<Vec<IntakeOutcome>, StoreError> {
        // IMMEDIATE takes the write lock before the reads the plan depends on, so no other
        // writer can change them between the reads and the writes.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let known = load_known(&mut tx, batch, Utc::now()).await?;
        let heads = load_heads(&mut tx).await?;
        let plan = batch::plan(batch, known, heads);
        write_plan(&mut tx, &plan).await?;
        for n in plan.notifications.iter().filter(|n| n.outcome == "created") {
            let change = Change {
                after: Some(IncidentState::Active(Step::Triage)),
                source: Some(n.delivery.source.clone()),
                parent: n.delivery.parent,
                ..Change::default()
            };
            let at = n.delivery.received_at;
            sqlite_outbox::enqueue(&mut tx, &self.routes, n.incident, &change, at).await?;
        }
        tx.commit().await?;
        self.committed();
        Ok(plan.outcomes)
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1");
        if filter.state.is_some() {
            sql.push_str(" AND state = ?");
        }
        if filter.access_key_id.is_some() {
            sql.push_str(" AND access_key_id = ?");
        }
        if filter.waiting == Some(Waiting::Operator) {
            sql.push_str(
                " AND (state = 'awaiting_operator' OR \
                 (state = 'needs_attention' AND reason <> 'approval_timed_out'))",
            );
        }
        if filter.waiting == Some(Waiting::Approval) {
            // The current step's approval request, unanswered; or one that timed out.
            sql.push_str(
                " AND ((state = 'needs_attention' AND reason = 'approval_timed_out') OR \
                 approval_pending = CASE state WHEN 'new' THEN 'triage' ELSE state END)",
            );
        }
        if filter.before.is_some() {
            sql.push_str(" AND id < ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some(state) = &filter.state {
            query = query.bind(state);
        }
        if let Some(key) = &filter.access_key_id {
            query = query.bind(key);
        }
        if let Some(before) = filter.before {
            query = query.bind(before.0);
        }
        let rows = query.bind(filter.limit).fetch_all(&self.pool).await?;
        rows.iter().map(incident_from_row).collect()
    }

    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    async fn list_sightings(&self, id: IncidentId) -> Result<Vec<Sighting>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, incident_id, source, kind, observed_at, detail FROM sightings \
             WHERE incident_id = ? ORDER BY id",
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
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE incident_id = ? ORDER BY id"
        ))
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_page(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError> {
        sqlite_audit::audit_head(&self.pool).await
    }

    async fn missing_audit_guards(&self) -> Result<Vec<String>, StoreError> {
        sqlite_audit::missing_audit_guards(&self.pool).await
    }

    async fn delivery_ids(&self, id: IncidentId, source: &str) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT delivery_id FROM notifications WHERE incident_id = ? AND source = ? ORDER BY id")
                .bind(id.0)
                .bind(source)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn mark(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM poller_marks WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn set_mark(&self, name: &str, value: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO poller_marks (name, value, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_next(
        &self,
        owner: &str,
        scope: ClaimScope,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let columns = (INCIDENT_COLUMNS, incident_from_row as fn(&SqliteRow) -> _);
        sqlite_work::claim_next(&self.pool, columns, owner, scope, now, lease_for).await
    }

    async fn extend_lease(&self, lease: &Lease, until: DateTime<Utc>) -> Result<(), StoreError> {
        sqlite_work::extend_lease(&self.pool, lease, until).await
    }

    async fn record(
        &self,
        lease: &Lease,
        update: IncidentUpdate,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError> {
        sqlite_work::record(&self.pool, &self.routes, lease, update, audit).await?;
        self.committed();
        Ok(())
    }

    async fn apply_operator_event(
        &self,
        id: IncidentId,
        event: Event,
        actor: &str,
        change: OperatorChange,
    ) -> Result<IncidentState, OperatorError> {
        let state =
            sqlite_work::apply_operator_event(&self.pool, &self.routes, id, event, actor, change)
                .await?;
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
        sqlite_outbox::claim(&self.pool, owner, now, lease_for, limit).await
    }

    async fn settle_outbox(
        &self,
        item: &OutboxItem,
        verdict: &OutboxVerdict,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let counted = sqlite_outbox::settle_one(&mut tx, item, verdict, now).await?;
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
        let kept = sqlite_outbox::settle(&self.pool, settled, now).await?;
        if kept.contains(&true) {
            self.committed();
        }
        Ok(kept)
    }

    async fn incident_outbox(&self, id: IncidentId) -> Result<Vec<OutboxState>, StoreError> {
        sqlite_outbox::for_incident(&self.pool, id).await
    }

    async fn tally(&self) -> Result<super::Tally, StoreError> {
        super::tally::read(&self.pool).await
    }

    async fn delivery_page(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        sqlite_outbox::deliveries_after(&self.pool, after, limit).await
    }

    async fn last_delivery(&self) -> Result<i64, StoreError> {
        sqlite_outbox::last_delivery(&self.pool).await
    }

    fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }
}

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

fn incident_from_row(row: &SqliteRow) -> Result<Incident, StoreError> {
    let key: String = row.try_get("access_key_id")?;
    let owner: String = row.try_get("owner_type")?;
    let state: String = row.try_get("state")?;
    let reason: Option<String> = row.try_get("reason")?;
    let resume: Option<String> = row.try_get("resume_step")?;
    let path: Option<String> = row.try_get("path")?;
    let findings: String = row.try_get("findings")?;
    Ok(Incident {
        id: IncidentId(row.try_get("id")?),
        access_key_id: AccessKeyId::parse(&key).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        account_id: row.try_get("account_id")?,
        account_name: row.try_get("account_name")?,
        user_name: row.try_get("user_name")?,
        owner_type: OwnerType::parse(&owner)
            .ok_or_else(|| StoreError::Corrupt(format!("owner_type {owner}")))?,
        leak_url: row.try_get("leak_url")?,
        detected_at: time(row.try_get("detected_at")?)?,
        stated_detected_at: opt_time(row.try_get("stated_detected_at")?)?,
        state: IncidentState::parse(&state, reason.as_deref(), resume.as_deref())
            .ok_or_else(|| StoreError::Corrupt(format!("state {state} ({reason:?})")))?,
        path: path
            .map(|p| Path::parse(&p).ok_or_else(|| StoreError::Corrupt(format!("path {p}"))))
            .transpose()?,
        created_at: time(row.try_get("created_at")?)?,
        updated_at: time(row.try_get("updated_at")?)?,
        closed_at: opt_time(row.try_get("closed_at")?)?,
        attempt: row.try_get("attempt")?,
        step_attempts: row.try_get::<i64, _>("step_attempts")? as u32,
        next_attempt_at: opt_time(row.try_get("next_attempt_at")?)?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time(row.try_get("lease_expires_at")?)?,
        contained_at: opt_time(row.try_get("contained_at")?)?,
        settle_audit_at: opt_time(row.try_get("settle_audit_at")?)?,
        parent_incident_id: row
            .try_get::<Option<i64>, _>("parent_incident_id")?
            .map(IncidentId),
        last_error: row.try_get("last_error")?,
        findings: serde_json::from_str(&findings)
            .map_err(|e| StoreError::Corrupt(format!("findings: {e}")))?,
        dry_run: row.try_get::<i64, _>("dry_run")? != 0,
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        incident_id: row
            .try_get::<Option<i64>, _>("incident_id")?
            .map(IncidentId),
        at: time(row.try_get("at")?)?,
        actor: row.try_get("actor")?,
        action: row.try_get("action")?,
        detail_json: row.try_get("detail")?,
        prev_hash: row.try_get("prev_hash")?,
        hash: row.try_get("hash")?,
    })
}
