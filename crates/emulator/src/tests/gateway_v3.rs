//! The gateway checks for V3-signed requests (`ACS3-HMAC-SHA256`). Requests are signed with
//! the client's V3 signer, so these tests also show the two independent implementations agree.

use chrono::{DateTime, Utc};

use super::super::params::Params;
use super::super::server;
use super::super::signature_v3::V3Request;
use super::super::when::format_time;
use super::support::*;
use akguard::cloud::sign_v3::{self, V3Request as ClientRequest};

const HOST: &str = "127.0.0.1:9100";
const FORM: &str = "application/x-www-form-urlencoded";

/// A V3 request as it reaches the server: parameters in a form body.
fn signed_v3(
    who: Signer,
    version: &str,
    action: &str,
    body: &str,
    at: DateTime<Utc>,
    nonce: &str,
) -> V3Request {
    arrive(&v3_headers(who, version, action, body, at, nonce), body)
}

/// What the server sees: these headers (plus one the client does not sign) and this body.
fn arrive(headers: &[(&'static str, String)], body: &str) -> V3Request {
    let all: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (*n, v.as_str()))
        .chain([("accept", "application/json")])
        .collect();
    let authorization = &headers.last().unwrap().1;
    V3Request::from_parts(authorization, &all, "", body.as_bytes())
}

/// The headers the client's V3 signer produces, `authorization` last.
fn v3_headers(
    who: Signer,
    version: &str,
    action: &str,
    body: &str,
    at: DateTime<Utc>,
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let date = format_time(at);
    let signed = sign_v3::sign(
        who.key,
        who.secret,
        &ClientRequest {
            method: "POST",
            host: HOST,
            action,
            version,
            query: &[],
            body: body.as_bytes(),
            content_type: Some(FORM),
            date: &date,
            nonce,
            security_token: who.token,
        },
    );
    signed.headers
}

fn send_v3(h: &Harness, body: &str, v3: &V3Request) -> (u16, serde_json::Value) {
    let params = Params::merge(None, body.as_bytes());
    let answer = server::process(
        &h.shared,
        h.shared.clock.now(),
        "POST",
        &params,
        Some(HOST),
        Some(v3),
        &Default::default(),
    );
    (answer.status.as_u16(), answer.body)
}

#[test]
fn a_v3_request_is_answered_and_logged_like_a_v1_one() {
    let h = Harness::new();
    let body = "UserName=alice";
    let v3 = signed_v3(AKGUARD, RAM, "GetUser", body, t0(), "n3-1");
    let (status, answer) = send_v3(&h, body, &v3);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["User"]["UserName"], "alice");
    let calls = &h.shared.lock().calls;
    let call = calls.last().unwrap();
    assert_eq!(call.action.as_deref(), Some("GetUser"));
    assert_eq!(call.access_key_id.as_deref(), Some(AKGUARD_KEY));
    assert_eq!(call.nonce.as_deref(), Some("n3-1"));
    assert_eq!(call.signature, "v3");
}

#[test]
fn a_tampered_v3_body_or_wrong_secret_is_signature_does_not_match() {
    let h = Harness::new();
    let headers = v3_headers(AKGUARD, RAM, "GetUser", "UserName=alice", t0(), "n3-2");
    let tampered = "UserName=bob";
    let forged = arrive(&headers, tampered);
    assert_eq!(
        code(&send_v3(&h, tampered, &forged)),
        (400, "SignatureDoesNotMatch".into())
    );
    let wrong = Signer {
        secret: "notTheSecret",
        ..AKGUARD
    };
    let v3 = signed_v3(wrong, RAM, "ListUsers", "", t0(), "n3-3");
    let answer = send_v3(&h, "", &v3);
    assert_eq!(code(&answer), (400, "SignatureDoesNotMatch".into()));
    let message = answer.1["Message"].as_str().unwrap();
    assert!(
        message.contains("server string to sign is:ACS3-HMAC-SHA256\n"),
        "{message}"
    );
}

#[test]
fn a_reused_v3_nonce_an_old_date_and_an_unknown_key_get_the_gateway_codes() {
    let h = Harness::new();
    let first = signed_v3(AKGUARD, RAM, "ListUsers", "", t0(), "n3-same");
    assert_eq!(send_v3(&h, "", &first).0, 200);
    let again = signed_v3(AKGUARD, RAM, "ListUsers", "", t0(), "n3-same");
    assert_eq!(
        code(&send_v3(&h, "", &again)),
        (400, "SignatureNonceUsed".into())
    );
    let old = signed_v3(
        AKGUARD,
        RAM,
        "ListUsers",
        "",
        t0() - chrono::TimeDelta::minutes(16),
        "n3-old",
    );
    assert_eq!(
        code(&send_v3(&h, "", &old)),
        (400, "InvalidTimeStamp.Expired".into())
    );
    let unknown = Signer {
        key: "LTAI5tUNKNOWNKEY000000",
        ..AKGUARD
    };
    let v3 = signed_v3(unknown, RAM, "ListUsers", "", t0(), "n3-unknown");
    assert_eq!(
        code(&send_v3(&h, "", &v3)),
        (404, "InvalidAccessKeyId.NotFound".into())
    );
}

#[test]
fn sts_credentials_sign_v3_with_their_token_header() {
    let h = Harness::new();
    let (status, body) = h.call(
        STS,
        "AssumeRole",
        &[
            (
                "RoleArn",
                "acs:ram::1234567890123456:role/akguard-responder",
            ),
            ("RoleSessionName", "akguard"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let creds = &body["Credentials"];
    let temp = Signer {
        key: creds["AccessKeyId"].as_str().unwrap(),
        secret: creds["AccessKeySecret"].as_str().unwrap(),
        token: Some(creds["SecurityToken"].as_str().unwrap()),
    };
    let v3 = signed_v3(temp, STS, "GetCallerIdentity", "", t0(), "n3-sts");
    let (status, identity) = send_v3(&h, "", &v3);
    assert_eq!(status, 200, "{identity}");
    assert_eq!(identity["IdentityType"], "AssumedRoleUser");
    let wrong = Signer {
        token: Some("CAISwrong"),
        ..temp
    };
    let v3 = signed_v3(wrong, STS, "GetCallerIdentity", "", t0(), "n3-sts-wrong");
    assert_eq!(
        code(&send_v3(&h, "", &v3)),
        (400, "InvalidSecurityToken.MismatchWithAccessKey".into())
    );
}
