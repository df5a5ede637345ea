//! Incidents: one leaked key being handled, and the further reports of it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::machine::{IncidentState, Path};
use super::notification::{AccessKeyId, OwnerType};
use super::triage::Usage;

/// Said first when the reported key is akguard's own.
const OWN_KEY_WARNING: &str = "POSSIBLE LEAK OF AKGUARD'S OWN CREDENTIALS: the reported key \
    belongs to akguard's own identity (the key it signs its calls with, or its own RAM user). \
    akguard does not act on its own identity, so a person must act now: create a new key for \
    akguard's identity, switch akguard to it, then disable and delete the reported one, and \
    review what that key did.";

/// Database identity of an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IncidentId(pub i64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One leaked key being handled.
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
    /// Claims so far: the fencing token of the current lease.
    pub attempt: i64,
    /// Failed tries of the current step, for its retry policy.
    pub step_attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the Deny policy was verified attached, or the key verified disabled.
    pub contained_at: Option<DateTime<Utc>>,
    /// When the second ActionTrail pass is due, once ActionTrail has caught up.
    pub settle_audit_at: Option<DateTime<Utc>>,
    /// The incident whose key created this one's key.
    pub parent_incident_id: Option<IncidentId>,
    /// The last error a step met, with its RequestId.
    pub last_error: Option<String>,
    /// What each step found, by step name.
    pub findings: serde_json::Value,
}

impl Incident {
    /// What a person must do now: the state's explanation, after triage's reason to ask a
    /// person (a use it could not attribute) or the warning that akguard's own key leaked.
    pub fn explanation(&self) -> Option<String> {
        let state = self.state.explanation();
        if !self.state.is_open() {
            return state;
        }
        let own_key = self.findings["protected"]["own_credentials"] == true;
        let first = if own_key {
            Some(OWN_KEY_WARNING)
        } else {
            self.findings["triage"]["usage"]
                .as_str()
                .and_then(Usage::parse)
                .and_then(Usage::caveat)
        };
        match (first, state) {
            (Some(first), Some(state)) => Some(format!("{first} {state}")),
            (Some(first), None) => Some(first.to_owned()),
            (None, state) => state,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Reason, Step};

    fn incident(state: IncidentState, findings: serde_json::Value) -> Incident {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Incident {
            id: IncidentId(1),
            access_key_id: AccessKeyId::parse("LTAI5tExample0001").unwrap(),
            account_id: None,
            account_name: None,
            user_name: None,
            owner_type: OwnerType::RamUser,
            leak_url: None,
            detected_at: at,
            stated_detected_at: None,
            state,
            path: None,
            created_at: at,
            updated_at: at,
            closed_at: None,
            attempt: 0,
            step_attempts: 0,
            next_attempt_at: None,
            lease_owner: None,
            lease_expires_at: None,
            contained_at: None,
            settle_audit_at: None,
            parent_incident_id: None,
            last_error: None,
            findings,
        }
    }

    #[test]
    fn the_explanation_leads_with_why_a_person_must_decide() {
        let waiting = IncidentState::Active(Step::AwaitingOperator);
        let state_only = waiting.explanation().unwrap();
        let plain = incident(waiting, serde_json::json!({"triage": {"usage": "in_use"}}));
        assert_eq!(plain.explanation().unwrap(), state_only);
        let unattributed = incident(
            waiting,
            serde_json::json!({"triage": {"usage": "unattributed"}}),
        );
        let text = unattributed.explanation().unwrap();
        assert!(
            text.starts_with(Usage::Unattributed.caveat().unwrap()),
            "{text}"
        );
        assert!(text.ends_with(&state_only), "{text}");

        let protected = IncidentState::NeedsAttention(Reason::ProtectedIdentity);
        let own = incident(
            protected,
            serde_json::json!({"protected": {"own_credentials": true}}),
        );
        assert!(own.explanation().unwrap().starts_with(OWN_KEY_WARNING));
        let listed = incident(
            protected,
            serde_json::json!({"protected": {"own_credentials": false}}),
        );
        assert_eq!(
            listed.explanation(),
            Some(Reason::ProtectedIdentity.explanation())
        );
        // Closed incidents ask nothing of anyone.
        let closed = incident(
            IncidentState::Resolved,
            serde_json::json!({"triage": {"usage": "unattributed"}}),
        );
        assert_eq!(closed.explanation(), None);
    }
}
