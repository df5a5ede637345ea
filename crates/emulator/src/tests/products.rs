//! IMS, ActionTrail, BSS, KMS and Security Center semantics, rate limits and fault injection.

use serde_json::{Value, json};

use super::super::faults::{FailNext, Faults};
use super::support::*;

fn event_ids(body: &Value) -> Vec<&str> {
    body["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect()
}

#[test]
fn lookup_events_filters_by_key_and_pages_newest_first() {
    let h = Harness::new();
    let by_key = [
        ("LookupAttribute.1.Key", "EventAccessKeyId"),
        ("LookupAttribute.1.Value", LEAKED_KEY),
        ("MaxResults", "2"),
    ];
    let (status, first) = h.call(TRAIL, "LookupEvents", &by_key);
    assert_eq!(status, 200, "{first}");
    assert_eq!(event_ids(&first), ["e3", "e2"]);
    assert_eq!(first["StartTime"], "2026-11-21T12:00:00Z");
    let token = first["NextToken"].as_str().unwrap();
    let next = [by_key[0], by_key[1], by_key[2], ("NextToken", token)];
    let (_, second) = h.call(TRAIL, "LookupEvents", &next);
    assert_eq!(event_ids(&second), ["e1"]);
    assert!(second.get("NextToken").is_none());
}

#[test]
fn lookup_events_honours_the_window_direction_and_region() {
    let h = Harness::new();
    let forward = [
        ("StartTime", "2026-10-01T00:00:00Z"),
        ("Direction", "FORWARD"),
        ("LookupAttribute.1.Key", "SourceIpAddress"),
        ("LookupAttribute.1.Value", "203.0.113.7"),
    ];
    let (_, body) = h.call(TRAIL, "LookupEvents", &forward);
    assert_eq!(event_ids(&body), ["e5", "e1", "e2", "e3"]);
    let (_, body) = h.call(TRAIL, "LookupEvents", &[("RegionId", "ap-southeast-1")]);
    assert_eq!(event_ids(&body), ["e2"]);
    let (_, body) = h.call(
        TRAIL,
        "LookupEvents",
        &[
            ("LookupAttribute.1.Key", "ResourceName"),
            ("LookupAttribute.1.Value", "backdoor"),
        ],
    );
    assert_eq!(event_ids(&body), ["e3"]);
    assert_eq!(
        code(&h.call(TRAIL, "LookupEvents", &[("MaxResults", "51")])),
        (400, "InvalidParameter".into())
    );
    assert_eq!(
        code(&h.call(TRAIL, "LookupEvents", &[("StartTime", "yesterday")])),
        (400, "InvalidParameter".into())
    );
}

#[test]
fn lookup_events_is_throttled_beyond_two_per_second_when_enforced() {
    let h = Harness::new();
    h.shared.lock().world.enforce_rate_limits = true;
    assert_eq!(h.call(TRAIL, "LookupEvents", &[]).0, 200);
    assert_eq!(h.call(TRAIL, "LookupEvents", &[]).0, 200);
    assert_eq!(
        code(&h.call(TRAIL, "LookupEvents", &[])),
        (400, "Throttling.User".into())
    );
    h.advance(1);
    assert_eq!(h.call(TRAIL, "LookupEvents", &[]).0, 200);
}

#[test]
fn last_used_info_maps_keys_to_owners() {
    let h = Harness::new();
    let (_, ram) = h.call(
        TRAIL,
        "GetAccessKeyLastUsedInfo",
        &[("AccessKey", LEAKED_KEY)],
    );
    assert_eq!(ram["AccountType"], "ram-user");
    assert_eq!(ram["UserName"], "ci-deployer");
    assert_eq!(
        ram["UsedTimestamp"],
        (t0().timestamp_millis() - 15 * 60 * 1000)
    );
    let (_, root) = h.call(
        TRAIL,
        "GetAccessKeyLastUsedInfo",
        &[("AccessKey", ROOT_KEY)],
    );
    assert_eq!(
        (root["AccountType"].as_str(), root["UserName"].as_str()),
        (Some("root-account"), Some("root"))
    );
    assert_eq!(root["AccountId"], "1234567890123456");
}

#[test]
fn ims_finds_the_owner_of_a_key() {
    let h = Harness::new();
    let (status, body) = h.call(IMS, "GetUser", &[("UserAccessKeyId", LEAKED_KEY)]);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["User"]["UserName"], "ci-deployer");
    assert_eq!(
        body["User"]["UserPrincipalName"],
        "ci-deployer@acme.onaliyun.com"
    );
    assert_eq!(
        code(&h.call(IMS, "GetUser", &[("UserAccessKeyId", ROOT_KEY)])),
        (404, "EntityNotExist.User".into())
    );
    assert_eq!(
        code(&h.call(
            IMS,
            "GetUser",
            &[("UserAccessKeyId", "LTAI5tNOBODYNOBODYNOBODY")]
        )),
        (404, "EntityNotExist.User.AccessKey".into())
    );
    let upn = [
        ("UserAccessKeyId", LEAKED_KEY),
        ("UserPrincipalName", "ci-deployer@acme.onaliyun.com"),
    ];
    let (_, used) = h.call(IMS, "GetAccessKeyLastUsed", &upn);
    assert_eq!(
        used["AccessKeyLastUsed"]["LastUsedDate"],
        "2026-11-28T11:45:00Z"
    );
    let never = [
        ("UserAccessKeyId", SPARE_KEY),
        ("UserPrincipalName", "ci-deployer@acme.onaliyun.com"),
    ];
    let (_, unused) = h.call(IMS, "GetAccessKeyLastUsed", &never);
    assert_eq!(unused["AccessKeyLastUsed"], json!({}));
}

#[test]
fn bills_come_per_cycle_in_the_bss_envelope() {
    let h = Harness::new();
    let (_, now) = h.call(BSS, "QueryBillOverview", &[("BillingCycle", "2026-11")]);
    assert_eq!(now["Success"], true);
    assert_eq!(now["Code"], "Success");
    assert_eq!(now["Data"]["Items"]["Item"][0]["PretaxAmount"], 9123.4);
    assert_eq!(now["Data"]["AccountID"], "1234567890123456");
    let (_, before) = h.call(
        BSS,
        "QueryBillOverview",
        &[("BillingCycle", "2026-10"), ("ProductCode", "ecs")],
    );
    assert_eq!(before["Data"]["Items"]["Item"].as_array().unwrap().len(), 1);
    assert_eq!(
        code(&h.call(BSS, "QueryBillOverview", &[])),
        (400, "MissingParameter".into())
    );
    let (_, balance) = h.call(BSS, "QueryAccountBalance", &[]);
    assert_eq!(balance["Data"]["AvailableAmount"], "120.50");
}

#[test]
fn put_secret_value_is_idempotent_per_version_and_moves_the_stages() {
    let h = Harness::new();
    let put = [
        ("SecretName", "prod/ci-deployer/ak"),
        ("VersionId", "v2"),
        ("SecretData", "new-pair"),
    ];
    let (status, body) = h.call(KMS, "PutSecretValue", &put);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["VersionStages"]["VersionStage"], json!(["ACSCurrent"]));
    assert_eq!(h.call(KMS, "PutSecretValue", &put).0, 200);
    let clash = [put[0], put[1], ("SecretData", "other")];
    assert_eq!(
        code(&h.call(KMS, "PutSecretValue", &clash)),
        (409, "Rejected.ResourceExist".into())
    );
    let (_, current) = h.call(
        KMS,
        "GetSecretValue",
        &[("SecretName", "prod/ci-deployer/ak")],
    );
    assert_eq!(
        (
            current["SecretData"].as_str(),
            current["VersionId"].as_str()
        ),
        (Some("new-pair"), Some("v2"))
    );
    let previous = [
        ("SecretName", "prod/ci-deployer/ak"),
        ("VersionStage", "ACSPrevious"),
    ];
    assert_eq!(
        h.call(KMS, "GetSecretValue", &previous).1["VersionId"],
        "v1"
    );
    let unknown = [
        ("SecretName", "nope"),
        ("VersionId", "v1"),
        ("SecretData", "x"),
    ];
    assert_eq!(
        code(&h.call(KMS, "PutSecretValue", &unknown)),
        (404, "Forbidden.ResourceNotFound".into())
    );
    let create = [
        ("SecretName", "prod/ci-deployer/ak"),
        ("VersionId", "v1"),
        ("SecretData", "x"),
    ];
    assert_eq!(
        code(&h.call(KMS, "CreateSecret", &create)),
        (409, "Rejected.ResourceExist".into())
    );
}

#[test]
fn leak_records_filter_page_and_close() {
    let h = Harness::new();
    let (_, pending) = h.call(
        SAS,
        "DescribeAccesskeyLeakList",
        &[
            ("Status", "pending"),
            ("CurrentPage", "1"),
            ("PageSize", "100"),
        ],
    );
    assert_eq!(pending["TotalCount"], 1);
    assert_eq!(pending["AccessKeyLeakList"][0]["AccesskeyId"], LEAKED_KEY);
    assert_eq!(pending["AkLeakCount"], 1);
    let since = (t0().timestamp_millis() - 3_600_000).to_string();
    let (_, recent) = h.call(SAS, "DescribeAccesskeyLeakList", &[("StartTs", &since)]);
    assert_eq!(recent["TotalCount"], 1);
    let (_, by_key) = h.call(
        SAS,
        "DescribeAccesskeyLeakList",
        &[("Query", "LTAI5tOLDOLDOLDOLDOLD001")],
    );
    assert_eq!(by_key["AccessKeyLeakList"][0]["Status"], "dealed");
    let (_, detail) = h.call(SAS, "DescribeAccessKeyLeakDetail", &[("Id", "389357")]);
    assert_eq!(detail["GithubRepoName"], "someone/repo");
    assert_eq!(
        code(&h.call(SAS, "DescribeAccessKeyLeakDetail", &[("Id", "1")])),
        (400, "-106".into())
    );
    assert_eq!(
        code(&h.call(SAS, "DescribeAccessKeyLeakDetail", &[("Id", "x1")])),
        (400, "InvalidParameter".into())
    );
    let deal = [
        ("IdList.1", "389357"),
        ("Type", "disable"),
        ("Remark", "akguard"),
    ];
    assert_eq!(h.call(SAS, "ModifyAccessKeyLeakDeal", &deal).0, 200);
    let (_, detail) = h.call(SAS, "DescribeAccessKeyLeakDetail", &[("Id", "389357")]);
    assert_eq!(
        (detail["DealType"].as_str(), detail["DealTime"].as_str()),
        (Some("disable"), Some("2026-11-28 12:00:00"))
    );
    let (_, pending) = h.call(SAS, "DescribeAccesskeyLeakList", &[("Status", "pending")]);
    assert_eq!(pending["TotalCount"], 0);
}

#[test]
fn a_scripted_failure_fires_count_times_without_side_effects() {
    let h = Harness::new();
    h.shared.lock().world.faults = Faults {
        retry_after_ms: Some(1500),
        fail_next: vec![FailNext {
            action: "CreateAccessKey".into(),
            product: Some("ram".into()),
            user: None,
            count: 2,
            code: "Throttling.User".into(),
            status: 400,
            message: None,
            lose_answer: false,
        }],
        ..Faults::default()
    };
    let create = [("UserName", "alice")];
    for _ in 0..2 {
        let params = h.signed("POST", AKGUARD, RAM, "CreateAccessKey", &create);
        let answer = super::super::server::process(
            &h.shared,
            h.shared.clock.now(),
            "POST",
            &params_of(&params),
            None,
            None,
            &Default::default(),
        );
        assert_eq!(
            (answer.status.as_u16(), answer.retry_after_ms),
            (400, Some(1500))
        );
        assert_eq!(answer.body["Code"], "Throttling.User");
    }
    assert_eq!(h.state()["users"][2]["access_keys"], json!([]));
    assert_eq!(h.call(RAM, "CreateAccessKey", &create).0, 200);
    assert!(h.shared.lock().world.faults.fail_next.is_empty());
    // Calls that met a fault are still logged as received.
    assert_eq!(h.shared.lock().calls.len(), 3);
}

#[test]
fn a_scripted_failure_for_one_user_leaves_the_others_calls_alone() {
    let h = Harness::new();
    h.shared.lock().world.faults = Faults {
        fail_next: vec![FailNext {
            action: "GetLoginProfile".into(),
            product: None,
            user: Some("bob".into()),
            count: 1,
            code: "ServiceUnavailable".into(),
            status: 503,
            message: None,
            lose_answer: false,
        }],
        ..Faults::default()
    };
    assert_eq!(
        h.call(RAM, "GetLoginProfile", &[("UserName", "alice")]).0,
        200
    );
    assert_eq!(
        h.call(RAM, "GetLoginProfile", &[("UserName", "bob")]).0,
        503
    );
    assert_eq!(
        h.call(RAM, "GetLoginProfile", &[("UserName", "bob")]).0,
        200
    );
}

#[test]
fn random_faults_at_rate_one_always_fire() {
    let h = Harness::new();
    h.shared.lock().world.faults = Faults {
        error_rate: 1.0,
        ..Faults::default()
    };
    let (status, body) = h.call(RAM, "ListUsers", &[]);
    assert!(matches!(
        (status, body["Code"].as_str()),
        (503, Some("ServiceUnavailable")) | (500, Some("InternalError"))
    ));
    h.shared.lock().world.faults = Faults {
        throttle_rate: 1.0,
        ..Faults::default()
    };
    assert_eq!(
        code(&h.call(RAM, "ListUsers", &[])),
        (400, "Throttling.User".into())
    );
    // Authentication still comes first.
    let stranger = Signer {
        key: "LTAI5tNOBODYNOBODYNOBODY",
        secret: "x",
        token: None,
    };
    assert_eq!(h.call_as(stranger, RAM, "ListUsers", &[]).0, 404);
}

fn params_of(map: &std::collections::BTreeMap<String, String>) -> super::super::params::Params {
    super::super::params::Params::from_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

#[test]
fn a_lost_answer_keeps_the_effect_and_answers_the_error() {
    let h = Harness::new();
    h.shared.lock().world.faults = Faults {
        fail_next: vec![FailNext {
            action: "CreateAccessKey".into(),
            product: None,
            user: None,
            count: 1,
            code: "ServiceUnavailable".into(),
            status: 503,
            message: None,
            lose_answer: true,
        }],
        ..Faults::default()
    };
    let create = [("UserName", "alice")];
    let (status, body) = h.call(RAM, "CreateAccessKey", &create);
    assert_eq!(
        (status, body["Code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    assert_eq!(
        h.state()["users"][2]["access_keys"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "the key was created although its answer was lost"
    );
    assert_eq!(h.call(RAM, "CreateAccessKey", &create).0, 200);
}
