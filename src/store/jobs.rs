//! Replicas and their singleton jobs: the lease that lets one replica at a time run a piece
//! of account-wide work, and the heartbeat rows `GET /v1/status` lists.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};

use super::StoreError;
use super::rows::time;

/// One replica's hold on a singleton job. Writes made under it check the holder and token,
/// so a replica whose lease lapsed and was taken over cannot change anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobLease {
    pub name: String,
    pub holder: String,
    /// Grows with every change of holder.
    pub token: i64,
}

/// Who holds a singleton job, as the status API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobHolder {
    pub name: String,
    pub holder: String,
    pub token: i64,
    pub expires_at: DateTime<Utc>,
}

/// A running daemon, as it registers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    /// The host name the operating system reports.
    pub host: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// The Alibaba Cloud account it acts in, once it has learned it.
    pub account_id: Option<String>,
    /// A hash per settings section that must agree across replicas; never a secret.
    pub config_digest: String,
}

/// Takes the job, or keeps it for its holder: `None` while another replica's lease runs.
pub(super) async fn acquire(
    pool: &AnyPool,
    name: &str,
    holder: &str,
    now: DateTime<Utc>,
    lease_for: Duration,
) -> Result<Option<JobLease>, StoreError> {
    let now_ms = now.timestamp_millis();
    let until = now_ms + lease_for.as_millis() as i64;
    // One statement, so two replicas racing for a free or lapsed job cannot both win: the
    // conflict update is atomic on both backends.
    let row = sqlx::query(
        "INSERT INTO singleton_leases (name, holder, expires_at, token) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (name) DO UPDATE SET \
             token = CASE WHEN singleton_leases.holder = excluded.holder \
                          THEN singleton_leases.token ELSE singleton_leases.token + 1 END, \
             holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE singleton_leases.holder = excluded.holder OR singleton_leases.expires_at < $4 \
         RETURNING token",
    )
    .bind(name)
    .bind(holder)
    .bind(until)
    .bind(now_ms)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        Some(row) => Some(JobLease {
            name: name.to_owned(),
            holder: holder.to_owned(),
            token: row.try_get("token")?,
        }),
        None => None,
    })
}

/// Extends a held lease; `JobLost` when another replica has taken the job over.
pub(super) async fn renew(
    pool: &AnyPool,
    lease: &JobLease,
    now: DateTime<Utc>,
    lease_for: Duration,
) -> Result<(), StoreError> {
    let until = now.timestamp_millis() + lease_for.as_millis() as i64;
    let done = sqlx::query(
        "UPDATE singleton_leases SET expires_at = $1 \
         WHERE name = $2 AND holder = $3 AND token = $4 AND expires_at >= $5",
    )
    .bind(until)
    .bind(&lease.name)
    .bind(&lease.holder)
    .bind(lease.token)
    .bind(now.timestamp_millis())
    .execute(pool)
    .await?;
    match done.rows_affected() {
        0 => Err(StoreError::JobLost(lease.name.clone())),
        _ => Ok(()),
    }
}

/// Gives the job up at once, so another replica need not wait for the lease to lapse.
pub(super) async fn release(pool: &AnyPool, lease: &JobLease) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE singleton_leases SET expires_at = 0 WHERE name = $1 AND holder = $2 AND token = $3",
    )
    .bind(&lease.name)
    .bind(&lease.holder)
    .bind(lease.token)
    .execute(pool)
    .await?;
    Ok(())
}

/// Refuses a write under `lease` unless the lease still holds; call inside the write's
/// transaction, before it changes anything.
pub(super) async fn fence(
    conn: &mut AnyConnection,
    lease: &JobLease,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let held: Option<i64> = sqlx::query_scalar(
        "SELECT token FROM singleton_leases \
         WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at >= $4",
    )
    .bind(&lease.name)
    .bind(&lease.holder)
    .bind(lease.token)
    .bind(now.timestamp_millis())
    .fetch_optional(&mut *conn)
    .await?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::JobLost(lease.name.clone())),
    }
}

/// The jobs whose lease has not lapsed at `now`, by name.
pub(super) async fn holders(
    pool: &AnyPool,
    now: DateTime<Utc>,
) -> Result<Vec<JobHolder>, StoreError> {
    let rows = sqlx::query(
        "SELECT name, holder, token, expires_at FROM singleton_leases \
         WHERE expires_at >= $1 ORDER BY name",
    )
    .bind(now.timestamp_millis())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(JobHolder {
                name: row.try_get("name")?,
                holder: row.try_get("holder")?,
                token: row.try_get("token")?,
                expires_at: time(row.try_get("expires_at")?)?,
            })
        })
        .collect()
}

/// Registers the replica or records its heartbeat.
pub(super) async fn record_replica(pool: &AnyPool, replica: &Replica) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO replicas (id, host, version, started_at, heartbeat_at, account_id, \
             config_digest) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, \
             account_id = excluded.account_id, config_digest = excluded.config_digest",
    )
    .bind(&replica.id)
    .bind(&replica.host)
    .bind(&replica.version)
    .bind(replica.started_at.timestamp_millis())
    .bind(replica.heartbeat_at.timestamp_millis())
    .bind(replica.account_id.clone())
    .bind(&replica.config_digest)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn remove_replica(pool: &AnyPool, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM replicas WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Replicas whose last heartbeat is at or after `since`, oldest first.
pub(super) async fn replicas_since(
    pool: &AnyPool,
    since: DateTime<Utc>,
) -> Result<Vec<Replica>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, host, version, started_at, heartbeat_at, account_id, config_digest \
         FROM replicas WHERE heartbeat_at >= $1 ORDER BY started_at, id",
    )
    .bind(since.timestamp_millis())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Replica {
                id: row.try_get("id")?,
                host: row.try_get("host")?,
                version: row.try_get("version")?,
                started_at: time(row.try_get("started_at")?)?,
                heartbeat_at: time(row.try_get("heartbeat_at")?)?,
                account_id: row.try_get("account_id")?,
                config_digest: row.try_get("config_digest")?,
            })
        })
        .collect()
}
