//! Values the environment can only give as text: durations written as seconds (`60`) or with
//! a unit (`"90s"`, `"5m"`, `"1h"`, `"7d"`), and lists written `a,b`.

use std::time::Duration;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::ConfigError;

/// A duration longer than zero, or an error at `key` showing `example` of what is expected.
pub fn positive(key: impl Into<String>, raw: &str, example: &str) -> Result<Duration, ConfigError> {
    parse(raw).filter(|d| !d.is_zero()).ok_or_else(|| {
        ConfigError::invalid(
            key,
            format!("expected a duration longer than zero, such as {example}"),
        )
    })
}

pub fn parse(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let n: u64 = number.parse().ok()?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Files give numbers or strings; the environment always gives strings.
pub fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d) {
        Ok(Raw::Number(n)) => Ok(n.to_string()),
        Ok(Raw::Text(t)) => Ok(t),
        Err(_) => Err(D::Error::custom(
            "expected a whole number of seconds or a duration such as \"30s\", \"15m\", \"1h\", \"7d\"",
        )),
    }
}

/// Lists come as TOML arrays from files and as `a,b` strings from the environment.
pub fn list_or_comma_separated<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Text(String),
    }
    let raw = Raw::deserialize(d)
        .map_err(|_| D::Error::custom("expected a list of strings, or one string \"a,b\""))?;
    Ok(match raw {
        Raw::List(list) => list,
        Raw::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse("60"), Some(Duration::from_secs(60)));
        assert_eq!(parse("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("soon"), None);
        assert_eq!(parse("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("5w"), None);
        assert_eq!(parse(""), None);
    }
}
