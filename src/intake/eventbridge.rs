//! CloudEvents 1.0 envelopes as Alibaba Cloud EventBridge delivers them.
//!
//! Two kinds of event matter: a custom event whose `data` is the generic schema, and an
//! ActionTrail API call that failed under Alibaba's leak protection, which names the leaked
//! key in `data.userIdentity.accessKeyId`. Other ActionTrail events are the key at work: a
//! sighting if its incident is open, nothing otherwise.

use serde_json::{Map, Value};

use super::Parsed;
use super::fields::{lenient_time, nested, object, text};
use super::generic::parse_generic;
use crate::domain::text::{self as free_text, quoted};
use crate::domain::{AccessKeyId, Activity, LeakNotification, OwnerType, Signal};

/// What Alibaba returns to a call made with a key under restrictive protection.
const LEAK_PROTECTION_MESSAGE: &str = "there is a risk of leakage of this accesskey";

pub(super) fn parse(body: &[u8]) -> Result<Parsed, String> {
    let envelope = object(body)?;
    let required = |name: &str| {
        text(&envelope, &[name]).ok_or_else(|| format!("CloudEvent attribute `{name}` is required"))
    };
    let spec = required("specversion")?;
    if spec != "1.0" {
        return Err(format!(
            "CloudEvent specversion must be 1.0, got {}",
            quoted(&spec)
        ));
    }
    let attribute = |name| {
        free_text::event_id(name, &required(name)?).map_err(|e| format!("CloudEvent attribute {e}"))
    };
    let id = attribute("id")?;
    let source = attribute("source")?;
    let event_type = required("type")?;
    // `id` is unique only within its `source`.
    let delivery_key = Some(format!("{source}|{id}"));
    let data = match envelope.get("data") {
        Some(Value::Object(d)) => d.clone(),
        _ => nested(&envelope, "data").unwrap_or_default(),
    };
    let signal = if data.contains_key("access_key_id") {
        let mut n = parse_generic(Value::Object(data)).map_err(|e| format!("data: {e}"))?;
        n.event_id.get_or_insert(id);
        Some(Signal::Leak(n))
    } else if event_type.contains(":ActionTrail:") {
        actiontrail_signal(&envelope, &data, &event_type, id)?
    } else {
        None
    };
    Ok(Parsed {
        signal,
        delivery_key,
    })
}

fn actiontrail_signal(
    envelope: &Map<String, Value>,
    data: &Map<String, Value>,
    event_type: &str,
    id: String,
) -> Result<Option<Signal>, String> {
    let identity = nested(data, "userIdentity").unwrap_or_default();
    let Some(raw_key) = text(&identity, &["accessKeyId"]) else {
        return Ok(None);
    };
    let access_key_id = AccessKeyId::parse(&raw_key)
        .map_err(|_| "data.userIdentity.accessKeyId is not an AccessKey ID".to_owned())?;
    let account_id =
        text(&identity, &["accountId"]).or_else(|| text(envelope, &["aliyunaccountid"]));
    let event_time = text(data, &["eventTime"])
        .or_else(|| text(envelope, &["time"]))
        .and_then(|t| lenient_time(&t));
    let leak_protected = event_type.ends_with(":ActionTrail:ApiCall")
        && text(data, &["errorMessage"])
            .is_some_and(|m| m.to_ascii_lowercase().contains(LEAK_PROTECTION_MESSAGE));
    if !leak_protected {
        let activity = Activity {
            access_key_id,
            account_id,
            event_id: Some(id),
            event_name: text(data, &["eventName"]),
            event_time,
            source_ip: text(data, &["sourceIpAddress"]),
            error_code: text(data, &["errorCode"]),
        };
        return Ok(Some(Signal::Activity(activity.cleaned())));
    }
    let owner_type = match text(&identity, &["type"]).as_deref() {
        Some("ram-user") => Some(OwnerType::RamUser),
        Some("root-account") => Some(OwnerType::Account),
        Some("assumed-role") => Some(OwnerType::Sts),
        _ => None,
    };
    let notification = LeakNotification {
        access_key_id,
        account_id,
        account_name: None,
        user_name: text(&identity, &["userName"])
            .filter(|_| owner_type == Some(OwnerType::RamUser)),
        owner_type,
        leak_url: None,
        detected_at: event_time,
        stated_detected_at: None,
        event_id: Some(id),
    };
    // ActionTrail wrote this one: a field that breaks a rule is left out, not the leak refused.
    let (notification, broken) = notification.without_invalid_text();
    for broken in broken {
        tracing::warn!(error = %broken, "ActionTrail leak event field left out");
    }
    Ok(Some(Signal::Leak(notification)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(event_type: &str, data: Value) -> Vec<u8> {
        serde_json::json!({
            "specversion": "1.0",
            "id": "evt-1",
            "source": "acs.ram",
            "type": event_type,
            "time": "2024-05-01T03:04:05Z",
            "aliyunaccountid": "1234567890123456",
            "data": data
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_leak_protection_error_is_a_leak_signal() {
        let body = envelope(
            "ram:ActionTrail:ApiCall",
            serde_json::json!({
                "eventName": "CreateUser",
                "errorCode": "Forbidden",
                "errorMessage": "Forbidden : There is a risk of leakage of this AccessKey.",
                "userIdentity": {"type": "ram-user", "accessKeyId": "LTAI5tLEAKEDLEAKED", "userName": "ci", "accountId": "1234567890123456"}
            }),
        );
        let parsed = parse(&body).unwrap();
        assert_eq!(parsed.delivery_key.as_deref(), Some("acs.ram|evt-1"));
        let Some(Signal::Leak(n)) = parsed.signal else {
            panic!("not a leak")
        };
        assert_eq!(n.access_key_id.as_str(), "LTAI5tLEAKEDLEAKED");
        assert_eq!(n.owner_type, Some(OwnerType::RamUser));
        assert_eq!(n.user_name.as_deref(), Some("ci"));
    }

    #[test]
    fn other_actiontrail_calls_are_activity_and_other_events_nothing() {
        let body = envelope(
            "ecs:ActionTrail:ApiCall",
            serde_json::json!({"eventName": "RunInstances", "sourceIpAddress": "203.0.113.7",
                "userIdentity": {"accessKeyId": "LTAI5tLEAKEDLEAKED"}}),
        );
        let Some(Signal::Activity(a)) = parse(&body).unwrap().signal else {
            panic!()
        };
        assert_eq!(a.source_ip.as_deref(), Some("203.0.113.7"));
        let body = envelope(
            "aliyuncvc:MeetingEvent:MemberOperate",
            serde_json::json!({"x": 1}),
        );
        assert!(parse(&body).unwrap().signal.is_none());
    }

    #[test]
    fn envelopes_are_checked() {
        assert!(
            parse(br#"{"specversion":"0.3","id":"a","source":"b","type":"c"}"#)
                .unwrap_err()
                .contains("specversion")
        );
        assert!(
            parse(br#"{"specversion":"1.0","source":"b","type":"c"}"#)
                .unwrap_err()
                .contains("`id`")
        );
    }
}
