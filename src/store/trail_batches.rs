//! The account-wide ActionTrail audit's durable progress: the batches, the incidents parked on
//! them, and each incident's events once a batch's pass has answered.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::backend::Backend;
use super::jobs::{self, JobLease};
use super::parked::{self, Parking};
use super::rows::time;
use super::sweeps::SweepState;
use super::{StoreError, audit_log};
use crate::domain::{AuditEntry, IncidentId};

/// How a done batch answered its incidents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchAnswer {
    /// The incident's events, from one pass over the whole account.
    Events(Vec<Value>),
    /// None: the incident queries its own key, as an incident audited alone does.
    PerKey,
}

/// An incident's place in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSeat {
    pub batch: i64,
    pub state: SweepState,
    /// Set once the batch is done.
    pub answer: Option<BatchAnswer>,
}

/// A batch not yet done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditBatch {
    pub id: i64,
    pub state: SweepState,
    pub created_at: DateTime<Utc>,
}

/// One incident a batch answers: whose events, from when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMember {
    pub incident: IncidentId,
    pub access_key_id: String,
    pub window_start: DateTime<Utc>,
}

/// An incident asking for its audit in a batch of its account.
pub(super) struct Joining<'a> {
    /// The account's store key: `''` for the home account.
    pub account: &'a str,
    pub incident: IncidentId,
    pub access_key_id: &'a str,
    pub window_start: DateTime<Utc>,
}

fn state(row: &AnyRow) -> Result<SweepState, StoreError> {
    match row.try_get::<String, _>("state")?.as_str() {
        "queued" => Ok(SweepState::Queued),
        "running" => Ok(SweepState::Running),
        "done" => Ok(SweepState::Done),
        other => Err(StoreError::Corrupt(format!("audit batch state {other}"))),
    }
}

fn seat_from_row(row: &AnyRow) -> Result<BatchSeat, StoreError> {
    let state = state(row)?;
    let outcome: Option<String> = row.try_get("outcome")?;
    let events: Option<String> = row.try_get("events")?;
    let answer = match (state, outcome.as_deref(), events) {
        (SweepState::Done, Some("account_wide"), Some(events)) => Some(BatchAnswer::Events(
            serde_json::from_str(&events)
                .map_err(|e| StoreError::Corrupt(format!("audit batch events: {e}")))?,
        )),
        (SweepState::Done, Some("per_key"), _) => Some(BatchAnswer::PerKey),
        (SweepState::Done, outcome, _) => {
            return Err(StoreError::Corrupt(format!(
                "audit batch done with outcome {outcome:?} and no events for an incident"
            )));
        }
        _ => None,
    };
    Ok(BatchSeat {
        batch: row.try_get("batch_id")?,
        state,
        answer,
    })
}

const SEAT: &str = "SELECT w.batch_id, b.state, b.outcome, w.events \
    FROM audit_batch_waiters w JOIN audit_batches b ON b.id = w.batch_id \
    WHERE w.incident_id = $1";

/// Puts the incident in its account's queued batch (a new one if none is queued); asking
/// again returns its seat, with the answer once the batch is done. A batch that is running
/// takes no one: its members were fixed when it started.
pub(super) async fn join(
    pool: &AnyPool,
    backend: Backend,
    joining: Joining<'_>,
    now: DateTime<Utc>,
) -> Result<BatchSeat, StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    if let Some(row) = sqlx::query(SEAT)
        .bind(joining.incident.0)
        .fetch_optional(&mut *tx)
        .await?
    {
        return seat_from_row(&row);
    }
    let queued: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM audit_batches WHERE account = $1 AND state = 'queued' \
         ORDER BY id LIMIT 1",
    )
    .bind(joining.account)
    .fetch_optional(&mut *tx)
    .await?;
    let batch =
        match queued {
            Some(id) => id,
            None => sqlx::query_scalar(
                "INSERT INTO audit_batches (account, state, created_at) VALUES ($1, 'queued', $2) \
                 RETURNING id",
            )
            .bind(joining.account)
            .bind(now.timestamp_millis())
            .fetch_one(&mut *tx)
            .await?,
        };
    sqlx::query(
        "INSERT INTO audit_batch_waiters (incident_id, batch_id, access_key_id, window_start) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(joining.incident.0)
    .bind(batch)
    .bind(joining.access_key_id)
    .bind(joining.window_start.timestamp_millis())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(BatchSeat {
        batch,
        state: SweepState::Queued,
        answer: None,
    })
}

/// The account's oldest batch not yet done.
pub(super) async fn next(pool: &AnyPool, account: &str) -> Result<Option<AuditBatch>, StoreError> {
    let row = sqlx::query(
        "SELECT id, state, created_at FROM audit_batches WHERE account = $1 AND state <> 'done' \
         ORDER BY id LIMIT 1",
    )
    .bind(account)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(AuditBatch {
            id: row.try_get("id")?,
            state: state(&row)?,
            created_at: time(row.try_get("created_at")?)?,
        })
    })
    .transpose()
}

/// Closes a queued batch to newcomers (they start the next one) and returns its members; a
/// batch already running (its holder stopped) keeps the members it had.
pub(super) async fn start(
    pool: &AnyPool,
    backend: Backend,
    lease: &JobLease,
    batch: i64,
    now: DateTime<Utc>,
) -> Result<Vec<BatchMember>, StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    jobs::fence(&mut tx, lease, now).await?;
    sqlx::query(
        "UPDATE audit_batches SET state = 'running', started_at = $1 \
         WHERE id = $2 AND state = 'queued'",
    )
    .bind(now.timestamp_millis())
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    let rows = sqlx::query(
        "SELECT incident_id, access_key_id, window_start FROM audit_batch_waiters \
         WHERE batch_id = $1 ORDER BY incident_id",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    rows.iter()
        .map(|row| {
            Ok(BatchMember {
                incident: IncidentId(row.try_get("incident_id")?),
                access_key_id: row.try_get("access_key_id")?,
                window_start: time(row.try_get("window_start")?)?,
            })
        })
        .collect()
}

/// Ends a running batch with its answer (each member's events, or `None`: per key) and the
/// audit rows of its calls, and wakes the incidents parked on it; fenced by the job's lease.
pub(super) async fn finish(
    pool: &AnyPool,
    backend: Backend,
    lease: &JobLease,
    batch: i64,
    events: Option<&HashMap<IncidentId, Vec<Value>>>,
    audit: Vec<AuditEntry>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    jobs::fence(&mut tx, lease, now).await?;
    let outcome = if events.is_some() {
        "account_wide"
    } else {
        "per_key"
    };
    let done = sqlx::query(
        "UPDATE audit_batches SET state = 'done', outcome = $1, finished_at = $2 \
         WHERE id = $3 AND state = 'running'",
    )
    .bind(outcome)
    .bind(now.timestamp_millis())
    .bind(batch)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        // Already done: a holder before this one finished it.
        return Ok(());
    }
    for (incident, found) in events.into_iter().flatten() {
        let json = serde_json::to_string(found)
            .map_err(|e| StoreError::Corrupt(format!("audit batch events: {e}")))?;
        sqlx::query(
            "UPDATE audit_batch_waiters SET events = $1 WHERE incident_id = $2 AND batch_id = $3",
        )
        .bind(json)
        .bind(incident.0)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
    }
    let stamped: Vec<_> = audit.into_iter().map(|entry| (now, entry)).collect();
    audit_log::append_audit(&mut tx, backend, &stamped).await?;
    parked::wake_in(&mut tx, &BATCH_WAITERS, batch, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Where incidents wait for a batch.
pub(super) const BATCH_WAITERS: Parking = Parking {
    step: "audit",
    waiters: "audit_batch_waiters",
    job_column: "batch_id",
    jobs: "audit_batches",
};
