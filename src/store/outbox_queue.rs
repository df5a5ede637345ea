//! Statements for the notification outbox: rows inserted inside the transition's
//! transaction, claimed with a lease in one statement, and settled under that lease.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::{AnyPool, Row};

use super::backend::Backend;
use super::outbox::{DeliveryRecord, OutboxItem, OutboxState, OutboxVerdict};
use super::sql::Sql;
use super::{IncidentUpdate, Lease, ScheduleChange, StoreError};
use crate::domain::notice::{self, Change, NoticeKind, Route};
use crate::domain::{Findings, IncidentId, IncidentState};

/// Inserts the outbox rows `change` causes for `incident`; a row whose (channel, dedup key)
/// exists already is skipped, which is what suppresses repeats.
pub(super) async fn enqueue(
    conn: &mut AnyConnection,
    routes: &[Route],
    incident: IncidentId,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    enqueue_all(conn, routes, &[(incident, change, now)]).await
}

/// [`enqueue`] for several transitions in one statement: intake opens a whole batch of
/// incidents in one transaction, and a statement per incident held the write lock longer.
pub(super) async fn enqueue_all(
    conn: &mut AnyConnection,
    routes: &[Route],
    changes: &[(IncidentId, &Change, DateTime<Utc>)],
) -> Result<(), StoreError> {
    if routes.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = changes
        .iter()
        .flat_map(|&(incident, change, at)| {
            notice::route(routes, incident, &notice::notices(change))
                .into_iter()
                .map(move |row| (incident, row, at.timestamp_millis()))
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new(
        "INSERT INTO outbox (incident_id, channel, event, dedup_key, detail, state, \
         next_attempt_at, created_at) VALUES ",
    );
    q.tuples(&rows, |row, (incident, r, at)| {
        row.bind(incident.0)
            .bind(r.channel.as_str())
            .bind(r.kind.as_str())
            .bind(r.dedup_key.as_str())
            .bind(r.detail.to_string())
            .push("'pending'")
            .bind(*at)
            .bind(*at);
    });
    q.push(" ON CONFLICT (channel, dedup_key) DO NOTHING");
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Leases up to `limit` due rows to `owner`. The candidates are read first, without the
/// write lock (on SQLite a claim used to hold it while it searched); the lease is then taken
/// by id, fenced on the row still being pending, due and unleased, so two senders (or two
/// processes) never take the same row. A row waits while an earlier row of its incident
/// for the same channel is still pending, so a channel hears an incident's notices in the
/// order they were caused (a PagerDuty `resolve` never overtakes its `trigger`): rows only
/// ever leave `pending`, so a row found eligible stays so.
pub(super) async fn claim(
    pool: &AnyPool,
    owner: &str,
    now: DateTime<Utc>,
    lease_for: Duration,
    limit: u32,
) -> Result<Vec<OutboxItem>, StoreError> {
    let now_ms = now.timestamp_millis();
    let candidates: Vec<i64> = sqlx::query_scalar(
        "SELECT o.id FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= $1 \
         AND (o.lease_expires_at IS NULL OR o.lease_expires_at < $1) \
         AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.incident_id = o.incident_id \
             AND e.channel = o.channel AND e.state = 'pending' AND e.id < o.id) \
         ORDER BY o.next_attempt_at, o.id LIMIT $2",
    )
    .bind(now_ms)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Sql::new("UPDATE outbox SET lease_owner = ");
    q.bind(owner)
        .push(", lease_expires_at = ")
        .bind(now_ms + lease_for.as_millis() as i64)
        .push(", attempts = attempts + 1 WHERE state = 'pending' AND next_attempt_at <= ")
        .bind(now_ms)
        .push(" AND (lease_expires_at IS NULL OR lease_expires_at < ")
        .bind(now_ms)
        .push(") AND id IN (");
    for (i, id) in candidates.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        q.bind(*id);
    }
    q.push(") RETURNING id, incident_id, channel, event, dedup_key, detail, attempts");
    let mut rows = q.fetch_all(pool).await?;
    // `RETURNING` promises no order; the claim's order is the candidates'.
    rows.sort_by_key(|row| {
        let id: i64 = row.try_get("id").unwrap_or_default();
        candidates.iter().position(|c| *c == id)
    });
    rows.iter()
        .map(|row| {
            let event: String = row.try_get("event")?;
            let detail: String = row.try_get("detail")?;
            Ok(OutboxItem {
                id: row.try_get("id")?,
                incident: IncidentId(row.try_get("incident_id")?),
                channel: row.try_get("channel")?,
                kind: NoticeKind::parse(&event)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox event {event}")))?,
                dedup_key: row.try_get("dedup_key")?,
                detail: serde_json::from_str(&detail)
                    .map_err(|e| StoreError::Corrupt(format!("outbox detail: {e}")))?,
                attempts: row.try_get::<i64, _>("attempts")? as u32,
                owner: owner.to_owned(),
            })
        })
        .collect()
}

/// Records each verdict under its item's lease, all in one transaction of two statements
/// whatever the batch's size (an update of the rows still leased as claimed, returning
/// them, and their delivery log lines): the sender's commit holds SQLite's one write lock
/// for as short a time as one verdict's. `false` for an item whose lease was lost.
pub(super) async fn settle(
    pool: &AnyPool,
    backend: Backend,
    settled: &[(OutboxItem, OutboxVerdict)],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    if settled.is_empty() {
        return Ok(Vec::new());
    }
    let mut tx = backend.begin_settle(pool).await?;
    // VALUES columns are column1, column2, ... on both backends.
    let mut q = Sql::new(
        "UPDATE outbox SET state = v.column4, \
         next_attempt_at = COALESCE(v.column5, outbox.next_attempt_at), \
         last_error = COALESCE(v.column6, outbox.last_error), sent_at = v.column7, \
         lease_owner = NULL, lease_expires_at = NULL FROM (VALUES ",
    );
    q.tuples(settled, |row, (item, verdict)| {
        let (state, next, error, sent) = columns(verdict, now);
        row.bind(item.id)
            .bind(item.owner.as_str())
            .bind(i64::from(item.attempts))
            .bind(state)
            .bind(next)
            .bind(error)
            .bind(sent);
    });
    q.push(
        ") AS v WHERE outbox.id = v.column1 AND outbox.lease_owner = v.column2 \
         AND outbox.attempts = v.column3 RETURNING id",
    );
    let kept: Vec<i64> = q
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
    let logged: Vec<_> = settled
        .iter()
        .filter(|(item, _)| kept.contains(&item.id))
        .collect();
    if !logged.is_empty() {
        // In the same transaction, so the event stream sees exactly the verdicts that counted.
        let mut q = Sql::new(
            "INSERT INTO delivery_log (outbox_id, incident_id, channel, event, state, \
             attempts, error, at) VALUES ",
        );
        q.tuples(&logged, |row, (item, verdict)| {
            let (state, _, error, _) = columns(verdict, now);
            row.bind(item.id)
                .bind(item.incident.0)
                .bind(item.channel.as_str())
                .bind(item.kind.as_str())
                .bind(state)
                .bind(i64::from(item.attempts))
                .bind(error)
                .bind(now.timestamp_millis());
        });
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(settled
        .iter()
        .map(|(item, _)| kept.contains(&item.id))
        .collect())
}

/// A verdict as the outbox stores it: state, next attempt, error, time sent.
fn columns(
    verdict: &OutboxVerdict,
    now: DateTime<Utc>,
) -> (&'static str, Option<i64>, Option<&str>, Option<i64>) {
    match verdict {
        OutboxVerdict::Sent => ("sent", None, None, Some(now.timestamp_millis())),
        OutboxVerdict::Retry { at, error } => {
            ("pending", Some(at.timestamp_millis()), Some(error), None)
        }
        OutboxVerdict::Failed { error } => ("failed", None, Some(error), None),
    }
}

/// Records one verdict under the item's lease, and in the delivery log, inside the caller's
/// transaction; `false` if the lease was lost (a stale sender's verdict is dropped: the
/// row's new holder decides).
pub(super) async fn settle_one(
    conn: &mut AnyConnection,
    item: &OutboxItem,
    verdict: &OutboxVerdict,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let (state, next, error, sent) = columns(verdict, now);
    let done = sqlx::query(
        "UPDATE outbox SET state = $1, next_attempt_at = COALESCE($2, next_attempt_at), \
         last_error = COALESCE($3, last_error), sent_at = $4, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $5 AND lease_owner = $6 AND attempts = $7",
    )
    .bind(state)
    .bind(next)
    .bind(error)
    .bind(sent)
    .bind(item.id)
    .bind(&item.owner)
    .bind(i64::from(item.attempts))
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    // In the caller's transaction, so the event stream sees exactly the verdicts that counted.
    sqlx::query(
        "INSERT INTO delivery_log (outbox_id, incident_id, channel, event, state, attempts, \
         error, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(item.id)
    .bind(item.incident.0)
    .bind(&item.channel)
    .bind(item.kind.as_str())
    .bind(state)
    .bind(i64::from(item.attempts))
    .bind(error)
    .bind(now.timestamp_millis())
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Settled deliveries with an id above `after`, in id order.
pub(super) async fn deliveries_after(
    pool: &AnyPool,
    after: i64,
    limit: u32,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, incident_id, channel, event, state, attempts, error, at FROM delivery_log \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let at: i64 = row.try_get("at")?;
            Ok(DeliveryRecord {
                id: row.try_get("id")?,
                incident_id: IncidentId(row.try_get("incident_id")?),
                channel: row.try_get("channel")?,
                event: row.try_get("event")?,
                state: row.try_get("state")?,
                attempts: row.try_get::<i64, _>("attempts")? as u32,
                error: row.try_get("error")?,
                at: DateTime::from_timestamp_millis(at)
                    .ok_or_else(|| StoreError::Corrupt(format!("delivery_log.at {at}")))?,
            })
        })
        .collect()
}

/// The last settled delivery's id, 0 when there is none.
pub(super) async fn last_delivery(pool: &AnyPool) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM delivery_log")
            .fetch_one(pool)
            .await?,
    )
}

pub(super) async fn for_incident(
    pool: &AnyPool,
    id: IncidentId,
) -> Result<Vec<OutboxState>, StoreError> {
    let rows = sqlx::query(
        "SELECT channel, event, dedup_key, state, attempts, last_error FROM outbox \
         WHERE incident_id = $1 ORDER BY id",
    )
    .bind(id.0)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(OutboxState {
                channel: row.try_get("channel")?,
                event: row.try_get("event")?,
                dedup_key: row.try_get("dedup_key")?,
                state: row.try_get("state")?,
                attempts: row.try_get::<i64, _>("attempts")? as u32,
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
}

/// The transition `update` makes to the leased incident, read inside the write transaction
/// before the update; `LeaseLost` if the lease is no longer held.
pub(super) async fn change_of(
    conn: &mut AnyConnection,
    lease: &Lease,
    update: &IncidentUpdate,
    schedule: &ScheduleChange,
) -> Result<Change, StoreError> {
    let row = sqlx::query(
        "SELECT state, reason, resume_step, created_at, contained_at, findings FROM incidents \
         WHERE id = $1 AND lease_owner = $2 AND attempt = $3",
    )
    .bind(lease.incident.0)
    .bind(&lease.owner)
    .bind(lease.attempt)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::LeaseLost(lease.incident))?;
    let raw: String = row.try_get("state")?;
    let reason: Option<String> = row.try_get("reason")?;
    let resume: Option<String> = row.try_get("resume_step")?;
    let before = IncidentState::parse(&raw, reason.as_deref(), resume.as_deref())
        .ok_or_else(|| StoreError::Corrupt(format!("state {raw}")))?;
    let created_at: i64 = row.try_get("created_at")?;
    let contained_before: Option<i64> = row.try_get("contained_at")?;
    let findings: String = row.try_get("findings")?;
    let findings: Findings = serde_json::from_str(&findings).unwrap_or_default();
    let approval_requested = update.findings.approval_requested(&findings);
    Ok(Change {
        before: Some(before),
        after: update.state,
        contained_in_ms: update
            .contained_at
            .filter(|_| contained_before.is_none())
            .map(|at| at.timestamp_millis() - created_at),
        approval_requested,
        step_attempts: schedule.step_attempts,
        last_error: update.last_error.clone().flatten(),
        ..Change::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::backend::Creation;
    use super::*;

    async fn pool() -> AnyPool {
        let pool = Backend::Sqlite
            .connect("sqlite::memory:", 1, Creation::IfMissing)
            .await
            .unwrap();
        // No incident rows are needed to test the claim's order.
        sqlx::query("PRAGMA foreign_keys = OFF")
            .execute(&pool)
            .await
            .unwrap();
        Backend::Sqlite.migrator().run(&pool).await.unwrap();
        pool
    }

    async fn pending(pool: &AnyPool, incident: i64, channel: &str, event: &str, due: i64) {
        sqlx::query(
            "INSERT INTO outbox (incident_id, channel, event, dedup_key, detail, state, \
             next_attempt_at, created_at) VALUES ($1, $2, $3, $4, '{}', 'pending', $5, 0)",
        )
        .bind(incident)
        .bind(channel)
        .bind(event)
        .bind(format!("incident-{incident}-{event}"))
        .bind(due)
        .execute(pool)
        .await
        .unwrap();
    }

    fn claimed(items: &[OutboxItem]) -> Vec<(i64, String, String)> {
        items
            .iter()
            .map(|i| (i.incident.0, i.channel.clone(), i.kind.as_str().to_owned()))
            .collect()
    }

    #[tokio::test]
    async fn a_channel_hears_an_incidents_notices_in_the_order_they_were_caused() {
        let pool = pool().await;
        let now = Utc::now();
        let lease = Duration::from_secs(60);
        // The trigger is waiting for a retry that is not due yet; the resolve is due now.
        pending(
            &pool,
            1,
            "pager",
            "needs_person",
            now.timestamp_millis() + 60_000,
        )
        .await;
        pending(&pool, 1, "pager", "resolved", 0).await;
        pending(&pool, 1, "chat", "resolved", 0).await;
        pending(&pool, 2, "pager", "opened", 0).await;
        let first = claim(&pool, "a", now, lease, 10).await.unwrap();
        assert_eq!(
            claimed(&first),
            [
                (1, "chat".to_owned(), "resolved".to_owned()),
                (2, "pager".to_owned(), "opened".to_owned())
            ]
        );
        let sent: Vec<_> = first
            .iter()
            .map(|item| (item.clone(), OutboxVerdict::Sent))
            .collect();
        assert_eq!(
            settle(&pool, Backend::Sqlite, &sent, now).await.unwrap(),
            [true, true]
        );
        // Settled rows are no longer leased: a stale verdict changes nothing.
        assert_eq!(
            settle(&pool, Backend::Sqlite, &sent, now).await.unwrap(),
            [false, false]
        );
        let later = now + chrono::Duration::seconds(61);
        let trigger = claim(&pool, "b", later, lease, 10).await.unwrap();
        assert_eq!(
            claimed(&trigger),
            [(1, "pager".to_owned(), "needs_person".to_owned())]
        );
        let mut conn = pool.acquire().await.unwrap();
        assert!(
            settle_one(&mut conn, &trigger[0], &OutboxVerdict::Sent, later)
                .await
                .unwrap()
        );
        drop(conn);
        let resolve = claim(&pool, "b", later, lease, 10).await.unwrap();
        assert_eq!(
            claimed(&resolve),
            [(1, "pager".to_owned(), "resolved".to_owned())]
        );
    }
}
