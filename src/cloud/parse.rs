//! Defensive readers for Alibaba's JSON: list wrappers that may be missing or hold a single
//! object, field names spelled two ways, amounts as exact decimals.

use serde_json::Value;

use crate::domain::Amount;

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

/// An amount field given as a number or a string.
pub fn amount(value: &Value, name: &str) -> Option<Amount> {
    match field(value, name)? {
        Value::Number(n) => Amount::parse(&n.to_string()),
        Value::String(s) => Amount::parse(s),
        _ => None,
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
    fn amounts_are_read_from_numbers_and_strings() {
        let v = json!({"PretaxAmount": 1234.56, "AvailableAmount": "-7.5"});
        assert_eq!(
            amount(&v, "PretaxAmount").unwrap().ten_thousandths(),
            12_345_600
        );
        assert_eq!(
            amount(&v, "AvailableAmount").unwrap().to_string(),
            "-7.5000"
        );
        assert_eq!(amount(&v, "Missing"), None);
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
}
