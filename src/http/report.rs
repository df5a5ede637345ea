//! `GET /v1/incidents/{id}/report`: the incident report, as Markdown or (`?format=json`) as
//! the same content in data, in `?lang=en` (the default) or `ja`.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::incidents::find;
use super::tokens::authorize;
use super::{ApiError, AppState};
use crate::config::Role;
use crate::report::{Lang, build, markdown};

#[derive(Deserialize)]
pub struct ReportQuery {
    format: Option<String>,
    lang: Option<String>,
}

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
    let incident = find(&state, &id).await?;
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
