//! The entries the findings list: events, resource and identity changes, created users and
//! keys, each with how it is ordered in its list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::capped::Listed;

/// One event, briefly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub event_id: String,
    pub time: Option<DateTime<Utc>>,
    /// `eventName`.
    pub name: String,
    /// `serviceName`, e.g. `Ecs`.
    pub service: Option<String>,
    /// `acsRegion`.
    pub region: Option<String>,
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// Resources of one type that one successful event created or deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub event_id: String,
    pub event_name: String,
    pub time: Option<DateTime<Utc>>,
    pub region: Option<String>,
    /// An ActionTrail resource type such as `ACS::ECS::Instance` when known, else the noun of
    /// the event name (`Vpc` for `CreateVpc`).
    pub kind: String,
    /// Empty when the event did not say.
    pub ids: Vec<String>,
}

/// A RAM/IMS call that changes who can do what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityChange {
    pub event_id: String,
    pub time: Option<DateTime<Utc>>,
    pub name: String,
    /// The user acted on; for AccessKey calls without one, the caller itself.
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_name: Option<String>,
    /// The AccessKey acted on (never its secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

/// A RAM user the leaked key created: a likely backdoor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedUser {
    pub user_name: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub event_id: String,
}

/// An AccessKey the leaked key created: a chained incident to follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    /// From `responseElements.AccessKey.AccessKeyId` when the event reveals it.
    pub access_key_id: Option<String>,
    /// The user the key belongs to.
    pub user_name: Option<String>,
    pub time: Option<DateTime<Utc>>,
    pub event_id: String,
}

impl Listed for EventSummary {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str) {
        (self.time.is_none(), self.time, &self.event_id, "")
    }
}

impl Listed for ResourceChange {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str) {
        // One event can create resources of several types.
        (self.time.is_none(), self.time, &self.event_id, &self.kind)
    }
}

impl Listed for IdentityChange {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str) {
        (self.time.is_none(), self.time, &self.event_id, "")
    }
}

impl Listed for CreatedUser {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str) {
        (self.time.is_none(), self.time, &self.event_id, "")
    }
}

impl Listed for CreatedKey {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str) {
        (self.time.is_none(), self.time, &self.event_id, "")
    }
}
