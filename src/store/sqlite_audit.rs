//! SQLite statements for the audit chain: appending after the anchored head, reading the
//! anchor, and finding append-only triggers that are gone. Another backend keeps the same
//! `audit_head` row and triggers; where writers run concurrently, locking that row before
//! reading it also serialises the appenders.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::StoreError;
use crate::domain::AuditEntry;
use crate::domain::audit::{AuditHead, chain_hash};

/// The triggers that keep `audit_log` append-only and `audit_head` moving with it
/// (migrations 0001 and 0006).
const GUARDS: &[&str] = &[
    "audit_log_refuses_update",
    "audit_log_refuses_delete",
    "audit_log_extends_head",
    "audit_log_moves_head",
    "audit_head_refuses_insert",
    "audit_head_refuses_delete",
    "audit_head_moves_forward",
];

/// Appends audit rows after the anchored head; the caller holds the write lock. The
/// `audit_log_moves_head` trigger moves the anchor in the same transaction.
pub(super) async fn append_audit(
    conn: &mut SqliteConnection,
    at: DateTime<Utc>,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let head = sqlx::query("SELECT last_id, last_hash FROM audit_head")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::AuditAnchorMissing)?;
    let mut id: i64 = head.try_get("last_id")?;
    let mut prev: String = head.try_get("last_hash")?;
    for entry in entries {
        id += 1;
        let detail = entry.detail.to_string();
        let hash = chain_hash(
            &prev,
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
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *conn)
        .await?;
        prev = hash;
    }
    Ok(())
}

/// The anchor, or `None` if its row (or its whole table) is gone.
pub(super) async fn audit_head(pool: &SqlitePool) -> Result<Option<AuditHead>, StoreError> {
    let table: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'",
    )
    .fetch_optional(pool)
    .await?;
    if table.is_none() {
        return Ok(None);
    }
    let row = sqlx::query("SELECT last_id, last_hash, row_count FROM audit_head")
        .fetch_optional(pool)
        .await?;
    row.map(|row| {
        Ok(AuditHead {
            last_id: row.try_get("last_id")?,
            hash: row.try_get("last_hash")?,
            rows: u64::try_from(row.try_get::<i64, _>("row_count")?)
                .map_err(|_| StoreError::Corrupt("audit_head.row_count is negative".into()))?,
        })
    })
    .transpose()
}

pub(super) async fn missing_audit_guards(pool: &SqlitePool) -> Result<Vec<String>, StoreError> {
    let present: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            .fetch_all(pool)
            .await?;
    Ok(GUARDS
        .iter()
        .filter(|g| !present.iter().any(|p| p == *g))
        .map(|g| (*g).to_owned())
        .collect())
}
