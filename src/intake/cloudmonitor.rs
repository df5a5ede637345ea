//! CloudMonitor system-event callbacks. Alibaba documents only part of their body, and no
//! leak event, so this reads the documented fields and looks for an AccessKey ID in the
//! event `content` (or at the top level) under the spellings Alibaba products use.

use super::Parsed;
use super::fields::{lenient_time, nested, object, text};
use crate::domain::text as free_text;
use crate::domain::{AccessKeyId, LeakNotification, OwnerType, Signal};

const KEY_FIELDS: &[&str] = &["accessKeyId", "access_key_id", "akId"];

pub(super) fn parse(body: &[u8]) -> Result<Parsed, String> {
    let event = object(body)?;
    let content = nested(&event, "content").unwrap_or_default();
    let delivery_key = text(&event, &["traceId", "id", "eventId"])
        .and_then(|id| free_text::event_id("traceId", &id).map_err(left_out).ok());
    let Some(raw_key) = text(&content, KEY_FIELDS).or_else(|| text(&event, KEY_FIELDS)) else {
        return Ok(Parsed {
            signal: None,
            delivery_key,
        });
    };
    let access_key_id = AccessKeyId::parse(&raw_key)
        .map_err(|_| "the AccessKey ID in the event is not valid".to_owned())?;
    let field = |names: &[&str]| text(&content, names).or_else(|| text(&event, names));
    let owner_type = match field(&["userType", "owner_type"]).as_deref() {
        Some("ram" | "ram_user") => Some(OwnerType::RamUser),
        Some("master" | "account") => Some(OwnerType::Account),
        Some("sts") => Some(OwnerType::Sts),
        _ => None,
    };
    // resourceId is an ARN, `acs:<product>:<region>:<account>:<resource>`.
    let arn_account = text(&event, &["resourceId"])
        .and_then(|arn| arn.split(':').nth(3).map(str::to_owned))
        .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()));
    let notification = LeakNotification {
        access_key_id,
        account_id: field(&["userId", "aliyunUid", "accountId", "account_id"]).or(arn_account),
        account_name: field(&["aliUserName", "accountName", "account_name"]),
        owner_type,
        user_name: field(&["userName", "user_name"]),
        leak_url: field(&["url", "leakUrl", "leak_url"]),
        detected_at: field(&["time", "timestamp", "gmtModified"]).and_then(|t| lenient_time(&t)),
        stated_detected_at: None,
        event_id: delivery_key.clone(),
    };
    let (notification, broken) = notification.without_invalid_text();
    broken.into_iter().for_each(left_out);
    Ok(Parsed {
        signal: Some(Signal::Leak(notification)),
        delivery_key,
    })
}

/// Alibaba wrote the event, so a field that breaks a rule is left out rather than the leak
/// refused; the log says which rule (never what the field held).
fn left_out(broken: free_text::InvalidText) {
    tracing::warn!(error = %broken, "CloudMonitor event field left out");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_in_the_content_makes_a_leak() {
        let body = br#"{"traceId":"t-1","resourceId":"acs:sas:cn-shanghai:1234567890123456:leak/1",
            "ver":"1.0","product":"Sas","name":"AccessKeyLeak","level":"CRITICAL",
            "content":"{\"AccesskeyId\":\"LTAI5tLEAKED00001\",\"Url\":\"https://github.com/a/b\",\"UserType\":\"ram\"}",
            "time":"20240501T110405.000+0800"}"#;
        let parsed = parse(body).unwrap();
        let Some(Signal::Leak(n)) = parsed.signal else {
            panic!()
        };
        assert_eq!(n.access_key_id.as_str(), "LTAI5tLEAKED00001");
        assert_eq!(n.account_id.as_deref(), Some("1234567890123456"));
        assert_eq!(n.leak_url.as_deref(), Some("https://github.com/a/b"));
        assert_eq!(n.owner_type, Some(OwnerType::RamUser));
        assert_eq!(parsed.delivery_key.as_deref(), Some("t-1"));
    }

    #[test]
    fn events_without_a_key_are_not_ours() {
        let body = br#"{"traceId":"t-2","product":"ECS","name":"Instance:SystemFailure.Reboot:Executing","content":{}}"#;
        assert!(parse(body).unwrap().signal.is_none());
        assert!(parse(b"not json").is_err());
    }
}
