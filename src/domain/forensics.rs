//! Forensics: what a leaked key did, read from its ActionTrail events. Pure: the caller fetches
//! the events and stores the findings.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::cidr::Cidr;

/// Most entries one list keeps; the rest are counted in `truncated`, so a noisy key cannot
/// bloat the incident row.
pub const MAX_LISTED: usize = 500;

/// Most events per pass whose ids are kept (about 40 bytes each). The ids are what make merging
/// exact; calls beyond this are counted without them, and those counts merge as maxima.
pub const MAX_TRACKED_EVENTS: usize = 5_000;

/// Most source addresses listed per pass; calls from further addresses are only counted.
pub const MAX_SOURCE_IPS: usize = 1_000;

/// What restrictive leak protection says when it refuses a call, in lower case.
const LEAK_PROTECTION_REFUSAL: &str = "there is a risk of leakage of this accesskey";

const CREATE_PREFIXES: [&str; 4] = ["Create", "Run", "Allocate", "Import"];
const DELETE_PREFIXES: [&str; 3] = ["Delete", "Release", "Remove"];

/// RAM and IMS calls that change who can do what.
const IDENTITY_EVENTS: [&str; 19] = [
    "CreateUser",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "AttachPolicyToUser",
    "AttachPolicyToRole",
    "AttachPolicyToGroup",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreatePolicy",
    "CreatePolicyVersion",
    "AddUserToGroup",
    "CreateRole",
    "UpdateRole",
    "SetDefaultPolicyVersion",
    "DetachPolicyFromUser",
    "DeleteUser",
    "BindMFADevice",
    "UnbindMFADevice",
];

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
    pub users_created: Capped<CreatedUser>,
    pub keys_created: Capped<CreatedKey>,
    /// One hash per pass of the event ids it saw, so folding in the same pass again is a no-op.
    pub pass_fingerprints: Vec<String>,
}

/// A list kept to its earliest `MAX_LISTED` entries; `truncated` counts the ones left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capped<T> {
    pub items: Vec<T>,
    pub truncated: u64,
}

/// One address (or service name) the key was used from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceIp {
    /// As ActionTrail wrote it: an address, or a service such as `ecs.aliyuncs.com`; empty
    /// when the events had none.
    pub ip: String,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub calls: u64,
    /// Inside one of the operator's known CIDRs. Service names and unreadable addresses are not.
    pub known: bool,
    /// Ids of the calls counted, so that a later pass does not count them again.
    pub event_ids: Vec<String>,
    /// Calls counted beyond `MAX_TRACKED_EVENTS`, without their ids.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untracked_calls: u64,
}

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

impl AuditFindings {
    /// Analyzes events (ActionTrail event objects, as `LookupEvents` returns them) made with
    /// `access_key_id`; `known` are the operator's known CIDRs. Events made with another key
    /// are ignored, and an event listed twice counts once.
    pub fn from_events(access_key_id: &str, events: &[Value], known: &[Cidr]) -> Self {
        let mut events: Vec<Event<'_>> = events
            .iter()
            .filter_map(|raw| Event::read(raw, access_key_id))
            .collect();
        // Chronological, so the caps keep the earliest activity whatever order pages came in;
        // pages can overlap when events arrive between them.
        events.sort_by(|a, b| time_order(a.time, &a.key).cmp(&time_order(b.time, &b.key)));
        events.dedup_by(|a, b| a.key == b.key);

        let mut ips: BTreeMap<String, SourceIp> = BTreeMap::new();
        let mut events_from_unlisted_ips = 0;
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
            users_created: capped(users),
            keys_created: capped(keys),
            pass_fingerprints: vec![fingerprint(&events)],
        }
    }

    /// Folds a later pass (the one after ActionTrail's ~10-minute lag) into this one. Events are
    /// recognized by `eventId`, so merging is idempotent and order-independent: folding in a
    /// pass already folded in changes nothing.
    pub fn merge(self, other: AuditFindings) -> AuditFindings {
        let mut ips: BTreeMap<String, SourceIp> = BTreeMap::new();
        for ip in self.source_ips.into_iter().chain(other.source_ips) {
            let merged = match ips.remove(&ip.ip) {
                Some(seen) => seen.merge(ip),
                None => ip,
            };
            ips.insert(merged.ip.clone(), merged);
        }
        let source_ips = sorted_ips(ips);
        let events_from_unlisted_ips = self
            .events_from_unlisted_ips
            .max(other.events_from_unlisted_ips);
        let mut pass_fingerprints = self.pass_fingerprints;
        pass_fingerprints.extend(other.pass_fingerprints);
        pass_fingerprints.sort();
        pass_fingerprints.dedup();
        AuditFindings {
            events_examined: source_ips.iter().map(|ip| ip.calls).sum::<u64>()
                + events_from_unlisted_ips,
            passes: u32::try_from(pass_fingerprints.len()).unwrap_or(u32::MAX),
            source_ips,
            events_from_unlisted_ips,
            write_events: merge_capped(self.write_events, other.write_events),
            resources_created: merge_capped(self.resources_created, other.resources_created),
            resources_deleted: merge_capped(self.resources_deleted, other.resources_deleted),
            identity_changes: merge_capped(self.identity_changes, other.identity_changes),
            refused_by_leak_protection: merge_capped(
                self.refused_by_leak_protection,
                other.refused_by_leak_protection,
            ),
            users_created: merge_capped(self.users_created, other.users_created),
            keys_created: merge_capped(self.keys_created, other.keys_created),
            pass_fingerprints,
        }
    }

    /// Keys this key created, for chained incidents.
    pub fn keys_created(&self) -> &[CreatedKey] {
        &self.keys_created.items
    }

    /// One line for humans, e.g. "12 calls from 3 IPs (2 unknown), 4 write events, 2 resources
    /// created, 1 user and 1 key created, 1 call refused by leak protection".
    pub fn summary(&self) -> String {
        let unknown = self.source_ips.iter().filter(|ip| !ip.known).count();
        let ips = match self.events_from_unlisted_ips {
            0 => plural(self.source_ips.len() as u64, "IP"),
            _ => format!("{}+ IPs", self.source_ips.len()),
        };
        let deleted = match resource_count(&self.resources_deleted) {
            0 => String::new(),
            n => format!(", {n} deleted"),
        };
        format!(
            "{} from {ips} ({unknown} unknown), {}, {} created{deleted}, {} and {} created, {} \
             refused by leak protection",
            plural(self.events_examined, "call"),
            plural(self.write_events.total(), "write event"),
            plural(resource_count(&self.resources_created), "resource"),
            plural(self.users_created.total(), "user"),
            plural(self.keys_created.total(), "key"),
            plural(self.refused_by_leak_protection.total(), "call"),
        )
    }
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            truncated: 0,
        }
    }
}

impl<T> Capped<T> {
    /// Entries listed plus entries left out.
    pub fn total(&self) -> u64 {
        self.items.len() as u64 + self.truncated
    }
}

/// The earliest `MAX_LISTED` of `entries`, each once.
fn capped<T: Listed>(mut entries: Vec<T>) -> Capped<T> {
    entries.sort_by(|a, b| a.order().cmp(&b.order()));
    entries.dedup_by(|a, b| a.order() == b.order());
    let truncated = entries.len().saturating_sub(MAX_LISTED) as u64;
    entries.truncate(MAX_LISTED);
    Capped {
        items: entries,
        truncated,
    }
}

fn merge_capped<T: Listed>(a: Capped<T>, b: Capped<T>) -> Capped<T> {
    // Left-out entries have no ids to compare, so once either side is truncated the total is
    // only known to be at least the larger one.
    let exact = a.truncated == 0 && b.truncated == 0;
    let at_least = a.total().max(b.total());
    let mut items = a.items;
    items.extend(b.items);
    let mut merged = capped(items);
    if !exact {
        merged.truncated = at_least.max(merged.total()) - merged.items.len() as u64;
    }
    merged
}

/// How list entries are ordered and told apart: by time (undated last), then event.
trait Listed {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str);
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

impl SourceIp {
    fn new(ip: &str, known: &[Cidr]) -> Self {
        let known = ip
            .parse::<IpAddr>()
            .is_ok_and(|addr| known.iter().any(|cidr| cidr.contains(addr)));
        Self {
            ip: ip.to_owned(),
            first_seen: None,
            last_seen: None,
            calls: 0,
            known,
            event_ids: Vec::new(),
            untracked_calls: 0,
        }
    }

    fn record(&mut self, time: Option<DateTime<Utc>>, event_id: Option<String>) {
        self.first_seen = earliest(self.first_seen, time);
        self.last_seen = self.last_seen.max(time);
        match event_id {
            Some(id) => self.event_ids.push(id),
            None => self.untracked_calls += 1,
        }
        self.calls += 1;
    }

    fn merge(self, other: SourceIp) -> SourceIp {
        let mut event_ids = self.event_ids;
        event_ids.extend(other.event_ids);
        event_ids.sort();
        event_ids.dedup();
        // Untracked calls have no ids to compare; the larger count is the safe lower bound.
        let untracked_calls = self.untracked_calls.max(other.untracked_calls);
        SourceIp {
            ip: self.ip,
            first_seen: earliest(self.first_seen, other.first_seen),
            last_seen: self.last_seen.max(other.last_seen),
            calls: event_ids.len() as u64 + untracked_calls,
            // Passes could have used different known CIDRs: stay alarmed if either was.
            known: self.known && other.known,
            event_ids,
            untracked_calls,
        }
    }
}

fn sorted_ips(ips: BTreeMap<String, SourceIp>) -> Vec<SourceIp> {
    let mut ips: Vec<SourceIp> = ips.into_values().collect();
    for ip in &mut ips {
        ip.event_ids.sort();
    }
    ips.sort_by(|a, b| time_order(a.first_seen, &a.ip).cmp(&time_order(b.first_seen, &b.ip)));
    ips
}

/// The fields of one ActionTrail event that the analysis reads.
struct Event<'a> {
    raw: &'a Value,
    /// `eventId`, else `requestId`, else what the event looks like: the dedup key.
    key: String,
    time: Option<DateTime<Utc>>,
    name: &'a str,
    source_ip: Option<&'a str>,
    error_code: Option<&'a str>,
}

impl<'a> Event<'a> {
    fn read(raw: &'a Value, access_key_id: &str) -> Option<Self> {
        // LookupEvents is filtered by key already; this guards against a filter that was not.
        if text(raw, &["userIdentity", "accessKeyId"]) != Some(access_key_id.trim()) {
            return None;
        }
        let name = text(raw, &["eventName"]).unwrap_or_default();
        let time_text = text(raw, &["eventTime"]);
        let source_ip = text(raw, &["sourceIpAddress"]);
        let key = text(raw, &["eventId"])
            .or_else(|| text(raw, &["requestId"]))
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "{}/{name}/{}",
                    time_text.unwrap_or_default(),
                    source_ip.unwrap_or_default()
                )
            });
        Some(Self {
            raw,
            key,
            time: time_text
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            name,
            source_ip,
            error_code: text(raw, &["errorCode"]),
        })
    }

    fn text(&self, path: &[&str]) -> Option<String> {
        text(self.raw, path).map(str::to_owned)
    }

    fn param(&self, name: &str) -> Option<String> {
        self.text(&["requestParameters", name])
    }

    fn is_write(&self) -> bool {
        text(self.raw, &["eventRW"]).is_some_and(|rw| rw.eq_ignore_ascii_case("write"))
    }

    fn is_refused_by_leak_protection(&self) -> bool {
        text(self.raw, &["errorMessage"])
            .is_some_and(|m| m.to_lowercase().contains(LEAK_PROTECTION_REFUSAL))
    }

    /// Other products have calls named `CreateUser` too (databases, for one).
    fn is_identity_change(&self) -> bool {
        if !IDENTITY_EVENTS.contains(&self.name) {
            return false;
        }
        let service = text(self.raw, &["serviceName"]).map(str::to_ascii_lowercase);
        let source = text(self.raw, &["eventSource"]).map(str::to_ascii_lowercase);
        match (service, source) {
            (Some(service), _) => service == "ram" || service == "ims",
            (None, Some(source)) => source.starts_with("ram.") || source.starts_with("ims"),
            (None, None) => true,
        }
    }

    fn summary(&self) -> EventSummary {
        EventSummary {
            event_id: self.key.clone(),
            time: self.time,
            name: self.name.to_owned(),
            service: self.text(&["serviceName"]),
            region: self.text(&["acsRegion"]),
            source_ip: self.source_ip.map(str::to_owned),
            error_code: self.error_code.map(str::to_owned),
        }
    }

    fn referenced(&self, kind: &str) -> Option<String> {
        strings(&self.raw["referencedResources"][kind])
            .into_iter()
            .next()
    }

    /// The user an identity call acts on (IMS names users by principal name).
    fn target_user(&self) -> Option<String> {
        self.param("UserName")
            .or_else(|| self.param("UserPrincipalName"))
            .or_else(|| self.referenced("ACS::RAM::User"))
    }

    /// AccessKey calls without a user act on the caller's own keys.
    fn key_owner(&self) -> Option<String> {
        self.target_user()
            .or_else(|| self.text(&["userIdentity", "userName"]))
    }

    fn identity_change(&self) -> IdentityChange {
        let about_keys = self.name.ends_with("AccessKey");
        IdentityChange {
            event_id: self.key.clone(),
            time: self.time,
            name: self.name.to_owned(),
            user_name: if about_keys {
                self.key_owner()
            } else {
                self.target_user()
            },
            role_name: self
                .param("RoleName")
                .or_else(|| self.referenced("ACS::RAM::Role")),
            group_name: self.param("GroupName"),
            policy_name: self.param("PolicyName"),
            access_key_id: self
                .param("UserAccessKeyId")
                .or_else(|| self.text(&["responseElements", "AccessKey", "AccessKeyId"])),
            source_ip: self.source_ip.map(str::to_owned),
            error_code: self.error_code.map(str::to_owned),
        }
    }

    fn created_user(&self) -> CreatedUser {
        CreatedUser {
            user_name: self
                .text(&["responseElements", "User", "UserName"])
                .or_else(|| self.text(&["responseElements", "User", "UserPrincipalName"]))
                .or_else(|| self.target_user()),
            time: self.time,
            event_id: self.key.clone(),
        }
    }

    fn created_key(&self) -> CreatedKey {
        CreatedKey {
            // Only the id is read: responseElements may carry the new secret too.
            access_key_id: self.text(&["responseElements", "AccessKey", "AccessKeyId"]),
            user_name: self.key_owner(),
            time: self.time,
            event_id: self.key.clone(),
        }
    }

    /// What a successful create or delete acted on, one entry per resource type. The response
    /// names what was really made, so it wins; then ActionTrail's referenced resources; then
    /// the event's resource name; else the ids the call names after its own noun.
    fn resource_changes(&self, verb: &str) -> Vec<ResourceChange> {
        let noun = &self.name[verb.len()..];
        let found = self
            .response_resources()
            .or_else(|| self.referenced_resources(noun))
            .or_else(|| self.named_resources())
            .unwrap_or_else(|| vec![(noun.to_owned(), self.ids_named_after(noun))]);
        found
            .into_iter()
            .map(|(kind, ids)| ResourceChange {
                event_id: self.key.clone(),
                event_name: self.name.to_owned(),
                time: self.time,
                region: self.text(&["acsRegion"]),
                kind,
                ids,
            })
            .collect()
    }

    fn response_resources(&self) -> Option<Vec<(String, Vec<String>)>> {
        let response = &self.raw["responseElements"];
        let mut found = Vec::new();
        let instances = strings(&response["InstanceIdSets"]["InstanceIdSet"]);
        if !instances.is_empty() {
            found.push(("ACS::ECS::Instance".to_owned(), instances));
        }
        let user = text(response, &["User", "UserName"])
            .or_else(|| text(response, &["User", "UserPrincipalName"]));
        if let Some(user) = user {
            found.push(("ACS::RAM::User".to_owned(), vec![user.to_owned()]));
        }
        if let Some(key) = text(response, &["AccessKey", "AccessKeyId"]) {
            found.push(("ACS::RAM::AccessKey".to_owned(), vec![key.to_owned()]));
        }
        (!found.is_empty()).then_some(found)
    }

    fn referenced_resources(&self, noun: &str) -> Option<Vec<(String, Vec<String>)>> {
        let all: Vec<(String, Vec<String>)> = self.raw["referencedResources"]
            .as_object()?
            .iter()
            .map(|(kind, ids)| (kind.clone(), strings(ids)))
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        // RunInstances also references the image and security group it used: keep the type
        // the event is named after when there is one (`Instance` for `Instances`, `EIP` for
        // `EipAddress`).
        let noun = noun.to_ascii_lowercase();
        let named: Vec<_> = all
            .iter()
            .filter(|(kind, _)| {
                let last = kind
                    .rsplit("::")
                    .next()
                    .unwrap_or(kind)
                    .to_ascii_lowercase();
                !last.is_empty() && noun.starts_with(&last)
            })
            .cloned()
            .collect();
        match (named.is_empty(), all.is_empty()) {
            (false, _) => Some(named),
            (true, false) => Some(all),
            (true, true) => None,
        }
    }

    fn named_resources(&self) -> Option<Vec<(String, Vec<String>)>> {
        let ids = strings(&self.raw["resourceName"]);
        let kind = self.text(&["resourceType"])?;
        (!ids.is_empty()).then(|| vec![(kind, ids)])
    }

    /// `InstanceId` for `DeleteInstance`, `VpcId` in the answer to `CreateVpc`.
    fn ids_named_after(&self, noun: &str) -> Vec<String> {
        let singular = noun.strip_suffix('s').unwrap_or(noun);
        for part in ["responseElements", "requestParameters"] {
            for name in [noun, singular] {
                for suffix in ["Id", "Name"] {
                    if let Some(id) = self.text(&[part, &format!("{name}{suffix}")]) {
                        return vec![id];
                    }
                }
            }
        }
        Vec::new()
    }
}

/// The prefix of `name` among `prefixes`, when a word follows it (`RunInstances`, not `Runtime`).
fn verb_of<'p>(name: &str, prefixes: &[&'p str]) -> Option<&'p str> {
    prefixes.iter().copied().find(|prefix| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    })
}

/// The trimmed, non-empty string at `path`.
fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let found = path.iter().try_fold(value, |v, key| v.get(key))?;
    found.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// Ids given as a list, a single string or a comma-separated string.
fn strings(value: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    };
    match value {
        Value::Array(items) => items.iter().flat_map(one).collect(),
        other => one(other),
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

/// Resources named across entries; an entry that names none counts as one, as do left-out ones.
fn resource_count(changes: &Capped<ResourceChange>) -> u64 {
    let listed: usize = changes.items.iter().map(|c| c.ids.len().max(1)).sum();
    listed as u64 + changes.truncated
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const LEAKED: &str = "LTAI5tQ9xLeakedCiDeploy7";
    const ATTACKER: &str = "45.134.26.19";
    const EXIT_NODE: &str = "185.220.101.47";
    const OFFICE: &str = "10.0.8.14";
    const NEW_SECRET: &str = "Bd7TrW2qLx9VmN4cZp8KsJ3hGf6YeA";

    /// An ActionTrail event made with the leaked key, shaped as LookupEvents returns it: a RAM
    /// call for identity names, else ECS; a read for `Describe`/`List`/`Get`, else a write.
    fn event(n: u32, time: &str, name: &str, ip: &str) -> Value {
        let id = format!("5C1E0B0A-{n:04}-4B1E-9A6C-4E1F8B2C{n:04}");
        let read = ["Describe", "List", "Get"]
            .iter()
            .any(|p| name.starts_with(p));
        let rw = if read { "Read" } else { "Write" };
        let ram = IDENTITY_EVENTS.contains(&name) || name == "ListUsers";
        let service = if ram { "Ram" } else { "Ecs" };
        json!({
            "eventId": id,
            "eventVersion": 1,
            "eventTime": time,
            "eventType": "ApiCall",
            "eventCategory": "Management",
            "eventRW": rw,
            "eventName": name,
            "eventSource": format!("{}.aliyuncs.com", service.to_lowercase()),
            "serviceName": service,
            "acsRegion": "cn-hangzhou",
            "isGlobal": service == "Ram",
            "apiVersion": "2014-05-26",
            "requestId": id,
            "sourceIpAddress": ip,
            "userAgent": "AlibabaCloud (Linux; amd64) Python/3.11.4 Core/2.16.1",
            "userIdentity": {
                "type": "ram-user",
                "principalId": "276500000000000101",
                "accountId": "1234567890123456",
                "accessKeyId": LEAKED,
                "userName": "ci-deployer"
            },
            "requestParameters": { "RegionId": "cn-hangzhou" },
            "recipientAccountId": "1234567890123456"
        })
    }

    fn with(mut event: Value, extra: Value) -> Value {
        for (key, value) in extra.as_object().unwrap() {
            event[key] = value.clone();
        }
        event
    }

    /// The leaked-in-use scenario: reconnaissance, a backdoor user with a key and admin rights,
    /// SSH opened to the world, GPU instances, a refused second user, and old use from the
    /// office.
    fn attack() -> Vec<Value> {
        vec![
            event(1, "2024-05-01T01:00:00Z", "DescribeRegions", ATTACKER),
            with(
                event(3, "2024-05-01T02:00:00Z", "CreateUser", ATTACKER),
                json!({
                    "requestParameters": { "UserName": "svc-backup", "RegionId": "cn-hangzhou" },
                    "referencedResources": { "ACS::RAM::User": ["svc-backup"] },
                    "responseElements": {
                        "User": { "UserName": "svc-backup", "UserId": "276500000000000199" }
                    }
                }),
            ),
            with(
                event(4, "2024-05-01T02:01:00Z", "CreateAccessKey", ATTACKER),
                json!({
                    "requestParameters": { "UserName": "svc-backup", "RegionId": "cn-hangzhou" },
                    "referencedResources": { "ACS::RAM::User": ["svc-backup"] },
                    "responseElements": {
                        "AccessKey": {
                            "AccessKeyId": "LTAI5tBkD00rSvcBackup3Zq",
                            "AccessKeySecret": NEW_SECRET,
                            "Status": "Active"
                        }
                    }
                }),
            ),
            with(
                event(5, "2024-05-01T02:02:00Z", "AttachPolicyToUser", ATTACKER),
                json!({
                    "requestParameters": {
                        "UserName": "svc-backup",
                        "PolicyName": "AdministratorAccess",
                        "PolicyType": "System"
                    },
                    "referencedResources": { "ACS::RAM::User": ["svc-backup"] }
                }),
            ),
            with(
                event(
                    6,
                    "2024-05-01T03:00:00Z",
                    "AuthorizeSecurityGroup",
                    ATTACKER,
                ),
                json!({
                    "acsRegion": "ap-southeast-1",
                    "requestParameters": {
                        "SecurityGroupId": "sg-t4n2x8m1k0q7w3e5r9y1",
                        "IpProtocol": "tcp",
                        "PortRange": "22/22",
                        "SourceCidrIp": "0.0.0.0/0"
                    },
                    "referencedResources": { "ACS::ECS::SecurityGroup": ["sg-t4n2x8m1k0q7w3e5r9y1"] }
                }),
            ),
            with(
                event(7, "2024-05-01T03:02:00Z", "RunInstances", ATTACKER),
                json!({
                    "acsRegion": "ap-southeast-1",
                    "requestParameters": {
                        "InstanceType": "ecs.gn6i-c24g1.12xlarge",
                        "Amount": "20",
                        "SecurityGroupId": "sg-t4n2x8m1k0q7w3e5r9y1"
                    },
                    "referencedResources": {
                        "ACS::ECS::Instance": ["i-t4nfm1x0a2b3c4d5e6f7", "i-t4nfm1x0a2b3c4d5e6f8"]
                    },
                    "responseElements": {
                        "InstanceIdSets": {
                            "InstanceIdSet": ["i-t4nfm1x0a2b3c4d5e6f7", "i-t4nfm1x0a2b3c4d5e6f8"]
                        }
                    }
                }),
            ),
            event(9, "2024-05-01T04:00:00Z", "DescribeInstances", EXIT_NODE),
            with(
                event(11, "2024-05-01T04:30:00Z", "CreateUser", EXIT_NODE),
                json!({
                    "requestParameters": { "UserName": "svc-backup2" },
                    "referencedResources": { "ACS::RAM::User": ["svc-backup2"] },
                    "errorCode": "Forbidden",
                    "errorMessage": "Forbidden : There is a risk of leakage of this AccessKey."
                }),
            ),
            with(
                event(12, "2024-04-11T09:00:00Z", "DescribeInstances", OFFICE),
                json!({ "userAgent": "aliyun-cli/3.0.204" }),
            ),
            with(
                event(13, "2024-04-30T09:00:00Z", "ListUsers", "10.0.0.5"),
                json!({ "userIdentity": { "accessKeyId": "LTAI5tAKGUARDEMULATOR001" } }),
            ),
        ]
    }

    fn known() -> Vec<Cidr> {
        vec!["10.0.0.0/8".parse().unwrap()]
    }

    fn at(text: &str) -> Option<DateTime<Utc>> {
        Some(text.parse().unwrap())
    }

    fn without_passes(mut findings: AuditFindings) -> AuditFindings {
        findings.passes = 0;
        findings.pass_fingerprints.clear();
        findings
    }

    #[test]
    fn an_attack_is_summarized_call_by_call() {
        let findings = AuditFindings::from_events(LEAKED, &attack(), &known());

        assert_eq!(findings.events_examined, 9);
        assert_eq!(findings.passes, 1);
        assert_eq!(
            findings.summary(),
            "9 calls from 3 IPs (2 unknown), 6 write events, 4 resources created, \
             1 user and 1 key created, 1 call refused by leak protection"
        );

        let ips: Vec<(&str, u64, bool)> = findings
            .source_ips
            .iter()
            .map(|ip| (ip.ip.as_str(), ip.calls, ip.known))
            .collect();
        assert_eq!(
            ips,
            [
                (OFFICE, 1, true),
                (ATTACKER, 6, false),
                (EXIT_NODE, 2, false)
            ]
        );
        let attacker = &findings.source_ips[1];
        assert_eq!(attacker.first_seen, at("2024-05-01T01:00:00Z"));
        assert_eq!(attacker.last_seen, at("2024-05-01T03:02:00Z"));

        let writes: Vec<&str> = findings
            .write_events
            .items
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            writes,
            [
                "CreateUser",
                "CreateAccessKey",
                "AttachPolicyToUser",
                "AuthorizeSecurityGroup",
                "RunInstances",
                "CreateUser"
            ]
        );
        let refused = &findings.write_events.items[5];
        assert_eq!(refused.error_code.as_deref(), Some("Forbidden"));
        assert_eq!(refused.source_ip.as_deref(), Some(EXIT_NODE));
        assert_eq!(
            findings.write_events.items[4].region.as_deref(),
            Some("ap-southeast-1")
        );
        assert_eq!(
            findings.write_events.items[4].service.as_deref(),
            Some("Ecs")
        );

        let created: Vec<(&str, &str, Vec<&str>)> = findings
            .resources_created
            .items
            .iter()
            .map(|r| {
                let ids = r.ids.iter().map(String::as_str).collect();
                (r.event_name.as_str(), r.kind.as_str(), ids)
            })
            .collect();
        assert_eq!(
            created,
            [
                ("CreateUser", "ACS::RAM::User", vec!["svc-backup"]),
                (
                    "CreateAccessKey",
                    "ACS::RAM::AccessKey",
                    vec!["LTAI5tBkD00rSvcBackup3Zq"]
                ),
                (
                    "RunInstances",
                    "ACS::ECS::Instance",
                    vec!["i-t4nfm1x0a2b3c4d5e6f7", "i-t4nfm1x0a2b3c4d5e6f8"]
                ),
            ]
        );
        assert!(findings.resources_deleted.items.is_empty());

        let identity: Vec<_> = findings
            .identity_changes
            .items
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.user_name.as_deref(),
                    c.policy_name.as_deref(),
                    c.error_code.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            identity,
            [
                ("CreateUser", Some("svc-backup"), None, None),
                ("CreateAccessKey", Some("svc-backup"), None, None),
                (
                    "AttachPolicyToUser",
                    Some("svc-backup"),
                    Some("AdministratorAccess"),
                    None
                ),
                ("CreateUser", Some("svc-backup2"), None, Some("Forbidden")),
            ]
        );

        assert_eq!(findings.refused_by_leak_protection.total(), 1);
        assert_eq!(
            findings.refused_by_leak_protection.items[0].event_id,
            "5C1E0B0A-0011-4B1E-9A6C-4E1F8B2C0011"
        );
        let users: Vec<Option<&str>> = findings
            .users_created
            .items
            .iter()
            .map(|u| u.user_name.as_deref())
            .collect();
        assert_eq!(users, [Some("svc-backup")]);
        assert_eq!(
            findings.keys_created(),
            [CreatedKey {
                access_key_id: Some("LTAI5tBkD00rSvcBackup3Zq".into()),
                user_name: Some("svc-backup".into()),
                time: at("2024-05-01T02:01:00Z"),
                event_id: "5C1E0B0A-0004-4B1E-9A6C-4E1F8B2C0004".into(),
            }]
        );
    }

    #[test]
    fn a_new_keys_secret_never_reaches_the_findings() {
        let findings = AuditFindings::from_events(LEAKED, &attack(), &known());
        let stored = serde_json::to_string(&findings).unwrap();
        assert!(stored.contains("LTAI5tBkD00rSvcBackup3Zq"));
        assert!(!stored.contains(NEW_SECRET));
        assert!(!stored.contains("AccessKeySecret"));
        assert!(!format!("{findings:?}").contains(NEW_SECRET));
    }

    #[test]
    fn findings_survive_a_json_round_trip_in_snake_case() {
        let findings = AuditFindings::from_events(LEAKED, &attack(), &known());
        let stored = serde_json::to_value(&findings).unwrap();
        assert_eq!(stored["events_examined"], 9);
        assert_eq!(
            stored["source_ips"][0]["first_seen"],
            "2024-04-11T09:00:00Z"
        );
        assert_eq!(stored["write_events"]["truncated"], 0);
        assert_eq!(stored["write_events"]["items"][0]["name"], "CreateUser");
        assert_eq!(
            stored["keys_created"]["items"][0]["access_key_id"],
            "LTAI5tBkD00rSvcBackup3Zq"
        );
        assert!(
            stored["write_events"]["items"][0]
                .get("error_code")
                .is_none()
        );
        let back: AuditFindings = serde_json::from_value(stored).unwrap();
        assert_eq!(back, findings);
        assert_eq!(
            serde_json::from_str::<AuditFindings>("{}").unwrap(),
            AuditFindings::default()
        );
    }

    #[test]
    fn events_made_with_other_keys_are_ignored() {
        let mut unsigned = event(20, "2024-05-01T05:00:00Z", "DescribeInstances", ATTACKER);
        unsigned.as_object_mut().unwrap().remove("userIdentity");
        let other = with(
            event(21, "2024-05-01T05:00:00Z", "CreateUser", ATTACKER),
            json!({ "userIdentity": { "accessKeyId": "LTAI5tSomeoneElse000001" } }),
        );
        let findings = AuditFindings::from_events(LEAKED, &[unsigned, other], &known());
        assert_eq!(findings.events_examined, 0);
        assert!(findings.source_ips.is_empty() && findings.identity_changes.items.is_empty());
    }

    #[test]
    fn an_event_listed_twice_in_one_pass_counts_once() {
        let first = event(1, "2024-05-01T01:00:00Z", "RunInstances", ATTACKER);
        let findings =
            AuditFindings::from_events(LEAKED, &[first.clone(), first.clone(), first], &known());
        assert_eq!(findings.events_examined, 1);
        assert_eq!(findings.source_ips[0].calls, 1);
        assert_eq!(findings.write_events.total(), 1);
        assert_eq!(findings.resources_created.total(), 1);
    }

    #[test]
    fn only_addresses_inside_known_cidrs_are_known() {
        let events = [
            event(1, "2024-05-01T01:00:00Z", "DescribeInstances", "10.1.2.3"),
            event(
                2,
                "2024-05-01T01:01:00Z",
                "DescribeInstances",
                "::ffff:10.9.9.9",
            ),
            event(
                3,
                "2024-05-01T01:02:00Z",
                "DescribeInstances",
                "ecs.aliyuncs.com",
            ),
            event(
                4,
                "2024-05-01T01:03:00Z",
                "DescribeInstances",
                "10.1.2.3, 8.8.8.8",
            ),
            event(5, "2024-05-01T01:04:00Z", "DescribeInstances", "11.0.0.1"),
        ];
        let findings = AuditFindings::from_events(LEAKED, &events, &known());
        let known: Vec<(&str, bool)> = findings
            .source_ips
            .iter()
            .map(|ip| (ip.ip.as_str(), ip.known))
            .collect();
        assert_eq!(
            known,
            [
                ("10.1.2.3", true),
                ("::ffff:10.9.9.9", true),
                ("ecs.aliyuncs.com", false),
                ("10.1.2.3, 8.8.8.8", false),
                ("11.0.0.1", false),
            ]
        );
        let none = AuditFindings::from_events(LEAKED, &events, &[]);
        assert!(none.source_ips.iter().all(|ip| !ip.known));
    }

    #[test]
    fn events_without_a_readable_time_count_but_do_not_move_first_or_last_seen() {
        let mut untimed = event(2, "", "DescribeInstances", ATTACKER);
        untimed.as_object_mut().unwrap().remove("eventTime");
        let events = [
            event(1, "2024-05-01T01:00:00Z", "DescribeInstances", ATTACKER),
            untimed,
            event(3, "yesterday", "RunInstances", ATTACKER),
            event(
                4,
                "2024-05-01T02:00:00+08:00",
                "DescribeInstances",
                ATTACKER,
            ),
            event(5, "soon", "DescribeInstances", EXIT_NODE),
        ];
        let findings = AuditFindings::from_events(LEAKED, &events, &known());
        assert_eq!(findings.events_examined, 5);
        let attacker = &findings.source_ips[0];
        assert_eq!(attacker.calls, 4);
        assert_eq!(attacker.first_seen, at("2024-04-30T18:00:00Z"));
        assert_eq!(attacker.last_seen, at("2024-05-01T01:00:00Z"));
        let exit = &findings.source_ips[1];
        assert_eq!(
            (exit.ip.as_str(), exit.first_seen, exit.last_seen),
            (EXIT_NODE, None, None)
        );
        assert_eq!(findings.write_events.items[0].time, None);
    }

    #[test]
    fn created_resources_are_read_from_the_response_then_references_then_names() {
        let region = json!({ "RegionId": "cn-hangzhou" });
        let events = [
            // RunInstances also references what it used; only the instances were created.
            with(
                event(1, "2024-05-01T01:00:00Z", "RunInstances", ATTACKER),
                json!({ "referencedResources": {
                    "ACS::ECS::Instance": ["i-1"],
                    "ACS::ECS::SecurityGroup": ["sg-1"],
                    "ACS::ECS::Image": ["m-1"]
                }}),
            ),
            with(
                event(2, "2024-05-01T01:01:00Z", "AllocateEipAddress", ATTACKER),
                json!({ "referencedResources": { "ACS::VPC::EIP": "eip-1,eip-2" } }),
            ),
            with(
                event(3, "2024-05-01T01:02:00Z", "CreateVpc", ATTACKER),
                json!({ "resourceType": "ACS::VPC::VPC", "resourceName": "vpc-1" }),
            ),
            with(
                event(4, "2024-05-01T01:03:00Z", "ImportKeyPair", ATTACKER),
                json!({ "requestParameters": { "KeyPairName": "miner", "RegionId": "cn-hangzhou" } }),
            ),
            with(
                event(5, "2024-05-01T01:04:00Z", "DeleteInstance", ATTACKER),
                json!({ "requestParameters": { "InstanceId": "i-9", "RegionId": "cn-hangzhou" } }),
            ),
            event(6, "2024-05-01T01:05:00Z", "ReleaseEipAddress", ATTACKER),
            with(
                event(7, "2024-05-01T01:06:00Z", "CreateVSwitch", ATTACKER),
                json!({ "errorCode": "Forbidden.RAM", "requestParameters": region }),
            ),
            event(8, "2024-05-01T01:07:00Z", "RunCommand", ATTACKER),
            event(9, "2024-05-01T01:08:00Z", "Runtime", ATTACKER),
        ];
        let findings = AuditFindings::from_events(LEAKED, &events, &known());
        let kinds = |changes: &Capped<ResourceChange>| -> Vec<(String, String)> {
            changes
                .items
                .iter()
                .map(|r| (r.kind.clone(), r.ids.join(",")))
                .collect()
        };
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter()
                .map(|(k, i)| (k.to_string(), i.to_string()))
                .collect()
        };
        assert_eq!(
            kinds(&findings.resources_created),
            pairs(&[
                ("ACS::ECS::Instance", "i-1"),
                ("ACS::VPC::EIP", "eip-1,eip-2"),
                ("ACS::VPC::VPC", "vpc-1"),
                ("KeyPair", "miner"),
                ("Command", ""),
            ])
        );
        assert_eq!(
            kinds(&findings.resources_deleted),
            pairs(&[("Instance", "i-9"), ("EipAddress", "")])
        );
        assert_eq!(
            findings.resources_created.items[0].region.as_deref(),
            Some("cn-hangzhou")
        );
    }

    #[test]
    fn identity_changes_come_from_ram_and_ims_only() {
        let events = [
            with(
                event(1, "2024-05-01T01:00:00Z", "CreateUser", ATTACKER),
                json!({
                    "serviceName": "Ims",
                    "eventSource": "ims.aliyuncs.com",
                    "requestParameters": { "UserPrincipalName": "bob@acme.onaliyun.com" },
                    "responseElements": { "User": { "UserPrincipalName": "bob@acme.onaliyun.com" } }
                }),
            ),
            with(
                event(2, "2024-05-01T01:01:00Z", "CreateUser", ATTACKER),
                json!({
                    "serviceName": "Rds",
                    "eventSource": "rds.aliyuncs.com",
                    "requestParameters": { "UserName": "dbadmin" }
                }),
            ),
            // Without a user, CreateAccessKey makes a key for the caller.
            with(
                event(3, "2024-05-01T01:02:00Z", "CreateAccessKey", ATTACKER),
                json!({ "responseElements": { "AccessKey": { "Status": "Active" } } }),
            ),
            with(
                event(4, "2024-05-01T01:03:00Z", "AttachPolicyToRole", ATTACKER),
                json!({ "requestParameters": {
                    "RoleName": "ecs-admin",
                    "PolicyName": "AdministratorAccess",
                    "PolicyType": "System"
                }}),
            ),
            with(
                event(5, "2024-05-01T01:04:00Z", "UpdateAccessKey", ATTACKER),
                json!({ "requestParameters": {
                    "UserName": "alice",
                    "UserAccessKeyId": "LTAI5tAliceKey000000001",
                    "Status": "Inactive"
                }}),
            ),
            with(
                event(6, "2024-05-01T01:05:00Z", "BindMFADevice", ATTACKER),
                json!({
                    "requestParameters": { "UserName": "alice" },
                    "errorCode": "EntityNotExist.User"
                }),
            ),
        ];
        let findings = AuditFindings::from_events(LEAKED, &events, &known());
        let changes = &findings.identity_changes.items;
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "CreateUser",
                "CreateAccessKey",
                "AttachPolicyToRole",
                "UpdateAccessKey",
                "BindMFADevice"
            ]
        );
        assert_eq!(
            changes[0].user_name.as_deref(),
            Some("bob@acme.onaliyun.com")
        );
        assert_eq!(changes[1].user_name.as_deref(), Some("ci-deployer"));
        assert_eq!(changes[2].role_name.as_deref(), Some("ecs-admin"));
        assert_eq!(
            changes[2].policy_name.as_deref(),
            Some("AdministratorAccess")
        );
        assert_eq!(
            changes[3].access_key_id.as_deref(),
            Some("LTAI5tAliceKey000000001")
        );
        assert_eq!(
            changes[4].error_code.as_deref(),
            Some("EntityNotExist.User")
        );

        let users: Vec<Option<&str>> = findings
            .users_created
            .items
            .iter()
            .map(|u| u.user_name.as_deref())
            .collect();
        assert_eq!(users, [Some("bob@acme.onaliyun.com")]);
        let keys = findings.keys_created();
        assert_eq!(keys.len(), 1);
        assert_eq!(
            (
                keys[0].access_key_id.as_deref(),
                keys[0].user_name.as_deref()
            ),
            (None, Some("ci-deployer"))
        );
    }

    #[test]
    fn leak_protection_refusals_are_recognized_in_any_case_and_counted_apart() {
        let refusal = |n, name, message: &str| {
            with(
                event(n, "2024-05-01T01:00:00Z", name, ATTACKER),
                json!({ "errorCode": "Forbidden", "errorMessage": message }),
            )
        };
        let events = [
            refusal(
                1,
                "RunInstances",
                "Forbidden : There is a risk of leakage of this AccessKey.",
            ),
            refusal(
                2,
                "DescribeInstances",
                "THERE IS A RISK OF LEAKAGE OF THIS ACCESSKEY",
            ),
            refusal(
                3,
                "RunInstances",
                "Forbidden : User not authorized to operate on the specified resource.",
            ),
        ];
        let findings = AuditFindings::from_events(LEAKED, &events, &known());
        assert_eq!(findings.refused_by_leak_protection.total(), 2);
        assert_eq!(findings.write_events.total(), 2);
        assert_eq!(findings.resources_created.total(), 0);
        assert!(
            findings
                .summary()
                .ends_with("2 calls refused by leak protection")
        );
    }

    #[test]
    fn a_later_pass_adds_only_events_not_seen_before() {
        let all = attack();
        let first = AuditFindings::from_events(LEAKED, &all[..6], &known());
        let second = AuditFindings::from_events(LEAKED, &all[3..], &known());
        let merged = first.merge(second);
        assert_eq!(merged.passes, 2);
        assert_eq!(merged.pass_fingerprints.len(), 2);
        assert_eq!(
            without_passes(merged),
            without_passes(AuditFindings::from_events(LEAKED, &all, &known()))
        );
    }

    #[test]
    fn merging_is_idempotent_and_order_independent() {
        let all = attack();
        let first = AuditFindings::from_events(LEAKED, &all[..6], &known());
        let second = AuditFindings::from_events(LEAKED, &all[3..], &known());
        let merged = first.clone().merge(second.clone());
        assert_eq!(second.clone().merge(first.clone()), merged);
        assert_eq!(merged.clone().merge(second.clone()), merged);
        assert_eq!(merged.clone().merge(merged.clone()), merged);
        assert_eq!(first.clone().merge(first.clone()), first);
        assert_eq!(AuditFindings::default().merge(first.clone()), first);
    }

    #[test]
    fn passes_with_different_known_cidrs_keep_an_address_unknown() {
        let events = attack();
        let with_office = AuditFindings::from_events(LEAKED, &events, &known());
        let without = AuditFindings::from_events(LEAKED, &events, &[]);
        let merged = with_office.merge(without);
        assert!(merged.source_ips.iter().all(|ip| !ip.known));
    }

    fn noisy(range: std::ops::Range<u32>, ip: impl Fn(u32) -> String) -> Vec<Value> {
        let start: DateTime<Utc> = "2024-05-01T00:00:00Z".parse().unwrap();
        range
            .map(|n| {
                let time = (start + chrono::Duration::seconds(i64::from(n))).to_rfc3339();
                event(n, &time, "ModifyInstanceAttribute", &ip(n))
            })
            .collect()
    }

    #[test]
    fn long_lists_keep_the_earliest_entries_and_count_the_rest() {
        let one_ip = |_| ATTACKER.to_owned();
        let first = AuditFindings::from_events(LEAKED, &noisy(0..600, one_ip), &known());
        assert_eq!(first.write_events.items.len(), MAX_LISTED);
        assert_eq!(
            (first.write_events.truncated, first.write_events.total()),
            (100, 600)
        );
        assert_eq!(
            first.write_events.items[0].event_id,
            "5C1E0B0A-0000-4B1E-9A6C-4E1F8B2C0000"
        );

        let second = AuditFindings::from_events(LEAKED, &noisy(300..700, one_ip), &known());
        let merged = first.clone().merge(second.clone());
        assert_eq!(merged.events_examined, 700);
        assert_eq!(merged.write_events.items.len(), MAX_LISTED);
        assert_eq!(merged.write_events.total(), 700);
        assert_eq!(merged.clone().merge(second.clone()), merged);
        assert_eq!(second.merge(first), merged);
    }

    #[test]
    fn calls_beyond_the_tracking_bounds_are_counted_without_ids() {
        let events = noisy(0..MAX_TRACKED_EVENTS as u32 + 2, |n| {
            format!("198.51.{}.{}", n / 4 / 256, n / 4 % 256)
        });
        let findings = AuditFindings::from_events(LEAKED, &events, &known());
        assert_eq!(findings.events_examined, MAX_TRACKED_EVENTS as u64 + 2);
        assert_eq!(findings.source_ips.len(), MAX_SOURCE_IPS);
        assert!(findings.summary().starts_with("5002 calls from 1000+ IPs"));
        assert_eq!(
            findings.events_from_unlisted_ips,
            MAX_TRACKED_EVENTS as u64 + 2 - 4_000
        );
        let tracked: usize = findings
            .source_ips
            .iter()
            .map(|ip| ip.event_ids.len())
            .sum();
        assert_eq!(tracked, 4_000);
        assert_eq!(findings.clone().merge(findings.clone()), findings);

        let one_ip = noisy(0..MAX_TRACKED_EVENTS as u32 + 2, |_| ATTACKER.to_owned());
        let findings = AuditFindings::from_events(LEAKED, &one_ip, &known());
        let ip = &findings.source_ips[0];
        assert_eq!(
            (ip.event_ids.len(), ip.untracked_calls, ip.calls),
            (MAX_TRACKED_EVENTS, 2, MAX_TRACKED_EVENTS as u64 + 2)
        );
        assert_eq!(findings.clone().merge(findings.clone()), findings);
    }

    #[test]
    fn no_events_make_an_empty_pass() {
        let findings = AuditFindings::from_events(LEAKED, &[], &known());
        assert_eq!(findings.passes, 1);
        assert_eq!(
            findings.summary(),
            "0 calls from 0 IPs (0 unknown), 0 write events, 0 resources created, \
             0 users and 0 keys created, 0 calls refused by leak protection"
        );
    }
}
