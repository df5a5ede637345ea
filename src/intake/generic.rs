//! akguard's own notification schema, for SIEMs, SOAR tools and forwarded alerts.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::Parsed;
use crate::domain::text::quoted;
use crate::domain::{AccessKeyId, LeakNotification, OwnerType, Signal};

/// akguard's own schema for a leak (the `generic` format, and `POST /v1/incidents`).
/// Unknown fields are ignored so forwarders may add their own.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct GenericNotification {
    /// The leaked AccessKey ID (required; optional here only so that its absence gets a
    /// clear message).
    #[schema(required = true)]
    access_key_id: Option<String>,
    account_id: Option<String>,
    account_name: Option<String>,
    /// `ram_user`, `account` or `sts`; inferred from the key when absent.
    owner_type: Option<String>,
    user_name: Option<String>,
    leak_url: Option<String>,
    /// When the leak was detected (RFC 3339); the time of receipt when absent.
    detected_at: Option<String>,
    /// The sender's id for this report: a repeat with the same id is a replay.
    event_id: Option<String>,
}

pub(super) fn parse(body: &[u8]) -> Result<Parsed, String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not valid JSON: {e}"))?;
    let notification = parse_generic(value)?;
    Ok(Parsed {
        delivery_key: notification.event_id.clone(),
        signal: Some(Signal::Leak(notification)),
    })
}

/// Reads one notification in the generic schema.
pub fn parse_generic(value: serde_json::Value) -> Result<LeakNotification, String> {
    if !value.is_object() {
        return Err("the body must be a JSON object".into());
    }
    let raw: GenericNotification = serde_json::from_value(value)
        .map_err(|e| format!("the body does not fit the schema: {e}"))?;
    let access_key_id = raw
        .access_key_id
        .ok_or("access_key_id is required")
        .and_then(|k| AccessKeyId::parse(&k).map_err(|_| "access_key_id is not an AccessKey ID"))?;
    let owner_type = raw
        .owner_type
        .map(|o| {
            OwnerType::parse(&o)
                .filter(|o| *o != OwnerType::Unknown)
                .ok_or("owner_type must be ram_user, account or sts")
        })
        .transpose()?;
    let detected_at = raw
        .detected_at
        .map(|t| {
            DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| format!("detected_at must be an RFC 3339 time, got {}", quoted(&t)))
        })
        .transpose()?;
    let non_empty = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    LeakNotification {
        access_key_id,
        account_id: non_empty(raw.account_id),
        account_name: non_empty(raw.account_name),
        owner_type,
        user_name: non_empty(raw.user_name),
        leak_url: non_empty(raw.leak_url),
        detected_at,
        stated_detected_at: None,
        event_id: non_empty(raw.event_id),
    }
    .checked()
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_field_is_read() {
        let n = parse_generic(serde_json::json!({
            "access_key_id": "LTAI5tExample0001",
            "account_id": "1234567890123456",
            "account_name": "acme-prod",
            "owner_type": "ram_user",
            "user_name": "ci-deployer",
            "leak_url": "https://github.com/acme/app/blob/main/config.py",
            "detected_at": "2024-05-01T03:00:00Z",
            "event_id": "siem-42",
            "extra": "ignored"
        }))
        .unwrap();
        assert_eq!(n.access_key_id.as_str(), "LTAI5tExample0001");
        assert_eq!(n.owner_type, Some(OwnerType::RamUser));
        assert_eq!(n.user_name.as_deref(), Some("ci-deployer"));
        assert_eq!(n.event_id.as_deref(), Some("siem-42"));
        assert_eq!(
            n.detected_at.unwrap().to_rfc3339(),
            "2024-05-01T03:00:00+00:00"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let err = |v| parse_generic(v).unwrap_err();
        assert!(err(serde_json::json!({})).contains("access_key_id is required"));
        assert!(err(serde_json::json!({"access_key_id": "x y"})).contains("access_key_id"));
        assert!(
            err(serde_json::json!({"access_key_id": "LTAI5tExample0001", "owner_type": "root"}))
                .contains("owner_type")
        );
        assert!(
            err(serde_json::json!({"access_key_id": "LTAI5tExample0001", "detected_at": "yesterday"}))
                .contains("detected_at")
        );
        assert!(err(serde_json::json!({"access_key_id": 5})).contains("schema"));
        assert!(err(serde_json::json!([1])).contains("JSON object"));
    }
}
