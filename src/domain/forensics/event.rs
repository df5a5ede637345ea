//! Reading one ActionTrail event: the fields the analysis needs, and what kind of call it was.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::EventSummary;
use crate::domain::text::{MAX_FOREIGN, clean};

/// What restrictive leak protection says when it refuses a call, in lower case.
const LEAK_PROTECTION_REFUSAL: &str = "there is a risk of leakage of this accesskey";

/// RAM and IMS calls that change who can do what.
pub(super) const IDENTITY_EVENTS: [&str; 19] = [
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

/// The fields of one ActionTrail event that the analysis reads.
pub(super) struct Event<'a> {
    pub(super) raw: &'a Value,
    /// `eventId`, else `requestId`, else what the event looks like: the dedup key.
    pub(super) key: String,
    pub(super) time: Option<DateTime<Utc>>,
    pub(super) name: &'a str,
    pub(super) source_ip: Option<&'a str>,
    pub(super) error_code: Option<&'a str>,
}

impl<'a> Event<'a> {
    pub(super) fn read(raw: &'a Value, access_key_id: &str) -> Option<Self> {
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

    pub(super) fn text(&self, path: &[&str]) -> Option<String> {
        text(self.raw, path).map(str::to_owned)
    }

    pub(super) fn param(&self, name: &str) -> Option<String> {
        self.text(&["requestParameters", name])
    }

    pub(super) fn is_write(&self) -> bool {
        text(self.raw, &["eventRW"]).is_some_and(|rw| rw.eq_ignore_ascii_case("write"))
    }

    pub(super) fn is_refused_by_leak_protection(&self) -> bool {
        text(self.raw, &["errorMessage"])
            .is_some_and(|m| m.to_lowercase().contains(LEAK_PROTECTION_REFUSAL))
    }

    /// Other products have calls named `CreateUser` too (databases, for one).
    pub(super) fn is_identity_change(&self) -> bool {
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

    pub(super) fn summary(&self) -> EventSummary {
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

    pub(super) fn referenced(&self, kind: &str) -> Option<String> {
        strings(&self.raw["referencedResources"][kind])
            .into_iter()
            .next()
    }
}

/// The trimmed, non-empty string at `path`.
pub(super) fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let found = path.iter().try_fold(value, |v, key| v.get(key))?;
    found.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// Ids given as a list, a single string or a comma-separated string.
pub(super) fn strings(value: &Value) -> Vec<String> {
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

/// `event` with every string in it, keys included, cleaned as evidence (see [`clean`]).
pub(super) fn cleaned(event: &Value) -> Value {
    let text = |s: &String| clean(s, MAX_FOREIGN).into_owned();
    match event {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.iter().map(cleaned).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (text(key), cleaned(value)))
                .collect(),
        ),
        other => other.clone(),
    }
}
