//! Error messages cleaned at the source: Alibaba's answer to a failed call may echo what the
//! request carried (on `SignatureDoesNotMatch`, the server's whole V1 string-to-sign, which
//! holds every parameter, a new key's secret among them; for V3 a gateway may quote its
//! canonical request, which holds every query parameter and signed header, an STS token among
//! them). Only the cleaned message ever leaves the
//! transport, so `last_error`, the audit log and the logs cannot hold a secret.

use super::sign::percent_encode;

/// What replaces a removed string-to-sign.
const STRING_TO_SIGN_REMOVED: &str = "[server string-to-sign removed]";
/// What replaces a parameter value.
const VALUE_REMOVED: &str = "[redacted]";
/// Protocol parameters whose values are fixed words, not request data.
const PROTOCOL: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "SignatureMethod",
    "SignatureVersion",
];
/// Shorter values (`text`, `true`) carry no secret, and removing them would garble the words
/// of the message.
const MIN_VALUE_LEN: usize = 6;

/// How Alibaba's gateways introduce the string-to-sign or the V3 canonical request, in lower
/// case.
const MARKERS: &[&str] = &[
    "string to sign",
    "stringtosign",
    "string-to-sign",
    "canonical request",
    "canonicalrequest",
    "canonical-request",
];

/// `message` without any string-to-sign and without any of `params`' values, raw or
/// percent-encoded once or twice (as a string-to-sign holds them).
pub fn message(message: &str, params: &[(String, String)]) -> String {
    let lower = message.to_ascii_lowercase();
    let cut = MARKERS.iter().filter_map(|m| lower.find(m)).min();
    let mut cleaned = match cut {
        Some(at) => format!("{}{STRING_TO_SIGN_REMOVED}", &message[..at]),
        None => message.to_owned(),
    };
    let mut values: Vec<String> = params
        .iter()
        .filter(|(name, value)| !PROTOCOL.contains(&name.as_str()) && value.len() >= MIN_VALUE_LEN)
        .flat_map(|(_, value)| {
            let once = percent_encode(value);
            let twice = percent_encode(&once);
            [value.clone(), once, twice]
        })
        .collect();
    // Longest first, so a value is never half-replaced through a shorter one inside it.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        cleaned = cleaned.replace(&value, VALUE_REMOVED);
    }
    cleaned
}

/// The server's string-to-sign in a raw `SignatureDoesNotMatch` message, to compare with ours.
pub fn server_string_to_sign(message: &str) -> Option<&str> {
    message
        .split_once("string to sign is:")
        .map(|(_, s)| s.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_string_to_sign_is_cut_off_whatever_it_holds() {
        let raw = "Specified signature is not matched with our calculation. server string to sign \
                   is:POST&%2F&AccessKeyId%3Dx%26SecretData%3Dhunter2";
        let cleaned = message(raw, &[]);
        assert_eq!(
            cleaned,
            "Specified signature is not matched with our calculation. server [server string-to-sign removed]"
        );
        assert!(!cleaned.contains("hunter2"));
    }

    #[test]
    fn a_v3_canonical_request_is_cut_off_and_a_token_removed() {
        let token = "CAISsecurityTokenValue";
        let raw = format!(
            "Specified signature does not match. CanonicalRequest:POST\n/\n\n\
             x-acs-security-token:{token}\n"
        );
        let cleaned = message(&raw, &params(&[("x-acs-security-token", token)]));
        assert_eq!(
            cleaned,
            "Specified signature does not match. [server string-to-sign removed]"
        );
        let echoed = format!("token {token} refused");
        assert_eq!(
            message(&echoed, &params(&[("x-acs-security-token", token)])),
            "token [redacted] refused"
        );
    }

    #[test]
    fn parameter_values_are_removed_raw_and_encoded() {
        let secret = r#"{"AccessKeyId":"LTAI5tNew","AccessKeySecret":"s3cr3t/+="}"#;
        let p = params(&[
            ("Action", "PutSecretValue"),
            ("SecretData", secret),
            ("SecretDataType", "text"),
        ]);
        let once = percent_encode(secret);
        let twice = percent_encode(&once);
        for raw in [
            format!("bad value {secret}"),
            format!("bad value {once}"),
            format!("bad value {twice}"),
        ] {
            assert_eq!(message(&raw, &p), "bad value [redacted]");
        }
        assert_eq!(
            message("PutSecretValue: text is fine", &p),
            "PutSecretValue: text is fine"
        );
    }

    #[test]
    fn the_server_string_to_sign_is_found_for_the_comparison() {
        let raw = "Specified signature is not matched. server string to sign is:POST&%2F&A";
        assert_eq!(server_string_to_sign(raw), Some("POST&%2F&A"));
        assert_eq!(server_string_to_sign("Throttled"), None);
    }
}
