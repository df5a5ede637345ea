//! The incident report, for a manager or a post-mortem: built from the incident's typed
//! findings and its audit log, as data (`Report`, the API's JSON form) and as Markdown
//! (`markdown`), in English or Japanese.

mod build;
mod markdown;
#[cfg(test)]
mod tests;
mod words;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::billing::ProductComparison;
use crate::domain::forensics::{CreatedKey, CreatedUser, EventSummary, ResourceChange};

pub use build::build;
pub use markdown::markdown;
use words::OpenItem;

/// The report's language: `en`, or `ja` (the runbook akguard follows is Japanese).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "en" => Some(Self::En),
            "ja" => Some(Self::Ja),
            _ => None,
        }
    }
}

/// One incident's report. Free text in it is as the cloud or the operator gave it; the
/// Markdown escapes it, JSON carries it as data.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub language: Lang,
    pub summary: Summary,
    pub timeline: Vec<TimelineEntry>,
    pub containment: Containment,
    /// `None` until the audit step has run.
    pub forensics: Option<Forensics>,
    /// `None` until the billing step has run.
    pub billing: Option<Billing>,
    pub actions: Vec<Action>,
    /// What is left for a person, in the report's language.
    pub open_items: Vec<String>,
    /// The same items, for the Markdown to quote their names escaped.
    #[serde(skip)]
    items: Vec<OpenItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub incident_id: i64,
    /// Masked but for its last six characters, as notifications show it.
    pub access_key_id: String,
    pub owner_type: &'static str,
    pub user_name: Option<String>,
    pub account_id: Option<String>,
    /// The intake source that reported it (`generic`, `security_center`, ...), `chain` for a
    /// key another incident's key created, `manual` for an operator's report.
    pub source: Option<String>,
    pub leak_url: Option<String>,
    pub state: &'static str,
    pub reason: Option<&'static str>,
    pub path: Option<&'static str>,
    pub detected_at: DateTime<Utc>,
    pub contained_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub time_to_containment_ms: Option<i64>,
    pub parent_incident_id: Option<i64>,
    pub dry_run: bool,
}

/// One line of the audit log, said shortly (reads and intents are left out).
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Containment {
    /// `deny_policy`, `key_disabled`, or `none` (nothing contained it yet, or nothing could).
    pub method: &'static str,
    pub policy: Option<String>,
    pub user_name: Option<String>,
    /// `verified` (read back after the change), `skipped_in_dry_run`, or `not_verified`.
    pub verification: &'static str,
    pub contained_at: Option<DateTime<Utc>>,
    pub time_to_containment_ms: Option<i64>,
    pub key_deleted_at: Option<DateTime<Utc>>,
    /// The networks the network fence limits the key to, beside the Deny policy.
    pub network_fence: Option<String>,
    /// `verified`, `skipped_in_dry_run` or `not_verified`, as for the Deny policy.
    pub network_fence_verification: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Forensics {
    pub summary: String,
    pub events_examined: u64,
    pub source_ips: Vec<SourceIpLine>,
    pub resources_created: Vec<ResourceChange>,
    pub users_created: Vec<CreatedUser>,
    pub keys_created: Vec<CreatedKey>,
    /// Calls refused by Alibaba Cloud's leak protection or by permissions.
    pub denied_attempts: Vec<EventSummary>,
    /// How many calls Alibaba's restrictive protection refused (`denied_attempts` may be
    /// capped).
    pub refused_by_leak_protection: u64,
    /// Calls with the key that succeeded: what the protection left open.
    pub succeeded_calls: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SourceIpLine {
    pub ip: String,
    pub calls: u64,
    /// Inside `audit.known_cidrs`.
    pub known: bool,
    /// akguard has no geolocation source: always `null` until one is configured.
    pub country: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Billing {
    pub summary: String,
    pub current_cycle: String,
    pub previous_cycle: String,
    pub currency: Option<String>,
    pub flags: usize,
    pub products: Vec<ProductComparison>,
}

/// A change akguard (or an operator) made, with the RequestId Alibaba Cloud answered with.
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: Option<String>,
    pub request_id: Option<String>,
}
