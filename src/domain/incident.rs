//! Incidents: one leaked key being handled, and the further reports of it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::notification::{AccessKeyId, OwnerType};

/// Database identity of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IncidentId(pub i64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where an incident stands. The remediation machine adds its states here; `new` is where
/// every incident starts, waiting for triage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    New,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "new" => Some(Self::New),
            _ => None,
        }
    }

    /// The step the incident waits for, as shown to on-call staff.
    pub fn current_step(self) -> &'static str {
        match self {
            Self::New => "triage",
        }
    }
}

/// One leaked key being handled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: IncidentId,
    pub access_key_id: AccessKeyId,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub user_name: Option<String>,
    pub owner_type: OwnerType,
    pub leak_url: Option<String>,
    pub detected_at: DateTime<Utc>,
    pub state: IncidentState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    pub attempt: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// A further report of an incident's key: another leak notification, or the key seen at work.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    pub id: i64,
    pub incident_id: IncidentId,
    pub source: String,
    pub kind: String,
    pub observed_at: DateTime<Utc>,
    pub detail: serde_json::Value,
}
