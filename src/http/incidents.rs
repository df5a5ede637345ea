//! The on-call API: list and inspect incidents, read their audit trail, report a leak by hand.

use super::extract::{Path, Query};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::tokens::{Caller, authorize};
use super::views::{
    Accepted, ActionRequest, ActionResult, AuditEvent, AuditTrail, ErrorBody, IncidentDetail,
    IncidentPage, IncidentView, NotificationView, SightingView, TokenRefusals,
};
use super::{ApiError, AppState, accepted, read_body};
use crate::config::{Role, Sink};
use crate::domain::findings::RotationSink;
use crate::domain::undo;
use crate::domain::{Event, Finding, IncidentId, IncidentState, Signal};
use crate::intake::{GenericNotification, is_json, parse_generic, sha256_hex};
use crate::store::Scheduled;
use crate::store::{Delivery, IncidentFilter, OperatorChange, OperatorError, Waiting};

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 200;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only incidents in this state (a state name, e.g. `awaiting_operator`).
    state: Option<String>,
    /// Only incidents of this AccessKey ID.
    access_key_id: Option<String>,
    /// `approval`: only incidents waiting for an operator's approval; `operator`: only
    /// incidents waiting for a person's action.
    waiting: Option<String>,
    /// Page size, 1 to 200 (default 50). Text in the code, so that `limit=abc` gets this
    /// API's error rather than the framework's.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The operator actions.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ActionName {
    Retry,
    ConfirmCutover,
    SetRotation,
    Reenable,
    Cancel,
    Approve,
}

/// Incidents, newest first, a page at a time: pass `next_cursor` back as `cursor`.
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents", security(("viewer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of incidents.", body = IncidentPage),
        (status = 400, description = "The request is malformed: a parameter or the body is not what this operation takes.", body = ErrorBody),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Result<Json<IncidentPage>, ApiError> {
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
        waiting: match query.waiting.as_deref() {
            None => None,
            Some("approval") => Some(Waiting::Approval),
            Some("operator") => Some(Waiting::Operator),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "unknown waiting filter {other:?}; one of approval, operator"
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
        incidents.last().map(|i| i.incident.id.to_string())
    });
    let next_cursor = next_cursor.flatten();
    Ok(Json(IncidentPage {
        incidents: incidents.iter().map(IncidentView::from).collect(),
        next_cursor,
    }))
}

fn page_size(limit: Option<&str>) -> Result<u32, ApiError> {
    match limit.map_or(Ok(DEFAULT_PAGE), str::parse) {
        Ok(limit @ 1..=MAX_PAGE) => Ok(limit),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_PAGE}"
        ))),
    }
}

/// One incident with its sightings and notifications.
#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "incidents", security(("viewer" = [])),
    params(("id" = i64, Path, description = "The incident's id.")),
    responses(
        (status = 200, description = "The incident.", body = IncidentDetail),
        (status = 400, description = "The path does not decode (not UTF-8).", body = ErrorBody),
        (status = 404, description = "No such incident (or action, or source).", body = ErrorBody),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<IncidentDetail>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let found = find(&state, &id).await?;
    let sightings = state.store.list_sightings(found.incident.id).await?;
    let notifications = state.store.incident_outbox(found.incident.id).await?;
    Ok(Json(IncidentDetail {
        incident: IncidentView::from(&found),
        sightings: sightings.into_iter().map(SightingView::from).collect(),
        notifications: notifications
            .into_iter()
            .map(NotificationView::from)
            .collect(),
    }))
}

/// The incident's audit trail, oldest first.
#[utoipa::path(get, path = "/v1/incidents/{id}/audit", tag = "incidents", security(("viewer" = [])),
    params(("id" = i64, Path, description = "The incident's id.")),
    responses(
        (status = 200, description = "The audit rows of the incident.", body = AuditTrail),
        (status = 400, description = "The path does not decode (not UTF-8).", body = ErrorBody),
        (status = 404, description = "No such incident (or action, or source).", body = ErrorBody),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<AuditTrail>, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let incident = find(&state, &id).await?.incident;
    let records = state.store.incident_audit(incident.id).await?;
    Ok(Json(AuditTrail {
        incident_id: incident.id.0,
        events: records.iter().map(AuditEvent::from).collect(),
    }))
}

/// `POST /v1/incidents`: an operator reports a leak in the generic schema.
/// An operator reports a leak by hand, in the generic schema.
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents", security(("operator" = [])),
    request_body = GenericNotification,
    responses(
        (status = 202, description = "Recorded (or recognised as a replay).", body = Accepted),
        (status = 400, description = "The request is malformed: a parameter or the body is not what this operation takes.", body = ErrorBody),
        (status = 403, description = "The token's role is too low for this operation (viewer on an operator operation).", body = ErrorBody),
        (status = 413, description = "The body is larger than `intake.max_body_bytes`.", body = ErrorBody),
        (status = 415, description = "The body is not `application/json`.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = authorize(&state.tokens, &headers, Role::Operator)?;
    let body = read_body(body, state.max_body_bytes).await?;
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
    let outcome = state.intake.queue().submit(delivery).await;
    crate::monitoring::record::intake("manual", crate::intake::intake_outcome(&outcome));
    let outcome = outcome?;
    tracing::info!(
        incident.id = outcome.incident_id().map(|id| id.0),
        actor = %format!("operator:{}", caller.name),
        outcome = outcome.as_str(),
        "leak reported by an operator"
    );
    Ok(accepted(outcome))
}

/// `POST /v1/incidents/{id}/actions/{action}`: operator actions, checked by the state machine.
/// An operator action, applied only where the incident's state allows it, with an audit row
/// naming the token.
#[utoipa::path(post, path = "/v1/incidents/{id}/actions/{action}", tag = "incidents",
    security(("operator" = [])),
    params(
        ("id" = i64, Path, description = "The incident's id."),
        ("action" = ActionName, Path, description = "The action."),
    ),
    request_body(content = ActionRequest, content_type = "application/json",
        description = "Optional; when sent it must fit; only `cancel` and `set-rotation` use it."),
    responses(
        (status = 200, description = "Applied: the incident as it now stands.", body = ActionResult),
        (status = 400, description = "The request is malformed: a parameter or the body is not what this operation takes.", body = ErrorBody),
        (status = 403, description = "The token's role is too low for this operation (viewer on an operator operation), or `set-rotation` names a sink `rotation.operator_sinks` does not allow.", body = ErrorBody),
        (status = 404, description = "No such incident (or action, or source).", body = ErrorBody),
        (status = 409, description = "The incident's state does not allow this action now, or a worker holds it for a moment.", body = ErrorBody),
        (status = 413, description = "The body is larger than `intake.max_body_bytes`.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> Result<Json<ActionResult>, ApiError> {
    let caller = authorize(&state.tokens, &headers, Role::Operator)?;
    state.audit.check_appendable()?;
    let incident = find(&state, &id).await?.incident;
    let body = read_body(body, state.max_body_bytes).await?;
    let request = action_request(&body)?;
    perform(&state, &caller, incident, &action, &request, None)
        .await
        .map(Json)
}

/// An operator action on `incident`, the one path for the API and the console; `via` names
/// the surface in the audit row when it is not the API.
pub(super) async fn perform(
    state: &AppState,
    caller: &Caller,
    incident: crate::domain::Incident,
    action: &str,
    request: &ActionRequest,
    via: Option<&'static str>,
) -> Result<ActionResult, ApiError> {
    let id = incident.id.to_string();
    let mut cancel_plan = None;
    let mut change = OperatorChange {
        note: serde_json::json!({"action": action}),
        ..OperatorChange::default()
    };
    if let Some(via) = via {
        change.note["via"] = serde_json::json!(via);
    }
    let name = ActionName::deserialize(
        serde::de::value::StrDeserializer::<serde::de::value::Error>::new(action),
    )
    .map_err(|_| {
        ApiError::NotFound(format!(
            "unknown action {action:?}; this version supports: retry, confirm-cutover, \
             set-rotation, reenable, cancel, approve"
        ))
    })?;
    let event = match name {
        ActionName::Retry => Event::Retry,
        ActionName::ConfirmCutover => Event::ConfirmCutover,
        ActionName::Reenable => Event::Reenable,
        ActionName::Approve => {
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
        ActionName::Cancel => {
            // A cancellation undoes akguard's work: the audit log must say why.
            let why = request
                .reason
                .clone()
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| ApiError::BadRequest("cancel needs {\"reason\": \"...\"}".into()))?;
            let force = request.force == Some(true);
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
        ActionName::SetRotation => match rotation_sink(request)? {
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
            let incident = find(state, &id).await?;
            Ok(ActionResult {
                incident: IncidentView::from(&incident),
                cancel: cancel_plan,
            })
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
fn rotation_sink(request: &ActionRequest) -> Result<Option<(RotationSink, Sink)>, ApiError> {
    let bad = |m: &str| ApiError::BadRequest(format!("set-rotation: {m}"));
    if request.rotatable == Some(false) {
        return Ok(None);
    }
    let text = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    match text(&request.sink).as_deref() {
        Some("kms") => {
            let name =
                text(&request.secret_name).ok_or_else(|| bad("a kms sink needs secret_name"))?;
            Ok(Some((
                RotationSink::Kms {
                    secret_name: name.clone(),
                },
                Sink::Kms { secret_name: name },
            )))
        }
        Some("file") => {
            let path = text(&request.path)
                .filter(|p| std::path::Path::new(p).is_absolute())
                .ok_or_else(|| bad("a file sink needs an absolute path"))?;
            Ok(Some((
                RotationSink::File { path: path.clone() },
                Sink::File { path: path.into() },
            )))
        }
        _ => Err(bad(
            "sink must be kms or file, or send {\"rotatable\": false}",
        )),
    }
}

/// An action's body: none, or a JSON object of the documented fields. The parser's own
/// message is not passed on, as it may quote the body.
fn action_request(body: &[u8]) -> Result<ActionRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ActionRequest::default());
    }
    serde_json::from_slice(body).map_err(|_| {
        ApiError::BadRequest(
            "the body is not an action request: a JSON object with reason, force, sink, \
             secret_name, path or rotatable (see /openapi.json)"
                .into(),
        )
    })
}

pub(super) async fn find(state: &AppState, raw_id: &str) -> Result<Scheduled, ApiError> {
    let not_found = || ApiError::NotFound(format!("no incident {raw_id:?}"));
    let id = raw_id.parse().map(IncidentId).map_err(|_| not_found())?;
    state.store.get_incident(id).await?.ok_or_else(not_found)
}
