//! The outbox as the sender and the API see it: leased rows, delivery verdicts, states.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::IncidentId;
use crate::domain::notice::NoticeKind;

/// A row leased to one sender. Writes about it are fenced on owner and attempts, so a
/// sender whose lease expired (and whose row another sender took) changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub incident: IncidentId,
    pub channel: String,
    pub kind: NoticeKind,
    pub dedup_key: String,
    pub detail: serde_json::Value,
    /// Tries so far, this one included: the fencing token.
    pub attempts: u32,
    pub owner: String,
}

/// What a delivery attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxVerdict {
    Sent,
    /// Try again at `at`; `error` is what the platform said.
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// Given up: attempts exhausted or refused for good.
    Failed {
        error: String,
    },
}

/// An incident's notifications, as `GET /v1/incidents/{id}` shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxState {
    pub channel: String,
    pub event: String,
    pub dedup_key: String,
    pub state: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// One settled delivery attempt, as the event stream shows it; `id` orders them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub incident_id: IncidentId,
    pub channel: String,
    pub event: String,
    /// `sent`, `failed` (given up) or `pending` (to be tried again).
    pub state: String,
    pub attempts: u32,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}
