//! The control API under `/_emulator/` (unsigned): the call log, the live state, fault
//! settings and the clock, for tests and rehearsals to observe and steer the emulator.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{SecondsFormat, TimeDelta};
use serde::Deserialize;
use serde_json::json;

use super::faults::Faults;
use super::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_emulator/calls", get(calls).delete(clear_calls))
        .route("/_emulator/state", get(state))
        .route("/_emulator/faults", get(faults).put(replace_faults))
        .route("/_emulator/clock", get(clock).post(move_clock))
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({ "error": message }))).into_response()
}

/// Every request to `/` so far, rejected ones included, oldest first.
async fn calls(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({ "calls": shared.lock().calls }))
}

/// Forgets the call log (sequence numbers start again at 1).
async fn clear_calls(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().calls.clear();
    StatusCode::NO_CONTENT
}

/// The account as it stands, in the scenario schema.
async fn state(State(shared): State<Arc<Shared>>) -> Response {
    match serde_json::to_value(&shared.lock().world) {
        Ok(world) => Json(world).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot serialize the emulator state");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn faults(State(shared): State<Arc<Shared>>) -> Json<Faults> {
    Json(shared.lock().world.faults.clone())
}

async fn replace_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let faults: Faults = match serde_json::from_slice(&body) {
        Ok(faults) => faults,
        Err(err) => return bad_request(format!("not fault settings: {err}")),
    };
    if let Err(message) = faults.validate() {
        return bad_request(message);
    }
    shared.lock().world.faults = faults.clone();
    Json(faults).into_response()
}

/// `offset_secs` sets the clock's offset from real time; `advance_secs` adds to it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    offset_secs: Option<i64>,
    advance_secs: Option<i64>,
}

fn clock_view(shared: &Shared) -> Json<serde_json::Value> {
    Json(json!({
        "now": shared.clock.now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "offset_secs": shared.clock.offset().num_seconds(),
    }))
}

async fn clock(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    clock_view(&shared)
}

async fn move_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let change: ClockChange = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(err) => return bad_request(format!("expected {{\"offset_secs\": N}}: {err}")),
    };
    let seconds = |n: i64| TimeDelta::try_seconds(n).ok_or("the shift is out of range");
    let result = match (change.offset_secs, change.advance_secs) {
        (Some(n), None) => seconds(n).map(|d| shared.clock.set_offset(d)),
        (None, Some(n)) => seconds(n).map(|d| shared.clock.advance(d)),
        _ => Err("give exactly one of offset_secs and advance_secs"),
    };
    match result {
        Ok(()) => clock_view(&shared).into_response(),
        Err(message) => bad_request(message.into()),
    }
}
