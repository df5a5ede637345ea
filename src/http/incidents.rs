//! The on-call API: list and inspect incidents, read their audit trail, report a leak by hand.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;

use super::tokens::authorize;
use super::{ApiError, AppState, accepted, read_body};
use crate::config::{Role, Sink};
use crate::domain::findings::RotationSink;
use crate::domain::undo;
use crate::domain::{AuditRecord, Event, Finding, Incident, IncidentId, IncidentState, Signal};
use crate::intake::{is_json, parse_generic, sha256_hex};
use crate::store::{Delivery, IncidentFilter, OperatorChange, OperatorError};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

/// An incident as the API shows it.
fn incident_view(incident: &Incident) -> serde_json::Value {
    let reason = match incident.state {
        IncidentState::NeedsAttention(reason) => Some(reason.as_str()),
        _ => None,
    };
    let explanation = crate::domain::explain::explanation(incident);
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    };
    serde_json::json!({
        "id": incident.id,
        "access_key_id": incident.access_key_id,
        "account_id": incident.account_id,
        "account_name": incident.account_name,
        "user_name": incident.user_name,
        "owner_type": incident.owner_type,
        "leak_url": incident.leak_url,
        "detected_at": time(Some(incident.detected_at)),
        "stated_detected_at": time(incident.stated_detected_at),
        "state": incident.state.as_str(),
        "current_step": incident.state.current_step().map(|s| s.as_str()),
        "reason": reason,
        "explanation": explanation,
        "waiting_for": crate::domain::explain::waiting_for(incident),
        "dry_run": incident.dry_run,
        "path": incident.path.map(|p| p.as_str()),
        "created_at": time(Some(incident.created_at)),
        "updated_at": time(Some(incident.updated_at)),
        "closed_at": time(incident.closed_at),
        "attempt": incident.attempt,
        "step_attempts": incident.step_attempts,
        "next_attempt_at": time(incident.next_attempt_at),
        "lease_owner": incident.lease_owner,
        "lease_expires_at": time(incident.lease_expires_at),
        "contained_at": time(incident.contained_at),
        "time_to_containment_ms": incident.time_to_containment_ms(),
        "settle_audit_at": time(incident.settle_audit_at),
        "parent_incident_id": incident.parent_incident_id,
        "last_error": incident.last_error,
        "findings": incident.findings,
    })
}

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    access_key_id: Option<String>,
    waiting: Option<String>,
    /// Text, so that `limit=abc` gets this API's error rather than the framework's.
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let filter = IncidentFilter {
        state: query
            .state
            .map(|s| {
                if IncidentState::NAMES.contains(&s.as_str()) {
                    Ok(s)
                } else {
                    Err(ApiError::BadRequest(format!(
                        "unknown state {s:?}; one of {}",
                        IncidentState::NAMES.join(", ")
                    )))
                }
            })
            .transpose()?,
        access_key_id: query.access_key_id,
        waiting_for_approval: match query.waiting.as_deref() {
            None => false,
            Some("approval") => true,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown waiting filter {other:?}; the one filter is waiting=approval"
                )));
            }
        },
        before: query
            .cursor
            .map(|c| {
                c.parse()
                    .map(IncidentId)
                    .map_err(|_| ApiError::BadRequest("cursor is not one this API returned".into()))
            })
            .transpose()?,
        // One more than the page: a next page is offered only when it has something on it.
        limit: page_size(query.limit.as_deref())? + 1,
    };
    let mut incidents = state.store.list_incidents(&filter).await?;
    let page = filter.limit as usize - 1;
    let next_cursor = (incidents.len() > page).then(|| {
        incidents.truncate(page);
        incidents.last().map(|i| i.id.to_string())
    });
    let next_cursor = next_cursor.flatten();
    let views: Vec<serde_json::Value> = incidents.iter().map(incident_view).collect();
    Ok(Json(
        serde_json::json!({"incidents": views, "next_cursor": next_cursor}),
    ))
}

fn page_size(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit.map_or(Ok(DEFAULT_PAGE), str::parse) {
        Ok(limit @ 1..=MAX_PAGE) => Ok(limit),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        ))),
    }
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let incident = find(&state, &id).await?;
    let sightings = state.store.list_sightings(incident.id).await?;
    let mut body = incident_view(&incident);
    body["sightings"] = serde_json::to_value(sightings).map_err(|_| ApiError::Internal)?;
    let notifications = state.store.incident_outbox(incident.id).await?;
    body["notifications"] = serde_json::to_value(notifications).map_err(|_| ApiError::Internal)?;
    Ok(Json(body))
}

pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let incident = find(&state, &id).await?;
    let events: Vec<serde_json::Value> = state
        .store
        .incident_audit(incident.id)
        .await?
        .iter()
        .map(audit_view)
        .collect();
    Ok(Json(
        serde_json::json!({"incident_id": incident.id, "events": events}),
    ))
}

pub(super) fn audit_view(record: &AuditRecord) -> serde_json::Value {
    let mut view = serde_json::to_value(record).unwrap_or_default();
    view["detail"] = record.detail();
    view
}

/// `POST /v1/incidents`: an operator reports a leak in the generic schema.
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&state.tokens, &headers, Role::Operator)?;
    let body = read_body(&headers, body, state.max_body_bytes).await?;
    if !is_json(&headers) {
        return Err(ApiError::UnsupportedMediaType(
            "content type must be application/json".into(),
        ));
    }
    let value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "malformed notification: the body is not valid JSON: {e}"
        ))
    })?;
    let notification = parse_generic(value)
        .map_err(|e| ApiError::BadRequest(format!("malformed notification: {e}")))?;
    let body_sha256 = sha256_hex(&body);
    let delivery = Delivery {
        source: "manual".into(),
        format: "generic",
        delivery_id: notification
            .event_id
            .clone()
            .unwrap_or_else(|| format!("sha256:{body_sha256}")),
        received_at: chrono::Utc::now(),
        body_sha256,
        actor: format!("operator:{}", caller.name),
        signal: Signal::Leak(notification),
        parent: None,
    };
    let outcome = state.intake.queue().submit(delivery).await?;
    tracing::info!(
        incident.id = outcome.incident_id().map(|id| id.0),
        actor = %format!("operator:{}", caller.name),
        outcome = outcome.as_str(),
        "leak reported by an operator"
    );
    Ok(accepted(outcome))
}

/// `POST /v1/incidents/{id}/actions/{action}`: operator actions, checked by the state machine.
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let caller = authorize(&state.tokens, &headers, Role::Operator)?;
    state.audit.check_appendable()?;
    let incident = find(&state, &id).await?;
    let body = read_body(&headers, body, state.max_body_bytes).await?;
    let mut cancel_plan = None;
    let mut change = OperatorChange {
        note: serde_json::json!({"action": action}),
        ..OperatorChange::default()
    };
    let event = match action.as_str() {
        "retry" => Event::Retry,
        "confirm-cutover" => Event::ConfirmCutover,
        "reenable" => Event::Reenable,
        "approve" => {
            let step = match incident.state {
                IncidentState::Active(step) => step,
                IncidentState::NeedsAttention(reason) => {
                    reason.resume_step().unwrap_or(crate::domain::Step::Triage)
                }
                _ => crate::domain::Step::Triage,
            };
            let pending = incident
                .findings
                .approvals
                .get(step)
                .filter(|a| !a.is_granted());
            let Some(pending) = pending else {
                return Err(ApiError::Conflict(format!(
                    "no approval is pending: the incident is {}",
                    incident.state.as_str()
                )));
            };
            let granted = pending.granted(chrono::Utc::now(), format!("operator:{}", caller.name));
            change.findings.push(Finding::Approval(step, granted));
            change.note["step"] = serde_json::json!(step.as_str());
            Event::Approve
        }
        "cancel" => {
            // A cancellation undoes akguard's work: the audit log must say why.
            let request = serde_json::from_slice::<serde_json::Value>(&body).ok();
            let why = request
                .as_ref()
                .and_then(|v| v.get("reason").and_then(|r| r.as_str()).map(str::to_owned))
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| ApiError::BadRequest("cancel needs {\"reason\": \"...\"}".into()))?;
            let force = request.as_ref().and_then(|v| v.get("force")) == Some(&true.into());
            if let Some(parent) = incident.parent_incident_id
                && !force
            {
                return Err(ApiError::Conflict(format!(
                    "this key was created by the leaked key of incident {parent}: it is the \
                     attacker's, and cancelling would re-enable it if it is not deleted yet; \
                     send {{\"reason\": \"...\", \"force\": true}} if you are sure"
                )));
            }
            let records = state.store.incident_audit(incident.id).await?;
            let summary = undo::summary(&undo::plan(&records));
            change.note["reason"] = serde_json::json!(why);
            change.note["force"] = serde_json::json!(force);
            change.note["plan"] = summary.clone();
            cancel_plan = Some(summary);
            Event::Cancel
        }
        "set-rotation" => match rotation_sink(&body)? {
            Some((sink, parsed)) => {
                // An operator token must not be able to send a key anywhere it can read.
                state
                    .sinks
                    .allow_operator(&parsed)
                    .map_err(|e| ApiError::Forbidden(format!("set-rotation: {e}")))?;
                change.note["sink"] = serde_json::json!(sink);
                change.path = Some(crate::domain::Path::RamKeyRotatable);
                change.findings.push(Finding::RotationSink(Some(sink)));
                Event::SetRotation
            }
            None => {
                if incident.path != Some(crate::domain::Path::RamKeyRotatable) {
                    return Err(ApiError::Conflict(
                        "the key is already left to a person to rotate".into(),
                    ));
                }
                change.note["rotatable"] = serde_json::json!(false);
                change.path = Some(crate::domain::Path::RamKeyInUse);
                change.findings.push(Finding::RotationSink(None));
                Event::ClearRotation
            }
        },
        other => {
            return Err(ApiError::NotFound(format!(
                "unknown action {other:?}; this version supports: retry, confirm-cutover, \
                 set-rotation, reenable, cancel, approve"
            )));
        }
    };
    let actor = format!("operator:{}", caller.name);
    match state
        .store
        .apply_operator_event(incident.id, event, &actor, change)
        .await
    {
        Ok(_) => {
            tracing::info!(
                incident.id = incident.id.0,
                action = %action,
                actor = %actor,
                "operator action applied"
            );
            state.wake.notify_waiters();
            let incident = find(&state, &id).await?;
            let mut view = incident_view(&incident);
            if let Some(plan) = cancel_plan {
                view["cancel"] = plan;
            }
            Ok(Json(view))
        }
        Err(OperatorError::Illegal(illegal)) => Err(ApiError::Conflict(format!(
            "{action} is not possible while the incident is {}{}",
            illegal.state.as_str(),
            match illegal.state {
                IncidentState::NeedsAttention(reason) => format!(" ({})", reason.as_str()),
                _ => String::new(),
            }
        ))),
        Err(OperatorError::Busy(_)) => Err(ApiError::Conflict(
            "a worker is running a step of this incident; try again in a moment".into(),
        )),
        Err(OperatorError::NotFound(_)) => Err(ApiError::NotFound(format!("no incident {id:?}"))),
        Err(OperatorError::Store(err)) => Err(err.into()),
    }
}

/// `{"sink": "kms", "secret_name": "..."}`, `{"sink": "file", "path": "/..."}`, or
/// `{"rotatable": false}` (`None`: a person rotates the key). The sink comes as its finding
/// and as the sink it names.
fn rotation_sink(body: &[u8]) -> Result<Option<(RotationSink, Sink)>, ApiError> {
    let bad = |m: &str| ApiError::BadRequest(format!("set-rotation: {m}"));
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| bad("the body must be JSON naming a sink"))?;
    if value.get("rotatable") == Some(&serde_json::Value::Bool(false)) {
        return Ok(None);
    }
    let text = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match text("sink") {
        Some("kms") => {
            let name = text("secret_name").ok_or_else(|| bad("a kms sink needs secret_name"))?;
            Ok(Some((
                RotationSink::Kms {
                    secret_name: name.to_owned(),
                },
                Sink::Kms {
                    secret_name: name.to_owned(),
                },
            )))
        }
        Some("file") => {
            let path = text("path")
                .filter(|p| std::path::Path::new(p).is_absolute())
                .ok_or_else(|| bad("a file sink needs an absolute path"))?;
            Ok(Some((
                RotationSink::File {
                    path: path.to_owned(),
                },
                Sink::File { path: path.into() },
            )))
        }
        _ => Err(bad(
            "sink must be kms or file, or send {\"rotatable\": false}",
        )),
    }
}

pub(super) async fn find(state: &AppState, raw_id: &str) -> Result<Incident, ApiError> {
    let not_found = || ApiError::NotFound(format!("no incident {raw_id:?}"));
    let id = raw_id.parse().map(IncidentId).map_err(|_| not_found())?;
    state.store.get_incident(id).await?.ok_or_else(not_found)
}
