//! Small readers shared by the parsers of loosely specified vendor JSON.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

/// The body as a JSON object, or a message saying why not.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the body must be a JSON object".into()),
        Err(e) => Err(format!("the body is not valid JSON: {e}")),
    }
}

/// The first of `names` present as a non-empty string (or number), matched case-insensitively.
pub fn text(map: &Map<String, Value>, names: &[&str]) -> Option<String> {
    map.iter()
        .filter(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .find_map(|(_, v)| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
}

/// A nested object, also when a sender JSON-encoded it into a string.
pub fn nested(map: &Map<String, Value>, name: &str) -> Option<Map<String, Value>> {
    match map.get(name)? {
        Value::Object(o) => Some(o.clone()),
        Value::String(s) => match serde_json::from_str(s) {
            Ok(Value::Object(o)) => Some(o),
            _ => None,
        },
        _ => None,
    }
}

/// RFC 3339, the compact `20240501T030405.000+0800` of CloudMonitor, or Unix seconds or
/// milliseconds. Anything else is `None`: these times are informative, never required.
pub fn lenient_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y%m%dT%H%M%S%.3f%z", "%Y%m%dT%H%M%S%z"] {
        if let Ok(t) = DateTime::parse_from_str(raw, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    let n: i64 = raw.parse().ok()?;
    // Seconds until the year 5138; beyond that the number must be milliseconds.
    if n < 100_000_000_000 {
        DateTime::from_timestamp(n, 0)
    } else {
        DateTime::from_timestamp_millis(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_time_formats_are_read() {
        let expected = "2024-05-01T03:04:05Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(lenient_time("2024-05-01T03:04:05Z"), Some(expected));
        assert_eq!(lenient_time("2024-05-01T11:04:05+08:00"), Some(expected));
        assert_eq!(lenient_time("20240501T110405.000+0800"), Some(expected));
        assert_eq!(lenient_time("1714532645"), Some(expected));
        assert_eq!(lenient_time("1714532645000"), Some(expected));
        assert_eq!(lenient_time("2024-05-01T11:04:05.179PRC"), None);
    }
}
