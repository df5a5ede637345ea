//! The gateway checks, in the order and with the codes the real gateway uses.

use super::support::*;

#[test]
fn a_correctly_signed_request_is_answered_with_a_request_id() {
    let h = Harness::new();
    let (status, body) = h.call(RAM, "GetUser", &[("UserName", "alice")]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["User"]["UserName"], "alice");
    let rid = body["RequestId"].as_str().unwrap();
    assert_eq!(rid.len(), 36);
    assert_eq!(rid, rid.to_uppercase());
}

#[test]
fn a_get_with_every_parameter_in_the_query_is_signed_with_get() {
    let h = Harness::new();
    let params = h.signed("GET", AKGUARD, RAM, "ListUsers", &[]);
    assert_eq!(h.send("GET", &params).0, 200);
    let params = h.signed("GET", AKGUARD, RAM, "ListUsers", &[]);
    assert_eq!(
        code(&h.send("POST", &params)),
        (400, "SignatureDoesNotMatch".into())
    );
}

#[test]
fn a_missing_common_parameter_is_named_in_the_message() {
    let h = Harness::new();
    let mut params = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    params.remove("SignatureNonce");
    let answer = h.send("POST", &params);
    assert_eq!(code(&answer), (400, "MissingParameter".into()));
    assert_eq!(
        answer.1["Message"],
        "The input parameter \"SignatureNonce\" that is mandatory for processing this request is not supplied."
    );
}

#[test]
fn the_error_body_has_the_gateway_shape() {
    let h = Harness::new();
    let (status, body) = h.call(RAM, "GetUser", &[("UserName", "nobody")]);
    assert_eq!(status, 404);
    assert_eq!(body["Code"], "EntityNotExist.User");
    assert_eq!(body["HostId"], "ram.aliyuncs.com");
    let rid = body["RequestId"].as_str().unwrap();
    assert_eq!(
        body["Recommend"],
        format!(
            "https://api.aliyun.com/troubleshoot?q=EntityNotExist.User&product=Ram&requestId={rid}"
        )
    );
}

#[test]
fn a_malformed_timestamp_is_refused() {
    let h = Harness::new();
    let mut params = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    params.insert("Timestamp".into(), "2026-11-28 12:00:00".into());
    let signature = sign("POST", &params, AKGUARD_SECRET);
    params.insert("Signature".into(), signature);
    assert_eq!(
        code(&h.send("POST", &params)),
        (400, "InvalidTimeStamp.Format".into())
    );
}

#[test]
fn a_timestamp_more_than_15_minutes_off_is_expired() {
    let h = Harness::new();
    let params = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    h.advance(14 * 60);
    assert_eq!(h.send("POST", &params).0, 200);
    let params = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    h.advance(16 * 60);
    let answer = h.send("POST", &params);
    assert_eq!(code(&answer), (400, "InvalidTimeStamp.Expired".into()));
    assert_eq!(
        answer.1["Message"],
        "Specified time stamp or date value is expired."
    );
}

#[test]
fn a_replayed_nonce_is_refused_until_15_minutes_pass() {
    let h = Harness::new();
    let params = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    assert_eq!(h.send("POST", &params).0, 200);
    assert_eq!(
        code(&h.send("POST", &params)),
        (400, "SignatureNonceUsed".into())
    );
    // The same nonce, freshly timestamped, is accepted once the first use is 15 minutes old.
    h.advance(15 * 60 + 1);
    let mut again = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    again.insert("SignatureNonce".into(), params["SignatureNonce"].clone());
    let signature = sign("POST", &again, AKGUARD_SECRET);
    again.insert("Signature".into(), signature);
    assert_eq!(h.send("POST", &again).0, 200);
}

#[test]
fn a_bad_signature_shows_the_server_string_to_sign_and_does_not_spend_the_nonce() {
    let h = Harness::new();
    let good = h.signed("POST", AKGUARD, RAM, "ListUsers", &[]);
    let mut bad = good.clone();
    bad.insert("Signature".into(), sign("POST", &good, "wrong-secret"));
    let answer = h.send("POST", &bad);
    assert_eq!(code(&answer), (400, "SignatureDoesNotMatch".into()));
    let message = answer.1["Message"].as_str().unwrap();
    assert!(message.starts_with(
        "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3D"
    ));
    assert_eq!(h.send("POST", &good).0, 200);
}

#[test]
fn an_unknown_key_is_404_and_an_inactive_one_400() {
    let h = Harness::new();
    let stranger = Signer {
        key: "LTAI5tNOBODYNOBODYNOBODY",
        secret: "x",
        token: None,
    };
    let answer = h.call_as(stranger, RAM, "ListUsers", &[]);
    assert_eq!(code(&answer), (404, "InvalidAccessKeyId.NotFound".into()));
    assert_eq!(answer.1["Message"], "Specified access key is not found.");
    let spare = Signer {
        key: SPARE_KEY,
        secret: "spareSecretSpareSecretSpare001",
        token: None,
    };
    let answer = h.call_as(spare, TRAIL, "LookupEvents", &[]);
    assert_eq!(code(&answer), (400, "InvalidAccessKeyId.Inactive".into()));
    assert_eq!(answer.1["Message"], "Specified access key is disabled.");
}

#[test]
fn unknown_versions_and_actions_are_refused() {
    let h = Harness::new();
    assert_eq!(
        code(&h.call("2099-01-01", "ListUsers", &[])),
        (400, "InvalidVersion".into())
    );
    assert_eq!(
        code(&h.call(RAM, "LaunchRocket", &[])),
        (404, "InvalidAction.NotFound".into())
    );
}

#[test]
fn a_verified_call_marks_the_key_used() {
    let h = Harness::new();
    h.advance(60);
    h.call(BSS, "QueryAccountBalance", &[]);
    let state = h.state();
    let key = &state["users"][0]["access_keys"][0];
    assert_eq!(key["last_used"], "2026-11-28T12:01:00Z");
    assert_eq!(key["last_used_service"], "BssOpenApi");
}

#[test]
fn sts_credentials_sign_until_they_expire() {
    let h = Harness::new();
    let arn = "acs:ram::1234567890123456:role/short-lived";
    let (status, body) = h.call(
        STS,
        "AssumeRole",
        &[
            ("RoleArn", arn),
            ("RoleSessionName", "akguard"),
            ("DurationSeconds", "3600"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let creds = &body["Credentials"];
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("STS."));
    assert_eq!(creds["Expiration"], "2026-11-28T12:00:02Z");
    assert_eq!(
        body["AssumedRoleUser"]["Arn"],
        "acs:ram::1234567890123456:role/short-lived/akguard"
    );
    let (key, secret, token) = (
        creds["AccessKeyId"].as_str().unwrap(),
        creds["AccessKeySecret"].as_str().unwrap(),
        creds["SecurityToken"].as_str().unwrap(),
    );
    let temp = Signer {
        key,
        secret,
        token: Some(token),
    };
    let (status, identity) = h.call_as(temp, STS, "GetCallerIdentity", &[]);
    assert_eq!(status, 200, "{identity}");
    assert_eq!(identity["IdentityType"], "AssumedRoleUser");
    let tokenless = Signer {
        token: None,
        ..temp
    };
    assert_eq!(
        code(&h.call_as(tokenless, RAM, "ListUsers", &[])),
        (400, "MissingParameter".into())
    );
    let wrong = Signer {
        token: Some("CAISwrong"),
        ..temp
    };
    assert_eq!(
        code(&h.call_as(wrong, RAM, "ListUsers", &[])),
        (400, "InvalidSecurityToken.MismatchWithAccessKey".into())
    );
    h.advance(2);
    assert_eq!(
        code(&h.call_as(temp, RAM, "ListUsers", &[])),
        (400, "InvalidSecurityToken.Expired".into())
    );
}

#[test]
fn an_unknown_role_cannot_be_assumed() {
    let h = Harness::new();
    let arn = "acs:ram::1234567890123456:role/nope";
    assert_eq!(
        code(&h.call(
            STS,
            "AssumeRole",
            &[("RoleArn", arn), ("RoleSessionName", "s")]
        )),
        (404, "EntityNotExist.Role".into())
    );
}

#[test]
fn the_call_log_keeps_rejected_calls_and_hides_credentials() {
    let h = Harness::new();
    let stranger = Signer {
        key: "LTAI5tNOBODYNOBODYNOBODY",
        secret: "x",
        token: None,
    };
    h.call_as(stranger, RAM, "ListUsers", &[]);
    h.call(
        KMS,
        "PutSecretValue",
        &[
            ("SecretName", "prod/ci-deployer/ak"),
            ("VersionId", "v2"),
            ("SecretData", "s3cret"),
        ],
    );
    let calls = &h.shared.lock().calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].status, calls[0].code.as_deref()),
        (404, Some("InvalidAccessKeyId.NotFound"))
    );
    assert_eq!(
        (calls[1].seq, calls[1].product, calls[1].status),
        (2, Some("kms"), 200)
    );
    assert!(!calls[1].params.contains_key("Signature"));
    assert!(!calls[1].params.contains_key("SecretData"));
    assert_eq!(calls[1].params["VersionId"], "v2");
}
