//! Scenario times: RFC 3339 instants, or offsets such as `"-15m"` counted from the moment the
//! scenario loads, so that "last used minutes ago" stays true whenever a scenario is run.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The wire format of every RAM, IMS, STS and ActionTrail time: UTC, second precision.
const WIRE_FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

/// A point in time as a scenario writes it.
///
/// `"now"`, `"-15m"`, `"+2h"`, `"-200d"` (units `s`, `m`, `h`, `d`, `w`) are offsets from load
/// time; anything else must be RFC 3339. Loading resolves every offset to an instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    At(DateTime<Utc>),
    FromLoad(TimeDelta),
}

impl When {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("now") {
            return Ok(Self::FromLoad(TimeDelta::zero()));
        }
        if let Some(sign) = text.chars().next().filter(|c| *c == '+' || *c == '-') {
            return parse_offset(&text[1..])
                .map(|d| Self::FromLoad(if sign == '-' { -d } else { d }))
                .ok_or_else(|| format!("`{text}` is not an offset like \"-15m\" or \"+2h\""));
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| Self::At(t.with_timezone(&Utc)))
            .map_err(|_| format!("`{text}` is neither RFC 3339 nor an offset like \"-15m\""))
    }

    /// Fixes an offset to an instant; instants stay as they are.
    pub(crate) fn resolve(&mut self, now: DateTime<Utc>) {
        *self = Self::At(self.at(now));
    }

    /// The instant, counting an unresolved offset from `now`.
    pub(crate) fn at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::At(t) => *t,
            Self::FromLoad(d) => now + *d,
        }
    }
}

fn parse_offset(text: &str) -> Option<TimeDelta> {
    let unit = text.chars().last()?;
    let amount: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let seconds = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    TimeDelta::try_seconds(amount.checked_mul(seconds)?)
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::At(t) => f.write_str(&format_time(*t)),
            Self::FromLoad(d) if d.is_zero() => f.write_str("now"),
            Self::FromLoad(d) => write!(f, "{:+}s", d.num_seconds()),
        }
    }
}

impl Serialize for When {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// `2016-02-23T12:46:24Z`.
pub(crate) fn format_time(t: DateTime<Utc>) -> String {
    t.format(WIRE_FORMAT).to_string()
}

/// Parses exactly `YYYY-MM-DDThh:mm:ssZ`, as the gateway and ActionTrail require.
pub(crate) fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, WIRE_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// A billing cycle key: `YYYY-MM` as is, `current` or `current-N` counted back from `now`.
pub(crate) fn resolve_cycle(key: &str, now: DateTime<Utc>) -> Option<String> {
    if let Some(rest) = key.strip_prefix("current") {
        let back: u32 = match rest {
            "" => 0,
            _ => rest.strip_prefix('-')?.parse().ok()?,
        };
        let month = now.date_naive().with_day0(0)?;
        let shifted = month.checked_sub_months(chrono::Months::new(back))?;
        return Some(shifted.format("%Y-%m").to_string());
    }
    NaiveDate::parse_from_str(&format!("{key}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| key.len() == 7)
        .map(|_| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_instants_parse_and_print_back() {
        assert_eq!(
            When::parse("-15m"),
            Ok(When::FromLoad(TimeDelta::minutes(-15)))
        );
        assert_eq!(When::parse("+2h"), Ok(When::FromLoad(TimeDelta::hours(2))));
        assert_eq!(When::parse("now"), Ok(When::FromLoad(TimeDelta::zero())));
        let at = When::parse("2026-11-28T10:00:00+08:00").unwrap();
        assert_eq!(at.to_string(), "2026-11-28T02:00:00Z");
        assert_eq!(When::parse("-900s").unwrap().to_string(), "-900s");
        assert!(When::parse("-15x").is_err());
        assert!(When::parse("yesterday").is_err());
    }

    #[test]
    fn an_offset_resolves_against_the_load_time() {
        let now = parse_time("2026-11-28T12:00:00Z").unwrap();
        let mut when = When::parse("-200d").unwrap();
        when.resolve(now);
        assert_eq!(when.to_string(), "2026-05-12T12:00:00Z");
    }

    #[test]
    fn billing_cycles_count_back_in_months() {
        let now = parse_time("2026-01-31T12:00:00Z").unwrap();
        assert_eq!(resolve_cycle("current", now).as_deref(), Some("2026-01"));
        assert_eq!(resolve_cycle("current-1", now).as_deref(), Some("2025-12"));
        assert_eq!(resolve_cycle("2025-07", now).as_deref(), Some("2025-07"));
        assert_eq!(resolve_cycle("2025-13", now), None);
        assert_eq!(resolve_cycle("current+1", now), None);
    }

    #[test]
    fn the_wire_format_is_strict() {
        assert!(parse_time("2016-02-23T12:46:24Z").is_some());
        assert!(parse_time("2016-02-23T12:46:24.123Z").is_none());
        assert!(parse_time("2016-02-23 12:46:24").is_none());
    }
}
