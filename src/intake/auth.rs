//! Source authentication, checked on the raw bytes before anything is parsed.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::SourceAuth;

pub const TIMESTAMP_HEADER: &str = "x-akguard-timestamp";
pub const SIGNATURE_HEADER: &str = "x-akguard-signature";

/// Why a delivery was not accepted as authentic. Never carries what was presented.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("missing {0} header")]
    MissingHeader(String),
    #[error("X-Akguard-Timestamp must be Unix seconds")]
    BadTimestamp,
    #[error("X-Akguard-Timestamp is more than {0} s away from now")]
    OutsideWindow(i64),
    #[error("signature does not match")]
    BadSignature,
    #[error("credentials do not match")]
    BadCredentials,
}

pub fn verify(
    auth: &SourceAuth,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<(), AuthFailure> {
    match auth {
        SourceAuth::Hmac(secret) => verify_hmac(secret, headers, body, now, window_secs),
        SourceAuth::ApiKey { header, value } => {
            let presented = header_str(headers, header)?;
            if secret_eq(presented.as_bytes(), value) {
                Ok(())
            } else {
                Err(AuthFailure::BadCredentials)
            }
        }
        SourceAuth::Basic { username, password } => {
            let presented = header_str(headers, AUTHORIZATION.as_str())?;
            let encoded = presented
                .strip_prefix("Basic ")
                .ok_or(AuthFailure::BadCredentials)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| AuthFailure::BadCredentials)?;
            let split = decoded
                .iter()
                .position(|&b| b == b':')
                .ok_or(AuthFailure::BadCredentials)?;
            let (user, pass) = (&decoded[..split], &decoded[split + 1..]);
            // Both halves are always compared, so timing does not tell which one was wrong.
            let user_ok = sha256(user).ct_eq(&sha256(username.as_bytes()));
            let pass_ok = sha256(pass).ct_eq(&sha256(password.expose_secret().as_bytes()));
            if bool::from(user_ok & pass_ok) {
                Ok(())
            } else {
                Err(AuthFailure::BadCredentials)
            }
        }
        SourceAuth::None => Ok(()),
    }
}

fn verify_hmac(
    secret: &SecretString,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
    window_secs: i64,
) -> Result<(), AuthFailure> {
    let timestamp = header_str(headers, TIMESTAMP_HEADER)?;
    let signature = header_str(headers, SIGNATURE_HEADER)?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| AuthFailure::BadTimestamp)?;
    // `abs_diff` cannot overflow: a subtraction did, for timestamps near i64::MIN or MAX.
    if now.timestamp().abs_diff(sent) > window_secs.unsigned_abs() {
        return Err(AuthFailure::OutsideWindow(window_secs));
    }
    let presented = signature
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_sig| hex::decode(hex_sig).ok())
        .ok_or(AuthFailure::BadSignature)?;
    webhook_mac(secret.expose_secret(), timestamp.trim(), body)
        .verify_slice(&presented)
        .map_err(|_| AuthFailure::BadSignature)
}

/// The `X-Akguard-Signature` value a sender puts on `body` sent at `timestamp`.
pub fn sign_webhook(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mac = webhook_mac(secret, timestamp, body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// HMAC-SHA256 over `timestamp "." body`: the one definition of the scheme.
fn webhook_mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Hashing first makes the comparison independent of the presented value's length.
fn secret_eq(presented: &[u8], expected: &SecretString) -> bool {
    bool::from(sha256(presented).ct_eq(&sha256(expected.expose_secret().as_bytes())))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AuthFailure> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| AuthFailure::MissingHeader(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body);
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, ts.to_string().parse().unwrap());
        h.insert(
            SIGNATURE_HEADER,
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
                .parse()
                .unwrap(),
        );
        h
    }

    #[test]
    fn hmac_accepts_a_fresh_signature_and_rejects_the_rest() {
        let auth = SourceAuth::Hmac("0123456789abcdef-secret".to_owned().into());
        let now = Utc::now();
        let body = br#"{"access_key_id":"LTAI5tExample01"}"#;
        let ok = signed("0123456789abcdef-secret", now.timestamp(), body);
        assert!(verify(&auth, &ok, body, now, 300).is_ok());
        assert!(matches!(
            verify(&auth, &ok, b"{}", now, 300),
            Err(AuthFailure::BadSignature)
        ));
        let stale = signed("0123456789abcdef-secret", now.timestamp() - 301, body);
        assert!(matches!(
            verify(&auth, &stale, body, now, 300),
            Err(AuthFailure::OutsideWindow(300))
        ));
        let wrong = signed("another-secret-entirely", now.timestamp(), body);
        assert!(matches!(
            verify(&auth, &wrong, body, now, 300),
            Err(AuthFailure::BadSignature)
        ));
        assert!(matches!(
            verify(&auth, &HeaderMap::new(), body, now, 300),
            Err(AuthFailure::MissingHeader(_))
        ));
    }

    #[test]
    fn extreme_timestamps_are_outside_the_window_not_a_panic_or_a_pass() {
        let auth = SourceAuth::Hmac("0123456789abcdef-secret".to_owned().into());
        let now = Utc::now();
        let body = br#"{"access_key_id":"LTAI5tExample01"}"#;
        // `now - sent` wraps to i64::MIN here, whose `abs()` is negative: inside any window.
        let wraps = now.timestamp().wrapping_add(i64::MIN);
        for sent in [i64::MIN, i64::MIN + 1, i64::MAX, -1, wraps] {
            let headers = signed("0123456789abcdef-secret", sent, body);
            assert!(
                matches!(
                    verify(&auth, &headers, body, now, 300),
                    Err(AuthFailure::OutsideWindow(300))
                ),
                "timestamp {sent}"
            );
        }
    }

    #[test]
    fn basic_auth_needs_both_halves() {
        let auth = SourceAuth::Basic {
            username: "eventbridge".into(),
            password: "correct-horse-battery".to_owned().into(),
        };
        let header = |user_pass: &str| {
            let mut h = HeaderMap::new();
            let enc = base64::engine::general_purpose::STANDARD.encode(user_pass);
            h.insert(AUTHORIZATION, format!("Basic {enc}").parse().unwrap());
            h
        };
        let now = Utc::now();
        assert!(
            verify(
                &auth,
                &header("eventbridge:correct-horse-battery"),
                b"",
                now,
                300
            )
            .is_ok()
        );
        assert!(verify(&auth, &header("eventbridge:wrong"), b"", now, 300).is_err());
        assert!(verify(&auth, &header("other:correct-horse-battery"), b"", now, 300).is_err());
        assert!(verify(&auth, &header("no-colon"), b"", now, 300).is_err());
    }
}
