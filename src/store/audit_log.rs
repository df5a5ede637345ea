//! Statements for the audit chain: appending after the anchored head, reading the anchor,
//! and finding append-only triggers that are gone. An appender locks the head row as it
//! reads it (SQLite: its write lock is held already), so each continues the head it read and
//! appenders that hold different locks otherwise (intake's per-key locks, the worker's write
//! lock) still take turns on the chain.

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::{AnyPool, Row};

use super::StoreError;
use super::backend::Backend;
use super::sql::Sql;
use crate::domain::AuditEntry;
use crate::domain::audit::{AuditHead, chain_hash};

/// The triggers that keep `audit_log` append-only and `audit_head` moving with it
/// (migrations 0001 and 0006 of each backend).
const SQLITE_GUARDS: &[&str] = &[
    "audit_log_refuses_update",
    "audit_log_refuses_delete",
    "audit_log_extends_head",
    "audit_log_moves_head",
    "audit_head_refuses_insert",
    "audit_head_refuses_delete",
    "audit_head_moves_forward",
];
const POSTGRES_GUARDS: &[&str] = &[
    "audit_log_refuses_update",
    "audit_log_refuses_delete",
    "audit_log_refuses_truncate",
    "audit_log_extends_head",
    "audit_head_refuses_insert",
    "audit_head_refuses_delete",
    "audit_head_refuses_truncate",
    "audit_head_moves_forward",
    "audit_head_points_at_row",
];

/// Appends audit rows after the anchored head, each with its own time, in one statement.
/// The triggers move the anchor in the same transaction. On PostgreSQL the head row stays
/// locked until the caller's transaction ends, so other appenders wait from here to its
/// commit: make this the transaction's last statement.
pub(super) async fn append_audit(
    conn: &mut AnyConnection,
    backend: Backend,
    entries: &[(DateTime<Utc>, AuditEntry)],
) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let lock = match backend {
        Backend::Sqlite => "",
        Backend::Postgres => " FOR UPDATE",
    };
    let head = sqlx::query(&format!("SELECT last_id, last_hash FROM audit_head{lock}"))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::AuditAnchorMissing)?;
    let mut id: i64 = head.try_get("last_id")?;
    let mut prev: String = head.try_get("last_hash")?;
    let mut q = Sql::new(
        "INSERT INTO audit_log (id, incident_id, at, actor, action, detail, prev_hash, hash) \
         VALUES ",
    );
    q.tuples(entries, |row, (at, entry)| {
        id += 1;
        let detail = entry.detail.to_string();
        let hash = chain_hash(
            &prev,
            id,
            entry.incident_id,
            *at,
            &entry.actor,
            &entry.action,
            &detail,
        );
        row.bind(id)
            .bind(entry.incident_id.map(|i| i.0))
            .bind(at.timestamp_millis())
            .bind(entry.actor.clone())
            .bind(entry.action.clone())
            .bind(detail)
            .bind(std::mem::replace(&mut prev, hash.clone()))
            .bind(hash);
    });
    q.execute(&mut *conn).await?;
    Ok(())
}

/// The anchor, or `None` if its row (or its whole table) is gone.
pub(super) async fn audit_head(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Option<AuditHead>, StoreError> {
    let exists = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'audit_head'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM pg_tables \
             WHERE schemaname = current_schema() AND tablename = 'audit_head'"
        }
    };
    let tables: i64 = sqlx::query_scalar(exists).fetch_one(pool).await?;
    if tables == 0 {
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

/// The guards that are gone: dropped, or on PostgreSQL disabled (`ALTER TABLE ... DISABLE
/// TRIGGER`), which leaves them listed but inert.
pub(super) async fn missing_audit_guards(
    pool: &AnyPool,
    backend: Backend,
) -> Result<Vec<String>, StoreError> {
    let (guards, present) = match backend {
        Backend::Sqlite => (
            SQLITE_GUARDS,
            "SELECT name FROM sqlite_master WHERE type = 'trigger'",
        ),
        Backend::Postgres => (
            POSTGRES_GUARDS,
            "SELECT t.tgname::text FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE c.relname IN ('audit_log', 'audit_head') \
               AND c.relnamespace = current_schema()::regnamespace \
               AND NOT t.tgisinternal AND t.tgenabled <> 'D'",
        ),
    };
    let present: Vec<String> = sqlx::query_scalar(present).fetch_all(pool).await?;
    Ok(guards
        .iter()
        .filter(|g| !present.iter().any(|p| p == *g))
        .map(|g| (*g).to_owned())
        .collect())
}
