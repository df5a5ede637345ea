//! Console sessions, kept in the database so every replica on it knows them: only a digest
//! of each session's secret, the token it stands for, and when it ends.

use chrono::{DateTime, Utc};
use sqlx::{AnyPool, Row};

use super::StoreError;
use super::rows::time;

/// Sessions kept at once; a sign-in beyond it drops the expired ones, then the oldest.
const MAX_SESSIONS: i64 = 10_000;

/// One signed-in browser, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    /// Hex SHA-256 of the secret in the browser's cookie.
    pub secret_sha256: String,
    /// The configured API token's name.
    pub token_name: String,
    /// `viewer` or `operator`.
    pub role: String,
    pub expires_at: DateTime<Utc>,
}

pub(super) async fn open(
    pool: &AnyPool,
    session: &ConsoleSession,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let now_ms = now.timestamp_millis();
    sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
        .bind(now_ms)
        .execute(pool)
        .await?;
    sqlx::query(
        "INSERT INTO console_sessions (secret_sha256, token_name, role, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&session.secret_sha256)
    .bind(&session.token_name)
    .bind(&session.role)
    .bind(now_ms)
    .bind(session.expires_at.timestamp_millis())
    .execute(pool)
    .await?;
    sqlx::query(
        "DELETE FROM console_sessions WHERE expires_at < \
         (SELECT expires_at FROM console_sessions ORDER BY expires_at DESC LIMIT 1 OFFSET $1)",
    )
    .bind(MAX_SESSIONS - 1)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn find(
    pool: &AnyPool,
    secret_sha256: &str,
    now: DateTime<Utc>,
) -> Result<Option<ConsoleSession>, StoreError> {
    let row = sqlx::query(
        "SELECT token_name, role, expires_at FROM console_sessions \
         WHERE secret_sha256 = $1 AND expires_at > $2",
    )
    .bind(secret_sha256)
    .bind(now.timestamp_millis())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(ConsoleSession {
        secret_sha256: secret_sha256.to_owned(),
        token_name: row.try_get("token_name")?,
        role: row.try_get("role")?,
        expires_at: time(row.try_get("expires_at")?)?,
    }))
}

pub(super) async fn close(pool: &AnyPool, secret_sha256: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM console_sessions WHERE secret_sha256 = $1")
        .bind(secret_sha256)
        .execute(pool)
        .await?;
    Ok(())
}
