//! Reading rows into domain values: the columns each read selects, and times stored as Unix
//! milliseconds.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Scheduled, StoreError};
use crate::domain::{
    AccessKeyId, AuditRecord, Incident, IncidentId, IncidentState, OwnerType, Path, Schedule,
};

/// The record's columns and the schedule's, which live in the same row.
pub(super) const INCIDENT_COLUMNS: &str = "id, access_key_id, account_id, account_name, user_name, \
    owner_type, leak_url, detected_at, stated_detected_at, state, created_at, updated_at, closed_at, attempt, \
    next_attempt_at, lease_owner, lease_expires_at, path, reason, resume_step, step_attempts, \
    last_error, contained_at, settle_audit_at, parent_incident_id, findings, dry_run";
pub(super) const AUDIT_COLUMNS: &str =
    "id, incident_id, at, actor, action, detail, prev_hash, hash";

pub(super) fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| StoreError::Corrupt(format!("time {ms}")))
}

pub(super) fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

pub(super) fn incident_from_row(row: &AnyRow) -> Result<Incident, StoreError> {
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
        contained_at: opt_time(row.try_get("contained_at")?)?,
        parent_incident_id: row
            .try_get::<Option<i64>, _>("parent_incident_id")?
            .map(IncidentId),
        last_error: row.try_get("last_error")?,
        findings: serde_json::from_str(&findings)
            .map_err(|e| StoreError::Corrupt(format!("findings: {e}")))?,
        dry_run: row.try_get::<i64, _>("dry_run")? != 0,
    })
}

/// The scheduling columns of a row read with [`INCIDENT_COLUMNS`].
pub(super) fn schedule_from_row(row: &AnyRow) -> Result<Schedule, StoreError> {
    Ok(Schedule {
        attempt: row.try_get("attempt")?,
        step_attempts: row.try_get::<i64, _>("step_attempts")? as u32,
        next_attempt_at: opt_time(row.try_get("next_attempt_at")?)?,
        settle_audit_at: opt_time(row.try_get("settle_audit_at")?)?,
        lease_owner: row.try_get("lease_owner")?,
        lease_expires_at: opt_time(row.try_get("lease_expires_at")?)?,
    })
}

/// An incident's record and its schedule, from one row.
pub(super) fn scheduled_from_row(row: &AnyRow) -> Result<Scheduled, StoreError> {
    Ok(Scheduled {
        incident: incident_from_row(row)?,
        schedule: schedule_from_row(row)?,
    })
}

pub(super) fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
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
