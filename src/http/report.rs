//! `GET /v1/incidents/{id}/report`: the incident report, as Markdown or (`?format=json`) as
//! the same content in data, in `?lang=en` (the default) or `ja`.

use super::extract::{Path, Query};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::incidents::find;
use super::tokens::authorize;
use super::views::{ErrorBody, TokenRefusals};
use super::{ApiError, AppState};
use crate::config::Role;
use crate::report::{Lang, build, markdown};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `markdown` (the default) or `json`.
    format: Option<String>,
    /// `en` (the default) or `ja`.
    lang: Option<String>,
}

/// The incident report: Markdown, or (`format=json`) the same content as data.
#[utoipa::path(get, path = "/v1/incidents/{id}/report", tag = "incidents", security(("viewer" = [])),
    params(("id" = i64, Path, description = "The incident's id."), ReportQuery),
    responses(
        (status = 200, description = "The report.",
            content((String = "text/markdown"), (Object = "application/json"))),
        (status = 400, description = "The request is malformed: a parameter or the body is not what this operation takes.", body = ErrorBody),
        (status = 404, description = "No such incident (or action, or source).", body = ErrorBody),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        TokenRefusals,
    ))]
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    authorize(&state.tokens, &headers, Role::Viewer)?;
    let lang = match query.lang.as_deref() {
        None => Lang::En,
        Some(raw) => {
            Lang::parse(raw).ok_or_else(|| ApiError::BadRequest("lang must be en or ja".into()))?
        }
    };
    let json = match query.format.as_deref() {
        None | Some("markdown") => false,
        Some("json") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "format must be markdown or json".into(),
            ));
        }
    };
    let incident = find(&state, &id).await?.incident;
    let audit = state.store.incident_audit(incident.id).await?;
    let report = build(&incident, &audit, lang);
    if json {
        return Ok(axum::Json(report).into_response());
    }
    let mut response = markdown(&report).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    Ok(response)
}
