//! Incidents: one leaked key being handled, and the further reports of it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::findings::Findings;
use super::machine::{IncidentState, Path};
use super::notification::{AccessKeyId, OwnerType};

/// Database identity of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub i64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One leaked key being handled: what happened to it. When and by whom its work runs next
/// is its [`Schedule`](super::schedule::Schedule), kept apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    pub id: IncidentId,
    pub access_key_id: AccessKeyId,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub user_name: Option<String>,
    pub owner_type: OwnerType,
    pub leak_url: Option<String>,
    /// The detection time triage judges on: the report's, clamped at intake.
    pub detected_at: DateTime<Utc>,
    /// What the report stated, when the clamp moved it.
    pub stated_detected_at: Option<DateTime<Utc>>,
    pub state: IncidentState,
    /// The runbook branch triage chose.
    pub path: Option<Path>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
    /// When the Deny policy was verified attached, or the key verified disabled.
    pub contained_at: Option<DateTime<Utc>>,
    /// The incident whose key created this one's key.
    pub parent_incident_id: Option<IncidentId>,
    /// The last error a step met, with its RequestId.
    pub last_error: Option<String>,
    /// What each step found, by step name.
    pub findings: Findings,
    /// Its steps ran in dry run: every cloud change was only recorded, never made.
    pub dry_run: bool,
}

impl Incident {
    /// From the first notification's receipt to containment.
    pub fn time_to_containment_ms(&self) -> Option<i64> {
        self.contained_at
            .map(|at| (at - self.created_at).num_milliseconds())
    }
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
