//! Defensive readers for Alibaba's JSON: list wrappers that may be missing or hold a single
//! object, field names spelled two ways, amounts as exact decimals.

use std::fmt;

use serde_json::Value;

/// The items of a wrapped list such as `"Users":{"User":[...]}`, tolerating a missing
/// wrapper, an empty one, a bare array, or a single object where a list was expected.
pub fn items<'a>(value: &'a Value, outer: &str, inner: &str) -> Vec<&'a Value> {
    let Some(wrapper) = field(value, outer) else {
        return Vec::new();
    };
    let list = match wrapper {
        Value::Object(_) => field(wrapper, inner).unwrap_or(&Value::Null),
        other => other,
    };
    match list {
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![list],
        _ => Vec::new(),
    }
}

/// A field by any of `names`, case-insensitively (`AccesskeyId` and `AccessKeyId` alike).
pub fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// The first of `names` present as a non-empty string or a number, as text.
pub fn text(value: &Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|name| match field(value, name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// A boolean sent as `true`, `"true"` or `"True"`.
pub fn flag(value: &Value, name: &str) -> bool {
    match field(value, name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// An integer sent as a number or a numeric string.
pub fn integer(value: &Value, name: &str) -> Option<i64> {
    match field(value, name)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A money amount, exact to 1/10000 of the currency unit. BSS sends amounts both as JSON
/// numbers and as strings; floats must not decide whether a bill changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Amount(i64);

const SCALE: i64 = 10_000;

impl Amount {
    pub fn from_ten_thousandths(units: i64) -> Self {
        Self(units)
    }

    pub fn ten_thousandths(self) -> i64 {
        self.0
    }

    /// Parses `-12.34`, `"10000.00"` or `1e3`-free decimal text; extra digits are truncated.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw.strip_prefix('+').unwrap_or(raw)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut frac_units = 0i64;
        for (i, digit) in fraction.bytes().take(4).enumerate() {
            frac_units += i64::from(digit - b'0') * 10i64.pow(3 - i as u32);
        }
        let units = whole.checked_mul(SCALE)?.checked_add(frac_units)?;
        Some(Self(if negative { -units } else { units }))
    }

    /// Reads an amount field given as a number or a string.
    pub fn from_field(value: &Value, name: &str) -> Option<Self> {
        match field(value, name)? {
            Value::Number(n) => Self::parse(&n.to_string()),
            Value::String(s) => Self::parse(s),
            _ => None,
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:04}", abs / SCALE as u64, abs % SCALE as u64)
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_wrappers_are_read_whatever_their_shape() {
        let full = json!({"Users": {"User": [{"UserName": "a"}, {"UserName": "b"}]}});
        assert_eq!(items(&full, "Users", "User").len(), 2);
        let single = json!({"Users": {"User": {"UserName": "a"}}});
        assert_eq!(items(&single, "Users", "User").len(), 1);
        assert!(items(&json!({"Users": {"User": []}}), "Users", "User").is_empty());
        assert!(items(&json!({"Users": {}}), "Users", "User").is_empty());
        assert!(items(&json!({}), "Users", "User").is_empty());
        let bare = json!({"Events": [{"eventId": "1"}]});
        assert_eq!(items(&bare, "Events", "Event").len(), 1);
    }

    #[test]
    fn fields_are_found_under_either_spelling() {
        let v = json!({"AccesskeyId": "LTAI5tX", "Id": 389357, "Flag": "True"});
        assert_eq!(text(&v, &["AccessKeyId"]).as_deref(), Some("LTAI5tX"));
        assert_eq!(text(&v, &["Id"]).as_deref(), Some("389357"));
        assert_eq!(integer(&v, "id"), Some(389357));
        assert!(flag(&v, "Flag"));
        assert!(!flag(&v, "Missing"));
    }

    #[test]
    fn amounts_are_exact() {
        assert_eq!(Amount::parse("10000.00").unwrap().to_string(), "10000.0000");
        assert_eq!(
            Amount::parse("-12.345").unwrap().ten_thousandths(),
            -123_450
        );
        assert_eq!(Amount::parse("0.1").unwrap().ten_thousandths(), 1000);
        assert_eq!(Amount::parse(".5").unwrap().ten_thousandths(), 5000);
        assert!(Amount::parse("abc").is_none() && Amount::parse("").is_none());
        let v = json!({"PretaxAmount": 1234.56, "AvailableAmount": "-7.5"});
        assert_eq!(
            Amount::from_field(&v, "PretaxAmount")
                .unwrap()
                .ten_thousandths(),
            12_345_600
        );
        assert_eq!(
            Amount::from_field(&v, "AvailableAmount")
                .unwrap()
                .to_string(),
            "-7.5000"
        );
        assert!(
            Amount::parse("0.1").unwrap() + Amount::parse("0.2").unwrap()
                == Amount::parse("0.3").unwrap()
        );
    }
}
