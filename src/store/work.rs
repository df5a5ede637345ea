//! Statements for the remediation worker: claiming with a lease, fenced updates, and
//! operator events, all written through the one fenced update. Each runs in its own short
//! transaction; none spans a cloud call.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{AnyConnection, AnyPool, Row};

use super::backend::Backend;
use super::fence::{Fence, FencedUpdate, LeaseAfter, Target};
use super::rows::{INCIDENT_COLUMNS, incident_from_row, schedule_from_row};
use super::sql::Sql;
use super::{
    ClaimScope, Claimed, IncidentUpdate, Lease, OperatorChange, OperatorError, ScheduleChange,
    StoreError, Work, audit_log, outbox_queue,
};
use crate::domain::notice::{Change, Route};
use crate::domain::{
    AuditEntry, Event, Findings, FindingsPatch, IncidentId, IncidentState, Step, transition,
};

/// `SELECT id` of the incident `scope`'s workers should take next at `now_ms`, if any.
fn pick(q: &mut Sql<'_>, backend: Backend, scope: ClaimScope, now_ms: i64) {
    let containment = Step::CONTAINMENT
        .iter()
        .map(|s| format!("'{}'", IncidentState::Active(*s).as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let due = |q: &mut Sql<'_>, column: &str| {
        q.push(&format!("{column} <= ")).bind(now_ms);
    };
    q.push(
        "SELECT id FROM incidents WHERE closed_at IS NULL \
            AND (lease_expires_at IS NULL OR lease_expires_at < ",
    )
    .bind(now_ms)
    .push(") AND (");
    match scope {
        ClaimScope::Containment => {
            q.push(&format!(
                "state IN ({containment}) AND (next_attempt_at IS NULL OR "
            ));
            due(q, "next_attempt_at");
            q.push(")");
        }
        ClaimScope::Any => {
            q.push("(state <> 'needs_attention' AND (next_attempt_at IS NULL OR ");
            due(q, "next_attempt_at");
            q.push(")) OR (settle_audit_at IS NOT NULL AND ");
            due(q, "settle_audit_at");
            q.push(")");
        }
    }
    q.push(&format!(
        ") ORDER BY CASE WHEN state IN ({containment}) THEN 0 ELSE 1 END, \
         COALESCE(next_attempt_at, created_at), id LIMIT 1{}",
        backend.skip_locked()
    ));
}

/// Whether `claim_next` would take an incident now, read without taking a lock: `Some(true)`
/// for one in a containment step.
pub(super) async fn claimable(
    pool: &AnyPool,
    backend: Backend,
    scope: ClaimScope,
    now: DateTime<Utc>,
) -> Result<Option<bool>, StoreError> {
    let mut q = Sql::new("SELECT state FROM incidents WHERE id = (");
    pick(&mut q, backend, scope, now.timestamp_millis());
    q.push(")");
    let Some(row) = q.fetch_optional(pool).await? else {
        return Ok(None);
    };
    let state: String = row.try_get("state")?;
    let containment = Step::CONTAINMENT
        .iter()
        .any(|step| IncidentState::Active(*step).as_str() == state);
    Ok(Some(containment))
}

pub(super) async fn claim_next(
    pool: &AnyPool,
    backend: Backend,
    owner: &str,
    scope: ClaimScope,
    now: DateTime<Utc>,
    lease_for: Duration,
) -> Result<Option<Claimed>, StoreError> {
    let until = now + lease_for;
    let now_ms = now.timestamp_millis();
    // One statement: SQLite runs it under its write lock, and PostgreSQL's claimers skip the
    // row another is taking, so two workers (or two processes) never both take an incident.
    let row = FencedUpdate::new()
        .execute(
            pool,
            Target::Picked(Box::new(move |q: &mut Sql<'_>| {
                pick(q, backend, scope, now_ms)
            })),
            Fence::Takeover(now, Some((owner, until))),
            INCIDENT_COLUMNS,
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let incident = incident_from_row(&row)?;
    let schedule = schedule_from_row(&row)?;
    let step_due = schedule.next_attempt_at.is_none_or(|at| at <= now);
    let work = match incident.state {
        IncidentState::Active(step) if step_due => Work::Step(step),
        _ => Work::SettleAudit,
    };
    let lease = Lease {
        incident: incident.id,
        owner: owner.to_owned(),
        attempt: schedule.attempt,
    };
    Ok(Some(Claimed {
        incident,
        schedule,
        lease,
        work,
    }))
}

pub(super) async fn extend_lease(
    pool: &AnyPool,
    lease: &Lease,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    FencedUpdate::new()
        .execute(
            pool,
            Target::Incident(lease.incident),
            Fence::Holder(lease, LeaseAfter::Extended(until)),
            "id",
        )
        .await?
        .ok_or(StoreError::LeaseLost(lease.incident))?;
    Ok(())
}

pub(super) async fn record(
    pool: &AnyPool,
    backend: Backend,
    routes: &[Route],
    lease: &Lease,
    update: IncidentUpdate,
    schedule: ScheduleChange,
    audit: Vec<AuditEntry>,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let mut tx = backend.begin_write(pool).await?;
    // Read before the write, under the write lock: the transition's notices depend on where
    // the incident came from.
    let change = match routes.is_empty() {
        true => None,
        false => Some(outbox_queue::change_of(&mut tx, lease, &update, &schedule).await?),
    };
    let mut q = FencedUpdate::new();
    q.set("updated_at", now.timestamp_millis());
    if let Some(state) = update.state {
        set_state(&mut q, state, now);
    }
    if let Some(path) = update.path {
        q.set("path", path.as_str());
    }
    if let Some((owner_type, user_name)) = update.owner {
        q.set("owner_type", owner_type.as_str());
        q.set("user_name", user_name);
    }
    if let Some(at) = update.contained_at {
        // The first containment counts; later verifications do not move it.
        q.set_with(
            "contained_at",
            ("COALESCE(contained_at, ", ")"),
            at.timestamp_millis(),
        );
    }
    if let Some(error) = update.last_error {
        q.set("last_error", error);
    }
    if let Some(dry_run) = update.dry_run {
        q.set("dry_run", i64::from(dry_run));
    }
    q.schedule(&schedule);
    let after = match schedule.release {
        true => LeaseAfter::Released,
        false => LeaseAfter::Kept,
    };
    q.execute(
        &mut *tx,
        Target::Incident(lease.incident),
        Fence::Holder(lease, after),
        "id",
    )
    .await?
    .ok_or(StoreError::LeaseLost(lease.incident))?;
    patch_findings(&mut tx, lease.incident, update.findings).await?;
    let audit: Vec<_> = audit.into_iter().map(|entry| (now, entry)).collect();
    if let Some(change) = change {
        outbox_queue::enqueue(&mut tx, routes, lease.incident, &change, now).await?;
    }
    audit_log::append_audit(&mut tx, backend, &audit).await?;
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

fn set_state(q: &mut FencedUpdate<'_>, state: IncidentState, now: DateTime<Utc>) {
    let (reason, resume) = match state {
        IncidentState::NeedsAttention(reason) => (
            Some(reason.as_str()),
            reason.resume_step().map(Step::as_str),
        ),
        _ => (None, None),
    };
    q.set("state", state.as_str());
    q.set("reason", reason);
    q.set("resume_step", resume);
    if !state.is_open() {
        q.set("closed_at", now.timestamp_millis());
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
        "SELECT state, reason, resume_step FROM incidents WHERE id = $1{}",
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
    let next = transition(state, event)?;
    let mut q = FencedUpdate::new();
    q.set("updated_at", now.timestamp_millis());
    set_state(&mut q, next, now);
    if let Some(path) = change.path {
        q.set("path", path.as_str());
    }
    q.schedule(&ScheduleChange {
        next_attempt_at: Some(None),
        step_attempts: Some(0),
        ..ScheduleChange::default()
    });
    // Through the workers' fence: refused while a worker's lease is live; once applied, a
    // worker whose lease lapsed unnoticed holds an old attempt and is refused in turn.
    q.execute(
        &mut *tx,
        Target::Incident(id),
        Fence::Takeover(now, None),
        "id",
    )
    .await?
    .ok_or(OperatorError::Busy(id))?;
    patch_findings(&mut tx, id, change.findings).await?;
    let entry = AuditEntry {
        incident_id: Some(id),
        actor: actor.to_owned(),
        action: format!("operator.{}", event_name(event)),
        detail: serde_json::json!({"from": state.as_str(), "to": next.as_str(), "note": change.note}),
    };
    let change = Change {
        before: Some(state),
        after: Some(next),
        ..Change::default()
    };
    outbox_queue::enqueue(&mut tx, routes, id, &change, now).await?;
    audit_log::append_audit(&mut tx, backend, &[(now, entry)]).await?;
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
