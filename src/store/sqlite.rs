//! SQLite: WAL, `synchronous=FULL` so a commit survives power loss, foreign keys on.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::{Delivery, IncidentFilter, IntakeOutcome, Store, StoreError, migrations};
use crate::domain::audit::{GENESIS_HASH, chain_hash};
use crate::domain::{
    AccessKeyId, AuditEntry, AuditRecord, Incident, IncidentId, IncidentState, OwnerType, Sighting,
    Signal,
};

const INCIDENT_COLUMNS: &str = "id, access_key_id, account_id, account_name, user_name, \
    owner_type, leak_url, detected_at, state, created_at, updated_at, closed_at, attempt, \
    next_attempt_at, lease_owner, lease_expires_at";
const AUDIT_COLUMNS: &str = "id, incident_id, at, actor, action, detail, prev_hash, hash";

pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(dir) = options.get_filename().parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }
}

/// The head of the audit chain inside a write transaction.
struct ChainHead {
    id: i64,
    hash: String,
}

impl ChainHead {
    async fn load(conn: &mut SqliteConnection) -> Result<Self, StoreError> {
        let row = sqlx::query("SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *conn)
            .await?;
        Ok(match row {
            Some(row) => Self {
                id: row.try_get("id")?,
                hash: row.try_get("hash")?,
            },
            None => Self {
                id: 0,
                hash: GENESIS_HASH.to_owned(),
            },
        })
    }

    async fn append(
        &mut self,
        conn: &mut SqliteConnection,
        at: DateTime<Utc>,
        entry: AuditEntry,
    ) -> Result<(), StoreError> {
        let id = self.id + 1;
        let detail = entry.detail.to_string();
        let hash = chain_hash(
            &self.hash,
            id,
            entry.incident_id,
            at,
            &entry.actor,
            &entry.action,
            &detail,
        );
        sqlx::query(
            "INSERT INTO audit_log (id, incident_id, at, actor, action, detail, prev_hash, hash) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(entry.incident_id.map(|i| i.0))
        .bind(at.timestamp_millis())
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&detail)
        .bind(&self.hash)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        self.id = id;
        self.hash = hash;
        Ok(())
    }
}

async fn record_one(
    conn: &mut SqliteConnection,
    chain: &mut ChainHead,
    d: &Delivery,
) -> Result<IntakeOutcome, StoreError> {
    let replay =
        sqlx::query("SELECT incident_id FROM notifications WHERE source = ? AND delivery_id = ?")
            .bind(&d.source)
            .bind(&d.delivery_id)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(row) = replay {
        return Ok(IntakeOutcome::Replay(IncidentId(
            row.try_get("incident_id")?,
        )));
    }
    let key = d.signal.access_key_id().as_str();
    let open: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM incidents WHERE access_key_id = ? AND closed_at IS NULL",
    )
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let now = d.received_at.timestamp_millis();
    let outcome = match (&d.signal, open) {
        (_, Some(id)) => IntakeOutcome::Sighting(IncidentId(id)),
        (Signal::Leak(n), None) => {
            let detected = n.detected_at.unwrap_or(d.received_at).timestamp_millis();
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO incidents (access_key_id, account_id, account_name, user_name, \
                 owner_type, leak_url, detected_at, state, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(key)
            .bind(&n.account_id)
            .bind(&n.account_name)
            .bind(&n.user_name)
            .bind(n.effective_owner_type().as_str())
            .bind(&n.leak_url)
            .bind(detected)
            .bind(IncidentState::New.as_str())
            .bind(now)
            .bind(now)
            .fetch_one(&mut *conn)
            .await?;
            IntakeOutcome::Created(IncidentId(id))
        }
        (Signal::Activity(_), None) => return Ok(IntakeOutcome::Ignored),
    };
    let (incident, outcome_name) = match outcome {
        IntakeOutcome::Created(id) => (id, "created"),
        IntakeOutcome::Sighting(id) => (id, "sighting"),
        IntakeOutcome::Replay(_) | IntakeOutcome::Ignored => unreachable!("returned above"),
    };
    let (kind, detail) = match &d.signal {
        Signal::Leak(n) => ("leak", serde_json::to_value(n)),
        Signal::Activity(a) => ("activity", serde_json::to_value(a)),
    };
    let detail = detail.map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let notification_id: i64 = sqlx::query_scalar(
        "INSERT INTO notifications (source, format, delivery_id, received_at, body_sha256, kind, \
         access_key_id, event_id, normalized, outcome, incident_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
    )
    .bind(&d.source)
    .bind(d.format)
    .bind(&d.delivery_id)
    .bind(now)
    .bind(&d.body_sha256)
    .bind(kind)
    .bind(key)
    .bind(d.signal.event_id())
    .bind(detail.to_string())
    .bind(outcome_name)
    .bind(incident.0)
    .fetch_one(&mut *conn)
    .await?;
    let audit = match outcome {
        IntakeOutcome::Created(_) => AuditEntry {
            incident_id: Some(incident),
            actor: d.actor.clone(),
            action: "incident.opened".into(),
            detail: serde_json::json!({
                "notification_id": notification_id,
                "source": d.source,
                "delivery_id": d.delivery_id,
                "leak": detail,
            }),
        },
        _ => {
            let (sighting_kind, observed) = match &d.signal {
                Signal::Leak(n) => ("report", n.detected_at),
                Signal::Activity(a) => ("activity", a.event_time),
            };
            let observed = observed.unwrap_or(d.received_at).timestamp_millis();
            let sighting_id: i64 = sqlx::query_scalar(
                "INSERT INTO sightings (incident_id, notification_id, source, kind, observed_at, detail) \
                 VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            )
            .bind(incident.0)
            .bind(notification_id)
            .bind(&d.source)
            .bind(sighting_kind)
            .bind(observed)
            .bind(detail.to_string())
            .fetch_one(&mut *conn)
            .await?;
            sqlx::query("UPDATE incidents SET updated_at = ? WHERE id = ?")
                .bind(now)
                .bind(incident.0)
                .execute(&mut *conn)
                .await?;
            AuditEntry {
                incident_id: Some(incident),
                actor: d.actor.clone(),
                action: "incident.sighting".into(),
                detail: serde_json::json!({
                    "notification_id": notification_id,
                    "sighting_id": sighting_id,
                    "kind": sighting_kind,
                    "source": d.source,
                    "delivery_id": d.delivery_id,
                }),
            }
        }
    };
    chain.append(conn, d.received_at, audit).await?;
    Ok(outcome)
}

#[async_trait]
impl Store for SqliteStore {
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
        // IMMEDIATE takes the write lock up front: a deferred transaction that reads the chain
        // head and then writes could lose the lock to another writer and fail mid-batch.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut chain = ChainHead::load(&mut tx).await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            outcomes.push(record_one(&mut tx, &mut chain, delivery).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let mut sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE 1 = 1");
        if filter.state.is_some() {
            sql.push_str(" AND state = ?");
        }
        if filter.access_key_id.is_some() {
            sql.push_str(" AND access_key_id = ?");
        }
        if filter.before.is_some() {
            sql.push_str(" AND id < ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let mut query = sqlx::query(&sql);
        if let Some(state) = filter.state {
            query = query.bind(state.as_str());
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
        state: IncidentState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
        created_at: time(row.try_get("created_at")?)?,
        updated_at: time(row.try_get("updated_at")?)?,
        closed_at: opt_time(row.try_get("closed_at")?)?,
        attempt: row.try_get("attempt")?,
        next_attempt_at: opt_time(row.try_get("next_attempt_at")?)?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time(row.try_get("lease_expires_at")?)?,
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
