//! Forensics: what a leaked key did, read from its ActionTrail events. Pure: the caller fetches
//! the events and stores the findings.

mod capped;
mod checklist;
mod entries;
mod event;
mod identity;
mod merge;
mod resources;
mod source_ip;
mod summary;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cidr::Cidr;

pub use capped::Capped;
pub use entries::{CreatedKey, CreatedUser, EventSummary, IdentityChange, ResourceChange};
pub use source_ip::SourceIp;

use capped::capped;
use event::{Event, cleaned};
use resources::{CREATE_PREFIXES, DELETE_PREFIXES, verb_of};
use source_ip::sorted_ips;

/// Most entries one list keeps; the rest are counted in `truncated`, so a noisy key cannot
/// bloat the incident row.
pub const MAX_LISTED: usize = 500;

/// Most events per pass whose ids are kept (about 40 bytes each). The ids are what make merging
/// exact; calls beyond this are counted without them, and those counts merge as maxima.
pub const MAX_TRACKED_EVENTS: usize = 5_000;

/// Most source addresses listed per pass; calls from further addresses are only counted.
pub const MAX_SOURCE_IPS: usize = 1_000;

/// Findings of the ActionTrail audit of one leaked key, stored as JSON on the incident and
/// shown by the status API. Lists are in time order (undated entries last).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditFindings {
    /// Distinct events made with the key.
    pub events_examined: u64,
    /// Distinct passes folded in (`pass_fingerprints.len()`).
    pub passes: u32,
    /// Where the calls came from, by first sight.
    pub source_ips: Vec<SourceIp>,
    /// Calls from addresses beyond `MAX_SOURCE_IPS`: counted, not listed.
    pub events_from_unlisted_ips: u64,
    pub write_events: Capped<EventSummary>,
    pub resources_created: Capped<ResourceChange>,
    pub resources_deleted: Capped<ResourceChange>,
    /// RAM/IMS calls that change identities or permissions, refused ones included.
    pub identity_changes: Capped<IdentityChange>,
    /// Calls that Alibaba's restrictive leak protection refused.
    pub refused_by_leak_protection: Capped<EventSummary>,
    /// Calls ActionTrail shows with an error: refused by the protection, by permissions, or
    /// failed otherwise. Left out when empty (and `succeeded` when zero), so a record from
    /// before these were kept reads back and is written again unchanged.
    #[serde(skip_serializing_if = "Capped::is_empty")]
    pub failed_calls: Capped<EventSummary>,
    /// Calls ActionTrail shows without an error (`events_examined` less `failed_calls`):
    /// what the key actually did, against what the protection refused.
    #[serde(skip_serializing_if = "is_zero")]
    pub succeeded: u64,
    pub users_created: Capped<CreatedUser>,
    pub keys_created: Capped<CreatedKey>,
    /// One hash per pass of the event ids it saw, so folding in the same pass again is a no-op.
    pub pass_fingerprints: Vec<String>,
}

impl AuditFindings {
    /// Analyzes events (ActionTrail event objects, as `LookupEvents` returns them) made with
    /// `access_key_id`; `known` are the operator's known CIDRs. Events made with another key
    /// are ignored, and an event listed twice counts once.
    pub fn from_events(access_key_id: &str, events: &[Value], known: &[Cidr]) -> Self {
        // The attacker chose much of what ActionTrail wrote (user, policy and resource names,
        // request parameters): every string is cleaned before anything is read or kept.
        let cleaned: Vec<Value> = events.iter().map(cleaned).collect();
        let mut events: Vec<Event<'_>> = cleaned
            .iter()
            .filter_map(|raw| Event::read(raw, access_key_id))
            .collect();
        // Chronological, so the caps keep the earliest activity whatever order pages came in;
        // pages can overlap when events arrive between them.
        events.sort_by(|a, b| time_order(a.time, &a.key).cmp(&time_order(b.time, &b.key)));
        events.dedup_by(|a, b| a.key == b.key);

        let mut ips: BTreeMap<String, SourceIp> = BTreeMap::new();
        let mut events_from_unlisted_ips = 0;
        let mut failed = Vec::new();
        let (mut writes, mut refused) = (Vec::new(), Vec::new());
        let (mut created, mut deleted, mut identity) = (Vec::new(), Vec::new(), Vec::new());
        let (mut users, mut keys) = (Vec::new(), Vec::new());
        for (index, event) in events.iter().enumerate() {
            let ip = event.source_ip.unwrap_or_default();
            if ips.len() >= MAX_SOURCE_IPS && !ips.contains_key(ip) {
                events_from_unlisted_ips += 1;
            } else {
                let tracked = (index < MAX_TRACKED_EVENTS).then(|| event.key.clone());
                ips.entry(ip.to_owned())
                    .or_insert_with(|| SourceIp::new(ip, known))
                    .record(event.time, tracked);
            }
            if event.is_write() {
                writes.push(event.summary());
            }
            if event.is_refused_by_leak_protection() {
                refused.push(event.summary());
            }
            if event.error_code.is_some() {
                failed.push(event.summary());
            }
            if event.error_code.is_none() {
                if let Some(verb) = verb_of(event.name, &CREATE_PREFIXES) {
                    created.extend(event.resource_changes(verb));
                } else if let Some(verb) = verb_of(event.name, &DELETE_PREFIXES) {
                    deleted.extend(event.resource_changes(verb));
                }
            }
            if event.is_identity_change() {
                identity.push(event.identity_change());
                match (event.name, event.error_code) {
                    ("CreateUser", None) => users.push(event.created_user()),
                    ("CreateAccessKey", None) => keys.push(event.created_key()),
                    _ => {}
                }
            }
        }
        AuditFindings {
            events_examined: events.len() as u64,
            passes: 1,
            source_ips: sorted_ips(ips),
            events_from_unlisted_ips,
            write_events: capped(writes),
            resources_created: capped(created),
            resources_deleted: capped(deleted),
            identity_changes: capped(identity),
            refused_by_leak_protection: capped(refused),
            succeeded: (events.len() - failed.len()) as u64,
            failed_calls: capped(failed),
            users_created: capped(users),
            keys_created: capped(keys),
            pass_fingerprints: vec![fingerprint(&events)],
        }
    }

    /// Keys this key created, for chained incidents.
    pub fn keys_created(&self) -> &[CreatedKey] {
        &self.keys_created.items
    }
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn time_order(time: Option<DateTime<Utc>>, tie: &str) -> (bool, Option<DateTime<Utc>>, &str) {
    (time.is_none(), time, tie)
}

/// Identifies a pass by the events it saw.
fn fingerprint(events: &[Event<'_>]) -> String {
    let mut keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
    keys.sort_unstable();
    let mut hasher = Sha256::new();
    for key in keys {
        hasher.update(key.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(&hasher.finalize()[..8])
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
