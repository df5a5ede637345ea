//! What the API sends and accepts, as types: the handlers build these, and the OpenAPI
//! document (`/openapi.json`) is derived from the same types, so the two cannot drift.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use crate::domain::{AuditRecord, Findings, IncidentState, Sighting};
use crate::store::{DeliveryRecord, OutboxState, Scheduled};

/// Every error: a stable `code` for programs and a `message` for people. Server faults
/// (`internal`) never say more than that; their cause is in the akguard log.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// The refusals every operation behind an API token can answer with, documented once.
#[derive(IntoResponses)]
#[expect(
    dead_code,
    reason = "only its OpenAPI description is used; handlers answer with ErrorBody"
)]
pub enum TokenRefusals {
    #[response(
        status = 401,
        description = "No bearer token, or not one akguard knows."
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 429,
        description = "Too many failed authentications from this address; see `Retry-After`."
    )]
    Throttled(ErrorBody),
    #[response(
        status = 503,
        description = "The request timed out, akguard is shutting down, or the audit chain is broken."
    )]
    Unavailable(ErrorBody),
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

/// The `code` of an error, one per HTTP status the API answers with.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    BadRequest,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    TooManyRequests,
    Internal,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /readyz`: `ready` with every check, or `unready` with the failing ones named in
/// `error.message`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// Each check by name: `{"status": "ok" | "failing" | ..., "reason": ...}`.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
}

/// The answer to an accepted notification or report (`202`).
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The incident it opened or joined; `null` when `outcome` is `ignored`.
    pub incident_id: Option<i64>,
    /// It joined an incident that already existed.
    pub duplicate: bool,
    #[schema(value_type = String, example = "created")]
    pub outcome: &'static str,
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// An incident: what leaked, where it stands, what was found and done.
#[derive(Serialize, ToSchema)]
pub struct IncidentView {
    pub id: i64,
    pub access_key_id: String,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub user_name: Option<String>,
    /// `ram_user`, `account`, `sts` or `unknown`.
    #[schema(value_type = String)]
    pub owner_type: crate::domain::OwnerType,
    pub leak_url: Option<String>,
    /// When akguard holds the leak to have been detected (RFC 3339).
    pub detected_at: String,
    /// The detection time the notification stated, when it stated one.
    pub stated_detected_at: Option<String>,
    /// One of the state names (`new`, `triage`, ..., `awaiting_operator`,
    /// `needs_attention`, `resolved`, `cancelled`).
    pub state: &'static str,
    pub current_step: Option<&'static str>,
    /// Why a person is needed, when `state` is `needs_attention`.
    pub reason: Option<&'static str>,
    /// What happened and what a person must do, in words.
    pub explanation: Option<String>,
    /// The approval the incident waits for: `{"approval": step, "since", "deadline"}`.
    #[schema(value_type = Option<Object>)]
    pub waiting_for: Option<serde_json::Value>,
    pub dry_run: bool,
    pub path: Option<&'static str>,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
    pub attempt: i64,
    pub step_attempts: u32,
    pub next_attempt_at: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<String>,
    pub contained_at: Option<String>,
    pub time_to_containment_ms: Option<i64>,
    pub settle_audit_at: Option<String>,
    /// The incident whose leaked key created this key.
    pub parent_incident_id: Option<i64>,
    pub last_error: Option<String>,
    /// One record per step (triage, revoke, mfa, audit, billing, ...).
    #[schema(value_type = Object)]
    pub findings: Findings,
}

impl From<&Scheduled> for IncidentView {
    fn from(Scheduled { incident, schedule }: &Scheduled) -> Self {
        let reason = match incident.state {
            IncidentState::NeedsAttention(reason) => Some(reason.as_str()),
            _ => None,
        };
        Self {
            id: incident.id.0,
            access_key_id: incident.access_key_id.to_string(),
            account_id: incident.account_id.clone(),
            account_name: incident.account_name.clone(),
            user_name: incident.user_name.clone(),
            owner_type: incident.owner_type,
            leak_url: incident.leak_url.clone(),
            detected_at: time(incident.detected_at),
            stated_detected_at: incident.stated_detected_at.map(time),
            state: incident.state.as_str(),
            current_step: incident.state.current_step().map(|s| s.as_str()),
            reason,
            explanation: crate::domain::explain::explanation(incident),
            waiting_for: crate::domain::explain::waiting_for(incident),
            dry_run: incident.dry_run,
            path: incident.path.map(|p| p.as_str()),
            created_at: time(incident.created_at),
            updated_at: time(incident.updated_at),
            closed_at: incident.closed_at.map(time),
            attempt: schedule.attempt,
            step_attempts: schedule.step_attempts,
            next_attempt_at: schedule.next_attempt_at.map(time),
            lease_owner: schedule.lease_owner.clone(),
            lease_expires_at: schedule.lease_expires_at.map(time),
            contained_at: incident.contained_at.map(time),
            time_to_containment_ms: incident.time_to_containment_ms(),
            settle_audit_at: schedule.settle_audit_at.map(time),
            parent_incident_id: incident.parent_incident_id.map(|p| p.0),
            last_error: incident.last_error.clone(),
            findings: incident.findings.clone(),
        }
    }
}

/// A page of incidents, newest first.
#[derive(Serialize, ToSchema)]
pub struct IncidentPage {
    pub incidents: Vec<IncidentView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// An incident with every report of its key and its notifications.
#[derive(Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub sightings: Vec<SightingView>,
    pub notifications: Vec<NotificationView>,
}

/// One report of the incident's key (the first leak, later sightings, activity).
#[derive(Serialize, ToSchema)]
pub struct SightingView {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub observed_at: DateTime<Utc>,
    /// The report, normalized.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

impl From<Sighting> for SightingView {
    fn from(s: Sighting) -> Self {
        Self {
            id: s.id,
            source: s.source,
            kind: s.kind,
            observed_at: s.observed_at,
            detail: s.detail,
        }
    }
}

/// A notification to an on-call channel and how its delivery stands.
#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub channel: String,
    pub event: String,
    pub dedup_key: String,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    pub attempts: u32,
    /// What the platform answered to the last failed try.
    pub last_error: Option<String>,
}

impl From<OutboxState> for NotificationView {
    fn from(o: OutboxState) -> Self {
        Self {
            channel: o.channel,
            event: o.event,
            dedup_key: o.dedup_key,
            state: o.state,
            attempts: o.attempts,
            last_error: o.last_error,
        }
    }
}

/// The incident after an operator's action; a cancellation adds what it undoes.
#[derive(Serialize, ToSchema)]
pub struct ActionResult {
    #[serde(flatten)]
    pub incident: IncidentView,
    /// `cancel` only: the undo plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cancel: Option<serde_json::Value>,
}

/// One audit row: who did what to which incident, hash-chained to the row before.
#[derive(Serialize, ToSchema)]
pub struct AuditEvent {
    /// Ordered, gap-free: also the event stream's cursor.
    pub id: i64,
    pub incident_id: Option<i64>,
    pub at: DateTime<Utc>,
    /// `worker:...`, `operator:<token name>`, `source:<name>`, `system`.
    pub actor: String,
    /// `incident.transition`, `operator.<action>`, `incident.sighting`, ...
    pub action: String,
    /// The row's facts; a transition has `from` and `to` state names.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&AuditRecord> for AuditEvent {
    fn from(r: &AuditRecord) -> Self {
        Self {
            id: r.id,
            incident_id: r.incident_id.map(|i| i.0),
            at: r.at,
            actor: r.actor.clone(),
            action: r.action.clone(),
            detail: r.detail(),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
        }
    }
}

/// An incident's audit trail, oldest first.
#[derive(Serialize, ToSchema)]
pub struct AuditTrail {
    pub incident_id: i64,
    pub events: Vec<AuditEvent>,
}

/// The data of a `notification` event on `/v1/events`: one settled delivery attempt.
#[derive(Serialize, ToSchema)]
pub struct DeliveryEvent {
    /// Ordered: the event stream's delivery cursor.
    pub id: i64,
    pub incident_id: i64,
    pub channel: String,
    /// The notice: `opened`, `contained`, `needs_person`, `resolved`, ...
    pub event: String,
    /// `sent`, `failed` (given up) or `pending` (to be tried again).
    pub state: String,
    pub attempts: u32,
    /// What the platform answered, when it refused.
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&DeliveryRecord> for DeliveryEvent {
    fn from(d: &DeliveryRecord) -> Self {
        Self {
            id: d.id,
            incident_id: d.incident_id.0,
            channel: d.channel.clone(),
            event: d.event.clone(),
            state: d.state.clone(),
            attempts: d.attempts,
            error: d.error.clone(),
            at: d.at,
        }
    }
}

/// `GET /v1/status`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    pub version: &'static str,
    pub database: Database,
    pub audit_chain: AuditChain,
    /// Every readiness check passes.
    pub ready: bool,
    /// Each readiness check by name, as `/readyz` shows them.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
    /// The id of the replica that answered.
    pub replica: String,
    /// The replicas on this database heard from in the last minute, oldest first.
    pub replicas: Vec<ReplicaView>,
    /// The singleton jobs whose lease is held now, and by which replica.
    pub singleton_jobs: Vec<SingletonJob>,
}

/// One daemon on the shared database.
#[derive(Serialize, ToSchema)]
pub struct ReplicaView {
    pub id: String,
    /// The host name its operating system reports.
    pub host: String,
    pub version: String,
    pub started_at: String,
    pub last_heartbeat: String,
    /// The Alibaba Cloud account it acts in, once learned.
    pub account_id: Option<String>,
}

/// Account-wide work one replica at a time runs: `mfa_sweep`, `audit_batch`,
/// `security_center` (for the home account; `mfa_sweep:<account id>` and so on for another).
#[derive(Serialize, ToSchema)]
pub struct SingletonJob {
    pub name: String,
    /// The holding replica's id.
    pub holder: String,
    /// Grows with every change of holder.
    pub fencing_token: i64,
    pub lease_expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct Database {
    /// `sqlite`.
    pub backend: &'static str,
}

/// The audit chain: intact or where it breaks, its length and head hash.
#[derive(Serialize, ToSchema)]
pub struct AuditChain {
    pub intact: bool,
    pub rows: u64,
    pub head: String,
    pub reason: Option<String>,
    pub checked_at: String,
}

/// The body of an operator action. `retry`, `confirm-cutover`, `reenable` and `approve`
/// take none (any body is ignored). `cancel` needs `reason` (and `force: true` for a key
/// another incident's key created). `set-rotation` names a sink: `{"sink": "kms",
/// "secret_name": ...}`, `{"sink": "file", "path": "/absolute"}`, or `{"rotatable": false}`
/// to leave the rotation to a person.
#[derive(Default, Deserialize, ToSchema)]
pub struct ActionRequest {
    /// `cancel`: why, for the audit log.
    pub reason: Option<String>,
    /// `cancel`: cancel a key another incident's key created.
    pub force: Option<bool>,
    /// `set-rotation`: `kms` or `file`.
    pub sink: Option<String>,
    /// `set-rotation` to `kms`: the KMS secret to write the new key to.
    pub secret_name: Option<String>,
    /// `set-rotation` to `file`: an absolute path to write the new key to.
    pub path: Option<String>,
    /// `set-rotation`: `false` leaves the rotation to a person.
    pub rotatable: Option<bool>,
}
