//! Statements for the remediation worker: claiming with a lease, fenced updates, and
//! operator events. Each runs in its own short transaction; none spans a cloud call.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};

use super::backend::Backend;
use super::rows::{INCIDENT_COLUMNS, incident_from_row};
use super::sql::Sql;
use super::{
    ClaimScope, Claimed, IncidentUpdate, Lease, OperatorChange, OperatorError, StoreError, Work,
    audit_log, outbox_queue,
};
use crate::domain::notice::{Change, Route};
use crate::domain::{
    AuditEntry, Event, Findings, FindingsPatch, IncidentId, IncidentState, Step, transition,
};

pub(super) async fn claim_next(
    pool: &AnyPool,
    backend: Backend,
    owner: &str,
    scope: ClaimScope,
    now: DateTime<Utc>,
    lease_for: Duration,
) -> Result<Option<Claimed>, StoreError> {
    let now_ms = now.timestamp_millis();
    let until = now_ms + lease_for.as_millis() as i64;
    let containment = Step::CONTAINMENT
        .iter()
        .map(|s| format!("'{}'", IncidentState::Active(*s).as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let work = match scope {
        ClaimScope::Containment => format!(
            "state IN ({containment}) AND (next_attempt_at IS NULL OR next_attempt_at <= $3)"
        ),
        ClaimScope::Any => {
            "(state <> 'needs_attention' AND (next_attempt_at IS NULL OR next_attempt_at <= $3)) \
             OR (settle_audit_at IS NOT NULL AND settle_audit_at <= $3)"
                .to_owned()
        }
    };
    // One statement: SQLite runs it under its write lock, and PostgreSQL's claimers skip the
    // row another is taking, so two workers (or two processes) never both take an incident.
    let skip_locked = backend.skip_locked();
    let sql = format!(
        "UPDATE incidents SET lease_owner = $1, attempt = attempt + 1, lease_expires_at = $2 \
         WHERE id = (SELECT id FROM incidents \
             WHERE closed_at IS NULL \
               AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
               AND ({work}) \
             ORDER BY CASE WHEN state IN ({containment}) THEN 0 ELSE 1 END, \
                      COALESCE(next_attempt_at, created_at), id LIMIT 1{skip_locked}) \
         RETURNING {INCIDENT_COLUMNS}"
    );
    let row = sqlx::query(&sql)
        .bind(owner)
        .bind(until)
        .bind(now_ms)
        .fetch_optional(pool)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let incident = incident_from_row(&row)?;
    let step_due = incident.next_attempt_at.is_none_or(|at| at <= now);
    let work = match incident.state {
        IncidentState::Active(step) if step_due => Work::Step(step),
        _ => Work::SettleAudit,
    };
    let lease = Lease {
        incident: incident.id,
        owner: owner.to_owned(),
        attempt: incident.attempt,
    };
    Ok(Some(Claimed {
        incident,
        lease,
        work,
    }))
}

pub(super) async fn extend_lease(
    pool: &AnyPool,
    lease: &Lease,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    let done = sqlx::query(
        "UPDATE incidents SET lease_expires_at = $1 \
         WHERE id = $2 AND lease_owner = $3 AND attempt = $4",
    )
    .bind(until.timestamp_millis())
    .bind(lease.incident.0)
    .bind(&lease.owner)
    .bind(lease.attempt)
    .execute(pool)
    .await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::LeaseLost(lease.incident));
    }
    Ok(())
}

pub(super) async fn record(
    pool: &AnyPool,
    backend: Backend,
    routes: &[Route],
    lease: &Lease,
    update: IncidentUpdate,
    audit: Vec<AuditEntry>,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let mut tx = backend.begin_write(pool).await?;
    // Read before the write, under the write lock: the transition's notices depend on where
    // the incident came from.
    let change = match routes.is_empty() {
        true => None,
        false => Some(outbox_queue::change_of(&mut tx, lease, &update).await?),
    };
    let mut q = Sql::new("UPDATE incidents SET updated_at = ");
    q.bind(now.timestamp_millis());
    if let Some(state) = update.state {
        push_state(&mut q, state, now);
    }
    if let Some(path) = update.path {
        q.push(", path = ").bind(path.as_str());
    }
    if let Some((owner_type, user_name)) = update.owner {
        q.push(", owner_type = ").bind(owner_type.as_str());
        q.push(", user_name = ").bind(user_name);
    }
    if let Some(at) = update.contained_at {
        // The first containment counts; later verifications do not move it.
        q.push(", contained_at = COALESCE(contained_at, ")
            .bind(at.timestamp_millis())
            .push(")");
    }
    if let Some(at) = update.settle_audit_at {
        q.push(", settle_audit_at = ")
            .bind(at.map(|t| t.timestamp_millis()));
    }
    if let Some(at) = update.next_attempt_at {
        q.push(", next_attempt_at = ")
            .bind(at.map(|t| t.timestamp_millis()));
    }
    if let Some(n) = update.step_attempts {
        q.push(", step_attempts = ").bind(i64::from(n));
    }
    if let Some(error) = update.last_error {
        q.push(", last_error = ").bind(error);
    }
    if let Some(dry_run) = update.dry_run {
        q.push(", dry_run = ").bind(i64::from(dry_run));
    }
    if update.release {
        q.push(", lease_owner = NULL, lease_expires_at = NULL");
    }
    q.push(" WHERE id = ").bind(lease.incident.0);
    q.push(" AND lease_owner = ").bind(&lease.owner);
    q.push(" AND attempt = ").bind(lease.attempt);
    let done = q.execute(&mut *tx).await?;
    if done.rows_affected() == 0 {
        return Err(StoreError::LeaseLost(lease.incident));
    }
    patch_findings(&mut tx, lease.incident, update.findings).await?;
    let audit: Vec<_> = audit.into_iter().map(|entry| (now, entry)).collect();
    audit_log::append_audit(&mut tx, &audit).await?;
    if let Some(change) = change {
        outbox_queue::enqueue(&mut tx, routes, lease.incident, &change, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Applies `patch` to the incident's findings: the whole record read, patched and written
/// back inside the caller's transaction, which already holds the write lock and has checked
/// the fence, so no other writer's change can fall between the read and the write. The only
/// place findings are written.
async fn patch_findings(
    conn: &mut AnyConnection,
    id: IncidentId,
    patch: FindingsPatch,
) -> Result<(), StoreError> {
    if patch.is_empty() {
        return Ok(());
    }
    let stored: String = sqlx::query_scalar("SELECT findings FROM incidents WHERE id = $1")
        .bind(id.0)
        .fetch_one(&mut *conn)
        .await?;
    let mut findings: Findings = serde_json::from_str(&stored)
        .map_err(|e| StoreError::Corrupt(format!("findings of incident {id}: {e}")))?;
    findings.apply(patch);
    let json = serde_json::to_string(&findings)
        .map_err(|e| StoreError::Corrupt(format!("findings of incident {id}: {e}")))?;
    sqlx::query("UPDATE incidents SET findings = $1, approval_pending = $2 WHERE id = $3")
        .bind(json)
        .bind(findings.pending_approval().map(Step::as_str))
        .bind(id.0)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

fn push_state(q: &mut Sql<'_>, state: IncidentState, now: DateTime<Utc>) {
    let (reason, resume) = match state {
        IncidentState::NeedsAttention(reason) => (
            Some(reason.as_str()),
            reason.resume_step().map(Step::as_str),
        ),
        _ => (None, None),
    };
    q.push(", state = ").bind(state.as_str());
    q.push(", reason = ").bind(reason);
    q.push(", resume_step = ").bind(resume);
    if !state.is_open() {
        q.push(", closed_at = ").bind(now.timestamp_millis());
    }
}

pub(super) async fn apply_operator_event(
    pool: &AnyPool,
    backend: Backend,
    routes: &[Route],
    id: IncidentId,
    event: Event,
    actor: &str,
    change: OperatorChange,
) -> Result<IncidentState, OperatorError> {
    let now = Utc::now();
    let mut tx = backend.begin_write(pool).await?;
    let row = sqlx::query(&format!(
        "SELECT state, reason, resume_step, lease_expires_at FROM incidents WHERE id = $1{}",
        backend.lock_rows("incidents")
    ))
    .bind(id.0)
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)?
    .ok_or(OperatorError::NotFound(id))?;
    let get = |name: &str| {
        row.try_get::<Option<String>, _>(name)
            .map_err(StoreError::from)
    };
    let raw_state: String = row.try_get("state").map_err(StoreError::from)?;
    let state = IncidentState::parse(
        &raw_state,
        get("reason")?.as_deref(),
        get("resume_step")?.as_deref(),
    )
    .ok_or_else(|| StoreError::Corrupt(format!("state {raw_state}")))?;
    let leased_until: Option<i64> = row.try_get("lease_expires_at").map_err(StoreError::from)?;
    if leased_until.is_some_and(|until| until > now.timestamp_millis()) {
        return Err(OperatorError::Busy(id));
    }
    let next = transition(state, event)?;
    let mut q = Sql::new("UPDATE incidents SET updated_at = ");
    q.bind(now.timestamp_millis());
    push_state(&mut q, next, now);
    if let Some(path) = change.path {
        q.push(", path = ").bind(path.as_str());
    }
    q.push(", next_attempt_at = NULL, step_attempts = 0 WHERE id = ")
        .bind(id.0);
    q.execute(&mut *tx).await.map_err(StoreError::from)?;
    patch_findings(&mut tx, id, change.findings).await?;
    let entry = AuditEntry {
        incident_id: Some(id),
        actor: actor.to_owned(),
        action: format!("operator.{}", event_name(event)),
        detail: serde_json::json!({"from": state.as_str(), "to": next.as_str(), "note": change.note}),
    };
    audit_log::append_audit(&mut tx, &[(now, entry)]).await?;
    let change = Change {
        before: Some(state),
        after: Some(next),
        ..Change::default()
    };
    outbox_queue::enqueue(&mut tx, routes, id, &change, now).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(next)
}

fn event_name(event: Event) -> &'static str {
    match event {
        Event::Triaged(_) => "triaged",
        Event::StepDone(_) => "step_done",
        Event::Halted(_) => "halted",
        Event::Retry => "retry",
        Event::ConfirmCutover => "confirm_cutover",
        Event::SetRotation => "set_rotation",
        Event::ClearRotation => "clear_rotation",
        Event::Reenable => "reenable",
        Event::Approve => "approve",
        Event::ApprovalExpired => "approval_expired",
        Event::Undone => "undone",
        Event::Cancel => "cancel",
        Event::Retriage => "retriage",
    }
}
