//! The on-call console at `/`: server-rendered pages over the same store and action code
//! as the API, signed in with an API token exchanged for a session cookie. Pages read
//! without JavaScript; `console.js` only refreshes them from the event stream.

mod page;
mod session;
mod text;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{Path, Query};
use super::incidents::{find, perform};
use super::tokens::Caller;
use super::views::{ActionRequest, AuditEvent, IncidentView, NotificationView};
use super::{ApiError, AppState, read_body};
use crate::config::Role;
use crate::domain::{Event, IncidentState, transition};
use crate::store::{IncidentFilter, Waiting};
use page::{Frame, Row};
pub use session::Sessions;
use session::{LANG_COOKIE, Session, cookie, token_for};
use text::Lang;

const CSS: &str = include_str!("console.css");
const JS: &str = include_str!("console.js");

/// Scripts and styles from this origin only, no inline script, no frames, forms posting
/// only here; `connect-src` lets the script read the event stream and the pages.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The actions the console offers, with whether the API requires a reason.
const ACTIONS: [(&str, Event, bool); 5] = [
    ("approve", Event::Approve, false),
    ("retry", Event::Retry, false),
    ("confirm-cutover", Event::ConfirmCutover, false),
    ("reenable", Event::Reenable, false),
    ("cancel", Event::Cancel, true),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/lang", get(language))
        .route("/status", get(status))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/report.md", get(report))
        .route("/incidents/{id}/actions/{action}", get(confirm).post(act))
        .route(
            "/console/console.css",
            get(|| async { asset(CSS, "text/css") }),
        )
        .route(
            "/console/console.js",
            get(|| async { asset(JS, "text/javascript") }),
        )
        .layer(middleware::map_response(secure))
}

/// The headers every console response carries, errors included.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut response = body.into_response();
    let value = format!("{kind}; charset=utf-8");
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("text/plain")),
    );
    response
}

/// The stream's caller: a console session (a browser's `EventSource` cannot send a bearer
/// header) or a bearer token, at least `needed`.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    needed: Role,
) -> Result<Caller, ApiError> {
    if let Some(sessions) = state.console.as_ref()
        && let Some(session) = sessions.find(headers).await?
        && session.role >= needed
    {
        return Ok(Caller { name: session.name });
    }
    super::tokens::authorize(&state.tokens, headers, needed)
}

/// An error as a console page, with the API's status and message.
struct PageError {
    lang: Lang,
    error: ApiError,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let frame = Frame {
            lang: self.lang,
            title: status.canonical_reason().unwrap_or("error"),
            session: None,
            here: "/",
            cursor: None,
        };
        let body = page::message(&self.error.to_string(), "/", self.lang);
        (status, html(page::layout(&frame, &body))).into_response()
    }
}

fn html(body: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

fn lang(headers: &HeaderMap) -> Lang {
    Lang::parse(cookie(headers, LANG_COOKIE))
}

/// The request's session, or the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    let lang = lang(headers);
    let found = match state.console.as_ref() {
        Some(sessions) => sessions.find(headers).await,
        None => Ok(None),
    };
    match found {
        Ok(Some(session)) => Ok(session),
        Ok(None) => Err(Box::new(sign_in_page(lang, None, StatusCode::UNAUTHORIZED))),
        Err(err) => Err(Box::new(
            PageError {
                lang,
                error: err.into(),
            }
            .into_response(),
        )),
    }
}

fn sign_in_page(lang: Lang, message: Option<&str>, status: StatusCode) -> Response {
    let frame = Frame {
        lang,
        title: lang.t("sign_in"),
        session: None,
        here: "/",
        cursor: None,
    };
    (
        status,
        html(page::layout(&frame, &page::sign_in(lang, message))),
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

async fn form(state: &AppState, body: Body) -> Result<Vec<(String, String)>, ApiError> {
    let body = read_body(body, state.max_body_bytes).await?;
    Ok(form_urlencoded::parse(&body).into_owned().collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Refuses a state-changing form whose CSRF token is not the session's.
fn check_csrf(session: &Session, fields: &[(String, String)]) -> Result<(), ApiError> {
    match field(fields, "csrf") {
        Some(token) if session.csrf_matches(token) => Ok(()),
        _ => Err(ApiError::Forbidden(
            "the form's CSRF token is missing or not this session's; reload the page".into(),
        )),
    }
}

async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let lang = lang(&headers);
    let Some(sessions) = state.console.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let fields = match form(&state, body).await {
        Ok(fields) => fields,
        Err(error) => return PageError { lang, error }.into_response(),
    };
    let Some(token) = field(&fields, "token").and_then(|t| token_for(&state.tokens, t)) else {
        // 401, so the failed-authentication limit counts it as it counts a bad bearer token.
        return sign_in_page(
            lang,
            Some("that token is not valid"),
            StatusCode::UNAUTHORIZED,
        );
    };
    let id = match sessions.open(token).await {
        Ok(id) => id,
        Err(err) => {
            let error = err.into();
            return PageError { lang, error }.into_response();
        }
    };
    tracing::info!(token = %token.name, "console sign-in");
    let mut response = see_other("/");
    if let Ok(value) = HeaderValue::from_str(&sessions.set_cookie(Some(&id))) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let lang = lang(&headers);
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let checked = match form(&state, body).await {
        Ok(fields) => check_csrf(&session, &fields),
        Err(error) => Err(error),
    };
    if let Err(error) = checked {
        return PageError { lang, error }.into_response();
    }
    let Some(sessions) = state.console.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(err) = sessions.close(&headers).await {
        let error = err.into();
        return PageError { lang, error }.into_response();
    }
    let mut response = see_other("/");
    if let Ok(value) = HeaderValue::from_str(&sessions.set_cookie(None)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct LangQuery {
    to: Option<String>,
    back: Option<String>,
}

/// Switches the language, remembered in a cookie for a year; comes back to a path on this
/// site only.
async fn language(Query(query): Query<LangQuery>) -> Response {
    let lang = Lang::parse(query.to.as_deref());
    let back = query
        .back
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or_else(|| "/".into());
    let mut response = see_other(&back);
    let value = format!(
        "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Strict",
        lang.code()
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    waiting: Option<String>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let lang = lang(&headers);
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let wanted = query
        .state
        .filter(|s| IncidentState::NAMES.contains(&s.as_str()));
    let mine = query.waiting.as_deref() == Some("operator");
    let filter = IncidentFilter {
        state: wanted.clone(),
        access_key_id: None,
        waiting: mine.then_some(Waiting::Operator),
        before: None,
        limit: 100,
    };
    let rendered = async {
        let cursor = super::events::head(state.store.as_ref()).await?;
        let incidents = state.store.list_incidents(&filter).await?;
        let mut rows = Vec::with_capacity(incidents.len());
        for incident in &incidents {
            rows.push(Row {
                incident: IncidentView::from(incident),
                source: source(&state, &incident.incident).await?,
            });
        }
        Ok::<_, ApiError>((cursor, rows))
    }
    .await;
    match rendered {
        Ok((cursor, rows)) => {
            let here = "/";
            let frame = Frame {
                lang,
                title: lang.t("incidents"),
                session: Some(&session),
                here,
                cursor: Some(cursor),
            };
            html(page::layout(
                &frame,
                &page::list(lang, &rows, wanted.as_deref(), mine),
            ))
        }
        Err(error) => PageError { lang, error }.into_response(),
    }
}

/// Where the leak was reported from: a later sighting's source, or the actor of the
/// incident's first audit row (`source:<name>`, `operator:<name>`, a parent incident's worker).
async fn source(
    state: &AppState,
    incident: &crate::domain::Incident,
) -> Result<Option<String>, ApiError> {
    if let Some(parent) = incident.parent_incident_id {
        return Ok(Some(format!("#{parent}")));
    }
    let sightings = state.store.list_sightings(incident.id).await?;
    if let Some(first) = sightings.first() {
        return Ok(Some(first.source.clone()));
    }
    let audit = state.store.incident_audit(incident.id).await?;
    Ok(audit.first().map(|row| {
        row.actor
            .strip_prefix("source:")
            .unwrap_or(&row.actor)
            .to_owned()
    }))
}

/// The actions the incident's state allows, none for a viewer.
fn allowed(session: &Session, incident: &crate::domain::Incident) -> Vec<(&'static str, bool)> {
    if session.role < Role::Operator {
        return Vec::new();
    }
    ACTIONS
        .iter()
        .filter(|(_, event, _)| transition(incident.state, *event).is_ok())
        .map(|(name, _, reason)| (*name, *reason))
        .collect()
}

async fn incident(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let lang = lang(&headers);
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let rendered = async {
        let cursor = super::events::head(state.store.as_ref()).await?;
        let incident = find(&state, &id).await?;
        let audit = state.store.incident_audit(incident.incident.id).await?;
        let outbox = state.store.incident_outbox(incident.incident.id).await?;
        Ok::<_, ApiError>((cursor, incident, audit, outbox))
    }
    .await;
    let (cursor, incident, audit, outbox) = match rendered {
        Ok(parts) => parts,
        Err(error) => return PageError { lang, error }.into_response(),
    };
    let view = IncidentView::from(&incident);
    let incident = incident.incident;
    let actions = allowed(&session, &incident);
    let audit: Vec<AuditEvent> = audit.iter().map(AuditEvent::from).collect();
    let notifications: Vec<NotificationView> =
        outbox.into_iter().map(NotificationView::from).collect();
    let title = format!("#{}", incident.id);
    let here = format!("/incidents/{}", incident.id);
    let frame = Frame {
        lang,
        title: &title,
        session: Some(&session),
        here: &here,
        cursor: Some(cursor),
    };
    let detail = page::Detail {
        incident: &view,
        audit: &audit,
        notifications: &notifications,
        actions: &actions,
    };
    html(page::layout(&frame, &page::incident(lang, &detail)))
}

async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let lang = lang(&headers);
    if let Err(page) = signed_in(&state, &headers).await {
        return *page;
    }
    let built = async {
        let incident = find(&state, &id).await?.incident;
        let audit = state.store.incident_audit(incident.id).await?;
        let text = crate::report::markdown(&crate::report::build(&incident, &audit, lang.report()));
        Ok::<_, ApiError>((incident.id, text))
    }
    .await;
    match built {
        Ok((id, text)) => {
            let mut response = text.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            );
            if let Ok(value) =
                HeaderValue::from_str(&format!("attachment; filename=\"incident-{id}.md\""))
            {
                headers.insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(error) => PageError { lang, error }.into_response(),
    }
}

/// The confirmation step: a form that states the action and asks for a reason where the
/// API needs one.
async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let lang = lang(&headers);
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let incident = match find(&state, &id).await {
        Ok(found) => found.incident,
        Err(error) => return PageError { lang, error }.into_response(),
    };
    let Some((name, needs_reason)) = allowed(&session, &incident)
        .into_iter()
        .find(|(name, _)| *name == action)
    else {
        let error = if session.role < Role::Operator {
            ApiError::Forbidden(format!("token `{}` has the viewer role", session.name))
        } else {
            ApiError::Conflict(format!(
                "{action} is not possible while the incident is {}",
                incident.state.as_str()
            ))
        };
        return PageError { lang, error }.into_response();
    };
    let here = format!("/incidents/{}", incident.id);
    let frame = Frame {
        lang,
        title: lang.t("confirm"),
        session: Some(&session),
        here: &here,
        cursor: None,
    };
    html(page::layout(
        &frame,
        &page::confirm(lang, incident.id.0, name, needs_reason, &session),
    ))
}

/// Applies a confirmed action through the API's own code path, as the session's token.
async fn act(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    body: Body,
) -> Response {
    let lang = lang(&headers);
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let done = async {
        let fields = form(&state, body).await?;
        check_csrf(&session, &fields)?;
        if session.role < Role::Operator {
            return Err(ApiError::Forbidden(format!(
                "token `{}` has the viewer role; this needs operator",
                session.name
            )));
        }
        if field(&fields, "confirm") != Some("yes") {
            return Err(ApiError::BadRequest("the action was not confirmed".into()));
        }
        state.audit.check_appendable()?;
        let incident = find(&state, &id).await?.incident;
        let request = ActionRequest {
            reason: field(&fields, "reason").map(str::to_owned),
            ..ActionRequest::default()
        };
        let caller = Caller {
            name: session.name.clone(),
        };
        perform(
            &state,
            &caller,
            incident,
            &action,
            &request,
            Some("console"),
        )
        .await
    }
    .await;
    match done {
        Ok(result) => {
            let here = format!("/incidents/{}", result.incident.id);
            let frame = Frame {
                lang,
                title: lang.t("result"),
                session: Some(&session),
                here: &here,
                cursor: None,
            };
            let text = format!("{action}: {}", result.incident.state);
            html(page::layout(&frame, &page::message(&text, &here, lang)))
        }
        Err(error) => PageError { lang, error }.into_response(),
    }
}

async fn status(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let lang = lang(&headers);
    let session = match signed_in(&state, &headers).await {
        Ok(session) => session,
        Err(page) => return *page,
    };
    let gathered = async {
        let status = super::status::gather(&state).await?;
        // Undelivered notifications of the newest incidents: the store keeps no global count.
        let recent = state
            .store
            .list_incidents(&IncidentFilter {
                limit: 200,
                ..IncidentFilter::default()
            })
            .await?;
        let mut backlog = 0;
        for found in &recent {
            backlog += state
                .store
                .incident_outbox(found.incident.id)
                .await?
                .into_iter()
                .map(NotificationView::from)
                .filter(|n| n.state != "sent")
                .count();
        }
        Ok::<_, ApiError>((status, backlog))
    }
    .await;
    match gathered {
        Ok((status, backlog)) => {
            let frame = Frame {
                lang,
                title: lang.t("status"),
                session: Some(&session),
                here: "/status",
                cursor: None,
            };
            html(page::layout(&frame, &page::status(lang, &status, backlog)))
        }
        Err(error) => PageError { lang, error }.into_response(),
    }
}
