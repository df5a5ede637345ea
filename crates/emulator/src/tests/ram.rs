//! RAM semantics: key limits and lifecycle, policies and attachment, pagination, logon
//! profiles.

use super::support::*;

#[test]
fn a_user_holds_at_most_two_keys() {
    let h = Harness::new();
    let answer = h.call(RAM, "CreateAccessKey", &[("UserName", "ci-deployer")]);
    assert_eq!(code(&answer), (409, "LimitExceeded.User.AccessKey".into()));
    let (status, body) = h.call(RAM, "CreateAccessKey", &[("UserName", "alice")]);
    assert_eq!(status, 200);
    let key = &body["AccessKey"];
    assert_eq!(key["Status"], "Active");
    assert_eq!(key["CreateDate"], "2026-11-28T12:00:00Z");
    assert_eq!(key["AccessKeyId"].as_str().unwrap().len(), 24);
    // The new pair signs requests at once.
    let new = Signer {
        key: key["AccessKeyId"].as_str().unwrap(),
        secret: key["AccessKeySecret"].as_str().unwrap(),
        token: None,
    };
    assert_eq!(h.call_as(new, BSS, "QueryAccountBalance", &[]).0, 200);
    let (_, listed) = h.call(RAM, "ListAccessKeys", &[("UserName", "alice")]);
    let keys = listed["AccessKeys"]["AccessKey"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].get("AccessKeySecret").is_none());
}

#[test]
fn a_disabled_then_deleted_key_stops_authenticating() {
    let h = Harness::new();
    let target = [("UserName", "ci-deployer"), ("UserAccessKeyId", LEAKED_KEY)];
    let disable = [target[0], target[1], ("Status", "Inactive")];
    assert_eq!(h.call(RAM, "UpdateAccessKey", &disable).0, 200);
    assert_eq!(
        code(&h.call_as(LEAKED, TRAIL, "LookupEvents", &[])),
        (400, "InvalidAccessKeyId.Inactive".into())
    );
    assert_eq!(h.call(RAM, "DeleteAccessKey", &target).0, 200);
    assert_eq!(
        code(&h.call_as(LEAKED, TRAIL, "LookupEvents", &[])),
        (404, "InvalidAccessKeyId.NotFound".into())
    );
    assert_eq!(
        code(&h.call(RAM, "DeleteAccessKey", &target)),
        (404, "EntityNotExist.User.AccessKey".into())
    );
    let bad_status = [
        target[0],
        ("UserAccessKeyId", SPARE_KEY),
        ("Status", "Paused"),
    ];
    assert_eq!(
        code(&h.call(RAM, "UpdateAccessKey", &bad_status)),
        (400, "InvalidParameter".into())
    );
}

#[test]
fn without_a_user_name_key_actions_apply_to_the_caller() {
    let h = Harness::new();
    let (_, body) = h.call(RAM, "ListAccessKeys", &[]);
    assert_eq!(
        body["AccessKeys"]["AccessKey"][0]["AccessKeyId"],
        AKGUARD_KEY
    );
}

#[test]
fn list_users_pages_with_a_marker() {
    let h = Harness::new();
    let (_, first) = h.call(RAM, "ListUsers", &[("MaxItems", "3")]);
    assert_eq!(first["IsTruncated"], true);
    assert_eq!(first["Users"]["User"].as_array().unwrap().len(), 3);
    let marker = first["Marker"].as_str().unwrap();
    let (_, second) = h.call(RAM, "ListUsers", &[("MaxItems", "3"), ("Marker", marker)]);
    assert_eq!(second["IsTruncated"], false);
    assert!(second.get("Marker").is_none());
    assert_eq!(second["Users"]["User"][0]["UserName"], "bob");
    assert_eq!(
        code(&h.call(RAM, "ListUsers", &[("MaxItems", "ten")])),
        (400, "InvalidParameter".into())
    );
    assert_eq!(
        code(&h.call(RAM, "ListUsers", &[("Marker", "bogus")])),
        (400, "InvalidParameter".into())
    );
}

const DENY: &str = r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

#[test]
fn a_deny_policy_is_created_once_and_attached_once() {
    let h = Harness::new();
    let create = [
        ("PolicyName", "AkguardDenyAll"),
        ("PolicyDocument", DENY),
        ("Description", "quarantine"),
    ];
    let (status, body) = h.call(RAM, "CreatePolicy", &create);
    assert_eq!(status, 200);
    assert_eq!(body["Policy"]["DefaultVersion"], "v1");
    assert_eq!(
        code(&h.call(RAM, "CreatePolicy", &create)),
        (409, "EntityAlreadyExists.Policy".into())
    );
    let attach = [
        ("PolicyType", "Custom"),
        ("PolicyName", "AkguardDenyAll"),
        ("UserName", "ci-deployer"),
    ];
    assert_eq!(h.call(RAM, "AttachPolicyToUser", &attach).0, 200);
    assert_eq!(
        code(&h.call(RAM, "AttachPolicyToUser", &attach)),
        (409, "EntityAlreadyExists.User.Policy".into())
    );
    let (_, listed) = h.call(RAM, "ListPoliciesForUser", &[("UserName", "ci-deployer")]);
    let names: Vec<&str> = listed["Policies"]["Policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PolicyName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["AliyunECSFullAccess", "AkguardDenyAll"]);
    let (_, got) = h.call(
        RAM,
        "GetPolicy",
        &[("PolicyName", "AkguardDenyAll"), ("PolicyType", "Custom")],
    );
    assert_eq!(got["Policy"]["AttachmentCount"], 1);
    assert_eq!(got["DefaultPolicyVersion"]["PolicyDocument"], DENY);
    assert_eq!(h.call(RAM, "DetachPolicyFromUser", &attach).0, 200);
    assert_eq!(
        code(&h.call(RAM, "DetachPolicyFromUser", &attach)),
        (404, "EntityNotExist.User.Policy".into())
    );
}

#[test]
fn policy_errors_use_ram_codes() {
    let h = Harness::new();
    let malformed = [("PolicyName", "Broken"), ("PolicyDocument", "{not json")];
    assert_eq!(
        code(&h.call(RAM, "CreatePolicy", &malformed)),
        (400, "MalformedPolicyDocument".into())
    );
    let missing = [
        ("PolicyType", "Custom"),
        ("PolicyName", "Nope"),
        ("UserName", "alice"),
    ];
    assert_eq!(
        code(&h.call(RAM, "AttachPolicyToUser", &missing)),
        (404, "EntityNotExist.Policy".into())
    );
    let no_user = [
        ("PolicyType", "System"),
        ("PolicyName", "ReadOnlyAccess"),
        ("UserName", "nobody"),
    ];
    assert_eq!(
        code(&h.call(RAM, "AttachPolicyToUser", &no_user)),
        (404, "EntityNotExist.User".into())
    );
    assert_eq!(
        code(&h.call(
            RAM,
            "GetPolicy",
            &[("PolicyName", "Nope"), ("PolicyType", "Custom")]
        )),
        (404, "EntityNotExist.Policy".into())
    );
}

#[test]
fn a_user_takes_at_most_ten_custom_policies() {
    let h = Harness::new();
    for i in 0..11 {
        let name = format!("P{i}");
        assert_eq!(
            h.call(
                RAM,
                "CreatePolicy",
                &[("PolicyName", &name), ("PolicyDocument", DENY)]
            )
            .0,
            200
        );
        let answer = h.call(
            RAM,
            "AttachPolicyToUser",
            &[
                ("PolicyType", "Custom"),
                ("PolicyName", &name),
                ("UserName", "alice"),
            ],
        );
        if i < 10 {
            assert_eq!(answer.0, 200);
        } else {
            assert_eq!(code(&answer), (409, "LimitExceeded.User.Policy".into()));
        }
    }
}

#[test]
fn a_policy_keeps_five_versions_unless_asked_to_rotate() {
    let h = Harness::new();
    let add = [("PolicyName", "ReadOnlyCustom"), ("PolicyDocument", DENY)];
    for expected in ["v2", "v3", "v4", "v5"] {
        let (_, body) = h.call(RAM, "CreatePolicyVersion", &add);
        assert_eq!(body["PolicyVersion"]["VersionId"], expected);
    }
    assert_eq!(
        code(&h.call(RAM, "CreatePolicyVersion", &add)),
        (409, "LimitExceeded.Policy.Version".into())
    );
    let rotate = [
        add[0],
        add[1],
        (
            "RotateStrategy",
            "DeleteOldestNonDefaultVersionWhenLimitExceeded",
        ),
        ("SetAsDefault", "True"),
    ];
    let (status, body) = h.call(RAM, "CreatePolicyVersion", &rotate);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["PolicyVersion"]["VersionId"], "v6");
    assert_eq!(body["PolicyVersion"]["IsDefaultVersion"], true);
    let state = h.state();
    let ids: Vec<&str> = state["policies"][0]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    // v1 was the default when the limit hit, so the oldest non-default (v2) went.
    assert_eq!(ids, ["v1", "v3", "v4", "v5", "v6"]);
    assert_eq!(state["policies"][0]["default_version"], "v6");
}

#[test]
fn logon_profiles_and_mfa_devices() {
    let h = Harness::new();
    let (_, profile) = h.call(RAM, "GetLoginProfile", &[("UserName", "alice")]);
    assert_eq!(profile["LoginProfile"]["MFABindRequired"], false);
    let update = [
        ("UserName", "alice"),
        ("MFABindRequired", "True"),
        ("PasswordResetRequired", "true"),
    ];
    assert_eq!(h.call(RAM, "UpdateLoginProfile", &update).0, 200);
    let (_, profile) = h.call(RAM, "GetLoginProfile", &[("UserName", "alice")]);
    assert_eq!(profile["LoginProfile"]["MFABindRequired"], true);
    assert_eq!(profile["LoginProfile"]["PasswordResetRequired"], true);
    let bad = [("UserName", "alice"), ("MFABindRequired", "yes")];
    assert_eq!(
        code(&h.call(RAM, "UpdateLoginProfile", &bad)),
        (400, "InvalidParameter".into())
    );
    assert_eq!(
        code(&h.call(
            RAM,
            "UpdateLoginProfile",
            &[("UserName", "akguard"), ("MFABindRequired", "true")]
        )),
        (404, "EntityNotExist.User.LoginProfile".into())
    );
    assert_eq!(
        code(&h.call(RAM, "GetUserMFAInfo", &[("UserName", "alice")])),
        (404, "EntityNotExist.User.MFADevice".into())
    );
    let (_, mfa) = h.call(RAM, "GetUserMFAInfo", &[("UserName", "bob")]);
    assert_eq!(mfa["MFADevice"]["Type"], "VMFA");
}

#[test]
fn ims_switches_a_console_logon_off_and_on_for_a_signed_caller_only() {
    let h = Harness::new();
    let upn = [("UserPrincipalName", "alice@acme.onaliyun.com")];
    let (status, profile) = h.call(IMS, "GetLoginProfile", &upn);
    assert_eq!(status, 200, "{profile}");
    assert_eq!(profile["LoginProfile"]["Status"], "Active");
    let off = [
        ("UserPrincipalName", "alice@acme.onaliyun.com"),
        ("Status", "Inactive"),
    ];
    // Signed with the wrong secret: refused, and nothing changes.
    let mut forged = h.signed("POST", AKGUARD, IMS, "UpdateLoginProfile", &off);
    forged.insert("Signature".into(), "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into());
    assert_eq!(
        code(&h.send("POST", &forged)),
        (400, "SignatureDoesNotMatch".into())
    );
    assert_eq!(
        h.call(IMS, "GetLoginProfile", &upn).1["LoginProfile"]["Status"],
        "Active"
    );

    assert_eq!(h.call(IMS, "UpdateLoginProfile", &off).0, 200);
    let (_, profile) = h.call(IMS, "GetLoginProfile", &upn);
    assert_eq!(profile["LoginProfile"]["Status"], "Inactive");
    // Switching off keeps the profile's other settings.
    assert_eq!(profile["LoginProfile"]["MFABindRequired"], false);
    let bad = [
        ("UserPrincipalName", "alice@acme.onaliyun.com"),
        ("Status", "Off"),
    ];
    assert_eq!(
        code(&h.call(IMS, "UpdateLoginProfile", &bad)),
        (400, "InvalidParameter".into())
    );
    let on = [
        ("UserPrincipalName", "alice@acme.onaliyun.com"),
        ("Status", "Active"),
    ];
    assert_eq!(h.call(IMS, "UpdateLoginProfile", &on).0, 200);
    assert_eq!(h.state()["users"][2]["login_profile"]["status"], "Active");
    assert_eq!(
        code(&h.call(
            IMS,
            "GetLoginProfile",
            &[("UserPrincipalName", "akguard@acme.onaliyun.com")]
        )),
        (404, "EntityNotExist.User.LoginProfile".into())
    );
}
