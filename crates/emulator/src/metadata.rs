//! The ECS instance metadata service's RAM-role paths: session tokens (IMDSv2) and the
//! instance role's STS credentials, which then sign requests to the emulator.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::TimeDelta;
use serde_json::json;

use super::ids;
use super::state::{Inner, Shared};
use super::sts;
use super::when::format_time;

const TOKEN_TTL_HEADER: &str = "x-aliyun-ecs-metadata-token-ttl-seconds";
const TOKEN_HEADER: &str = "x-aliyun-ecs-metadata-token";
const MAX_TOKEN_TTL: i64 = 21_600;
/// The session name the emulator gives instance-role credentials.
const SESSION: &str = "ecs-instance-role";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/latest/api/token", put(token))
        .route(
            "/latest/meta-data/ram/security-credentials/",
            get(role_name),
        )
        .route(
            "/latest/meta-data/ram/security-credentials/{role}",
            get(credentials),
        )
}

/// A refusal: status and plain-text body, as the metadata service answers.
type Refusal = (StatusCode, &'static str);

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let ttl = headers
        .get(TOKEN_TTL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|ttl| (1..=MAX_TOKEN_TTL).contains(ttl));
    let Some(ttl) = ttl else {
        return (
            StatusCode::BAD_REQUEST,
            "X-aliyun-ecs-metadata-token-ttl-seconds must be 1 to 21600\n",
        )
            .into_response();
    };
    let now = shared.clock.now();
    let token = ids::alnum(56);
    let mut inner = shared.lock();
    inner.metadata_tokens.retain(|_, expiry| *expiry > now);
    inner
        .metadata_tokens
        .insert(token.clone(), now + TimeDelta::seconds(ttl));
    token.into_response()
}

/// A presented token must be live; none at all is refused only in IMDSv2-only mode.
fn admit(
    inner: &Inner,
    headers: &HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, Refusal> {
    let Some(metadata) = &inner.world.metadata else {
        return Err((StatusCode::NOT_FOUND, "Not Found\n"));
    };
    match headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        Some(token)
            if inner
                .metadata_tokens
                .get(token)
                .is_some_and(|exp| *exp > now) => {}
        Some(_) => return Err((StatusCode::UNAUTHORIZED, "Unauthorized\n")),
        None if metadata.imds_v2_only => return Err((StatusCode::FORBIDDEN, "Forbidden\n")),
        None => {}
    }
    Ok(metadata.role.clone())
}

async fn role_name(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let now = shared.clock.now();
    match admit(&shared.lock(), &headers, now) {
        Ok(role) => role.into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn credentials(
    State(shared): State<Arc<Shared>>,
    Path(role): Path<String>,
    headers: HeaderMap,
) -> Response {
    let now = shared.clock.now();
    let mut inner = shared.lock();
    let configured = match admit(&inner, &headers, now) {
        Ok(configured) => configured,
        Err(refused) => return refused.into_response(),
    };
    let Some(role) = inner
        .world
        .roles
        .iter()
        .find(|r| r.name() == role && role == configured)
    else {
        return (StatusCode::NOT_FOUND, "Not Found\n").into_response();
    };
    let (arn, duration) = (
        role.arn.clone(),
        TimeDelta::seconds(i64::from(role.duration_secs)),
    );
    // Like ECS, hand out the same credentials until half their lifetime is gone.
    let current = inner
        .world
        .temporary_credentials
        .iter()
        .rev()
        .find(|c| c.role_arn == arn && c.session_name == SESSION)
        .filter(|c| c.expiration.at(now) - now > duration / 2)
        .cloned();
    let cred = match current {
        Some(cred) => cred,
        None => sts::issue(
            &mut inner.world,
            &arn,
            SESSION,
            role_duration(duration),
            now,
        ),
    };
    let expiration = cred.expiration.at(now);
    Json(json!({
        "Code": "Success",
        "AccessKeyId": cred.access_key_id,
        "AccessKeySecret": cred.secret,
        "SecurityToken": cred.security_token,
        "Expiration": format_time(expiration),
        "LastUpdated": format_time(expiration - duration),
    }))
    .into_response()
}

fn role_duration(duration: TimeDelta) -> u32 {
    u32::try_from(duration.num_seconds()).unwrap_or(u32::MAX)
}
