//! What a leak report says once its source format has been stripped away.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::text::{self, InvalidText};

/// An AccessKey ID. Only ever the ID: secrets never enter the domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccessKeyId(String);

#[derive(Debug, thiserror::Error)]
#[error(
    "access_key_id must be 8 to 128 characters of letters, digits and '.', got {len} characters"
)]
pub struct InvalidAccessKeyId {
    len: usize,
}

impl AccessKeyId {
    pub fn parse(raw: &str) -> Result<Self, InvalidAccessKeyId> {
        let raw = raw.trim();
        let valid = (8..=128).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidAccessKeyId { len: raw.len() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// STS keys are temporary and carry this prefix; they expire on their own.
    pub fn is_sts(&self) -> bool {
        self.0.starts_with("STS.")
    }
}

impl TryFrom<String> for AccessKeyId {
    type Error = InvalidAccessKeyId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<AccessKeyId> for String {
    fn from(value: AccessKeyId) -> Self {
        value.0
    }
}

impl fmt::Display for AccessKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who owns a leaked key, as far as the report knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerType {
    RamUser,
    Account,
    Sts,
    Unknown,
}

impl OwnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RamUser => "ram_user",
            Self::Account => "account",
            Self::Sts => "sts",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "ram_user" => Some(Self::RamUser),
            "account" => Some(Self::Account),
            "sts" => Some(Self::Sts),
            "unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// A report that an AccessKey pair has leaked, whatever source it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeakNotification {
    pub access_key_id: AccessKeyId,
    pub account_id: Option<String>,
    pub account_name: Option<String>,
    pub owner_type: Option<OwnerType>,
    pub user_name: Option<String>,
    pub leak_url: Option<String>,
    /// When the leak was detected. As parsed it is what the sender stated; once clamped at
    /// intake it is the time triage judges on.
    pub detected_at: Option<DateTime<Utc>>,
    /// What the sender stated, kept when the clamp moved it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stated_detected_at: Option<DateTime<Utc>>,
    pub event_id: Option<String>,
}

impl LeakNotification {
    /// Bounds the stated detection time to `[received_at - max_age, received_at]`: a sender
    /// cannot date a report into the future, nor so far back that the key's current use
    /// falls "after detection". Absent, it is the time of receipt.
    pub fn clamp_detected_at(&mut self, received_at: DateTime<Utc>, max_age: Duration) {
        let oldest =
            received_at - chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        let stated = self.detected_at;
        let used = stated.unwrap_or(received_at).clamp(oldest, received_at);
        self.detected_at = Some(used);
        self.stated_detected_at = stated.filter(|s| *s != used);
    }

    /// The owner type to record: what the report says, else what the key's shape implies.
    pub fn effective_owner_type(&self) -> OwnerType {
        match self.owner_type {
            Some(owner) => owner,
            None if self.access_key_id.is_sts() => OwnerType::Sts,
            None => OwnerType::Unknown,
        }
    }

    /// The report with its free text held to the rules of [`text`], for reports a sender
    /// wrote: the first field that breaks one is named, and the report is refused.
    pub fn checked(self) -> Result<Self, InvalidText> {
        match self.without_invalid_text() {
            (report, broken) if broken.is_empty() => Ok(report),
            (_, broken) => Err(broken[0].clone()),
        }
    }

    /// The report with every free-text field that breaks a rule of [`text`] left out, and
    /// the rules broken. For reports Alibaba wrote, which are evidence of a real leak:
    /// refusing one would leave the key uncontained over a cosmetic field.
    pub fn without_invalid_text(mut self) -> (Self, Vec<InvalidText>) {
        let mut broken = Vec::new();
        let mut keep = |value: Option<String>, field, rule: text::Rule| {
            value.and_then(|v| rule(field, &v).map_err(|e| broken.push(e)).ok())
        };
        self.account_id = keep(self.account_id.take(), "account_id", text::account_id);
        self.account_name = keep(self.account_name.take(), "account_name", text::name);
        self.user_name = keep(self.user_name.take(), "user_name", text::user_name);
        self.leak_url = keep(self.leak_url.take(), "leak_url", text::https_url);
        self.event_id = keep(self.event_id.take(), "event_id", text::event_id);
        (self, broken)
    }
}

/// Something a key did (an ActionTrail event), which matters only if the key already leaked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Activity {
    pub access_key_id: AccessKeyId,
    /// The account the call was made in.
    pub account_id: Option<String>,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
    pub source_ip: Option<String>,
    pub error_code: Option<String>,
}

impl Activity {
    /// The activity with what ActionTrail wrote cleaned as evidence (see [`text::clean`]).
    pub fn cleaned(self) -> Self {
        let clean = |v: Option<String>| v.map(|v| text::clean(&v, text::MAX_FOREIGN).into_owned());
        Self {
            event_name: clean(self.event_name),
            source_ip: clean(self.source_ip),
            error_code: clean(self.error_code),
            ..self
        }
    }
}

/// What a notification tells akguard once parsed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    Leak(LeakNotification),
    Activity(Activity),
}

impl Signal {
    pub fn access_key_id(&self) -> &AccessKeyId {
        match self {
            Self::Leak(n) => &n.access_key_id,
            Self::Activity(a) => &a.access_key_id,
        }
    }

    /// The Alibaba Cloud account the notification speaks for, when it names one.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Self::Leak(n) => n.account_id.as_deref(),
            Self::Activity(a) => a.account_id.as_deref(),
        }
    }

    pub fn event_id(&self) -> Option<&str> {
        match self {
            Self::Leak(n) => n.event_id.as_deref(),
            Self::Activity(a) => a.event_id.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_key_ids_are_trimmed_and_checked() {
        assert_eq!(
            AccessKeyId::parse(" LTAI5tAbc123 ").unwrap().as_str(),
            "LTAI5tAbc123"
        );
        assert!(AccessKeyId::parse("short").is_err());
        assert!(AccessKeyId::parse("LTAI5t Abc123").is_err());
        assert!(AccessKeyId::parse("LTAI5t\"Abc123").is_err());
        assert!(
            AccessKeyId::parse("STS.NUgYrLnoC37mZZCNnAbez2Vgr")
                .unwrap()
                .is_sts()
        );
    }

    #[test]
    fn sts_keys_default_to_the_sts_owner_type() {
        let mut n = LeakNotification {
            access_key_id: AccessKeyId::parse("STS.NUgYrLnoC37mZZCN").unwrap(),
            account_id: None,
            account_name: None,
            owner_type: None,
            user_name: None,
            leak_url: None,
            detected_at: None,
            stated_detected_at: None,
            event_id: None,
        };
        assert_eq!(n.effective_owner_type(), OwnerType::Sts);
        n.owner_type = Some(OwnerType::RamUser);
        assert_eq!(n.effective_owner_type(), OwnerType::RamUser);
    }

    #[test]
    fn detection_times_are_clamped_to_the_day_before_receipt() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let received = t("2026-06-30T12:00:00Z");
        let day = Duration::from_secs(86_400);
        let clamp = |stated: Option<&str>| {
            let mut n = LeakNotification {
                access_key_id: AccessKeyId::parse("LTAI5tExample0001").unwrap(),
                account_id: None,
                account_name: None,
                owner_type: None,
                user_name: None,
                leak_url: None,
                detected_at: stated.map(t),
                stated_detected_at: None,
                event_id: None,
            };
            n.clamp_detected_at(received, day);
            (n.detected_at.unwrap(), n.stated_detected_at)
        };
        // (stated, used, kept as stated)
        let rows = [
            (None, "2026-06-30T12:00:00Z", None),
            (Some("2026-06-30T11:53:00Z"), "2026-06-30T11:53:00Z", None),
            (Some("2026-06-29T12:00:00Z"), "2026-06-29T12:00:00Z", None),
            (
                Some("2026-06-29T11:59:59Z"),
                "2026-06-29T12:00:00Z",
                Some("2026-06-29T11:59:59Z"),
            ),
            (
                Some("2024-05-01T00:00:00Z"),
                "2026-06-29T12:00:00Z",
                Some("2024-05-01T00:00:00Z"),
            ),
            (
                Some("2001-01-01T00:00:00Z"),
                "2026-06-29T12:00:00Z",
                Some("2001-01-01T00:00:00Z"),
            ),
            (
                Some("2030-01-01T00:00:00Z"),
                "2026-06-30T12:00:00Z",
                Some("2030-01-01T00:00:00Z"),
            ),
        ];
        for (stated, used, kept) in rows {
            assert_eq!(clamp(stated), (t(used), kept.map(t)), "{stated:?}");
        }
    }
}
