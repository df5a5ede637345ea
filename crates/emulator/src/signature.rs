//! Verification of the RPC signature (`SignatureVersion=1.0`, HMAC-SHA1), written from the
//! documented algorithm and deliberately independent of the client's signer, so that a bug in
//! one cannot hide in the other.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Percent-encodes UTF-8 bytes, leaving only `A-Za-z0-9-_.~` literal (space is `%20`).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// `METHOD&%2F&` + the percent-encoded canonical query of every parameter but `Signature`,
/// sorted by name in byte order (which is how `BTreeMap<String, _>` orders).
pub(crate) fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    let canonical = params
        .iter()
        .filter(|(name, _)| name.as_str() != "Signature")
        .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{method}&%2F&{}", percent_encode(&canonical))
}

/// Whether `presented` (base64) is HMAC-SHA1 of `string_to_sign` under `secret + "&"`.
/// The comparison is constant time (`verify_slice`).
pub(crate) fn verify(secret: &str, string_to_sign: &str, presented: &str) -> bool {
    let Ok(presented) = STANDARD.decode(presented) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()) else {
        return false;
    };
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&presented).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Reference Appendix B, example B: RAM CreateUser, GET, secret `testsecret`.
    fn create_user() -> BTreeMap<String, String> {
        params(&[
            ("UserName", "test"),
            ("SignatureVersion", "1.0"),
            ("Format", "JSON"),
            ("Timestamp", "2015-08-18T03:15:45Z"),
            ("AccessKeyId", "testid"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("Version", "2015-05-01"),
            ("Action", "CreateUser"),
            ("SignatureNonce", "6a6e0ca6-4557-11e5-86a2-b8e8563dc8d2"),
        ])
    }

    #[test]
    fn the_create_user_vector_builds_the_documented_string_to_sign() {
        assert_eq!(
            string_to_sign("GET", &create_user()),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DCreateUser%26Format%3DJSON%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D6a6e0ca6-4557-11e5-86a2-b8e8563dc8d2%26SignatureVersion%3D1.0%26Timestamp%3D2015-08-18T03%253A15%253A45Z%26UserName%3Dtest%26Version%3D2015-05-01"
        );
    }

    #[test]
    fn the_create_user_vector_verifies_and_a_changed_signature_does_not() {
        let mut p = create_user();
        p.insert("Signature".into(), "kRA2cnpJVacIhDMzXnoNZG9tDCI=".into());
        let sts = string_to_sign("GET", &p);
        assert!(verify("testsecret", &sts, "kRA2cnpJVacIhDMzXnoNZG9tDCI="));
        assert!(!verify("testsecret", &sts, "kRA2cnpJVacIhDMzXnoNZG9tDCJ="));
        assert!(!verify("othersecret", &sts, "kRA2cnpJVacIhDMzXnoNZG9tDCI="));
        assert!(!verify(
            "testsecret",
            &string_to_sign("POST", &p),
            "kRA2cnpJVacIhDMzXnoNZG9tDCI="
        ));
        assert!(!verify("testsecret", &sts, "not base64!"));
    }

    #[test]
    fn the_describe_regions_vectors_verify_for_get_and_post() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        assert!(verify(
            "testsecret",
            &string_to_sign("GET", &p),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        ));
        assert!(verify(
            "testsecret",
            &string_to_sign("POST", &p),
            "MxbnVAM4w6sft9xjVpe/GCKueuk="
        ));
    }

    #[test]
    fn the_send_sms_vector_covers_non_ascii_and_json_values() {
        let p = params(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", "{\"customer\":\"test\"}"),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        assert!(verify(
            "testSecret",
            &string_to_sign("GET", &p),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        ));
    }

    #[test]
    fn encoding_follows_the_documented_rules() {
        assert_eq!(percent_encode("a b*c~d+e/f=g"), "a%20b%2Ac~d%2Be%2Ff%3Dg");
        assert_eq!(percent_encode("é"), "%C3%A9");
    }
}
