//! Network access restriction policies (per key, for the account) and restrictive
//! protection, as calls signed by the restricted key meet them.

use serde_json::Value;

use super::super::workload;
use super::support::{
    AKGUARD, BSS, Harness, IMS, KMS, LEAKED, LEAKED_KEY, RAM, SCENARIO, TRAIL, code,
};

const UPN: &str = "ci-deployer@acme.onaliyun.com";
const FENCE: &str = r#"{"Version":1,"Status":"Active","Statements":[{"Type":"ClassicWhiteList","IPList":["10.0.8.0/24"]}]}"#;
const WORKLOAD: &str = "10.0.8.14";
const ATTACKER: &str = "45.134.26.19";

fn set_key_policy(h: &Harness, policy: &str) -> (u16, Value) {
    h.call(
        IMS,
        "SetAccessKeyPolicy",
        &[
            ("UserPrincipalName", UPN),
            ("UserAccessKeyId", LEAKED_KEY),
            ("AccessKeyPolicy", policy),
        ],
    )
}

fn balance_from(h: &Harness, address: &str) -> (u16, String) {
    code(&h.call_from(LEAKED, address, None, BSS, "QueryAccountBalance", &[]))
}

#[test]
fn a_fenced_key_answers_its_networks_and_refuses_the_rest() {
    let h = Harness::new();
    assert_eq!(balance_from(&h, ATTACKER).0, 200);
    assert_eq!(set_key_policy(&h, FENCE).0, 200);
    assert_eq!(
        balance_from(&h, ATTACKER),
        (403, "Forbidden.AccessKeyNetworkPolicy".into())
    );
    assert_eq!(balance_from(&h, WORKLOAD).0, 200);
    // The policy reads back exactly as it was set.
    let (status, body) = h.call(
        IMS,
        "GetAccessKeyPolicy",
        &[("UserPrincipalName", UPN), ("UserAccessKeyId", LEAKED_KEY)],
    );
    assert_eq!(status, 200);
    assert_eq!(body["AccessKeyPolicy"], FENCE);
    // akguard's own key carries no policy: its calls from anywhere go on.
    let own = h.call_from(AKGUARD, ATTACKER, None, BSS, "QueryAccountBalance", &[]);
    assert_eq!(own.0, 200);
}

#[test]
fn a_key_policy_takes_precedence_over_the_accounts_and_no_policy_defers_to_it() {
    let h = Harness::new();
    // An account-level policy binds akguard's own key too: it must admit akguard's address.
    let account = r#"{"Version":1,"Status":"Active","Statements":[{"Type":"ClassicWhiteList","IPList":["198.51.100.0/24","127.0.0.1"]}]}"#;
    let set = h.call(
        IMS,
        "SetAccessKeyPolicyForAccount",
        &[("AccessKeyPolicy", account)],
    );
    assert_eq!(set.0, 200, "{set:?}");
    assert_eq!(balance_from(&h, WORKLOAD).0, 403);
    assert_eq!(balance_from(&h, "198.51.100.9").0, 200);
    set_key_policy(&h, FENCE);
    assert_eq!(balance_from(&h, WORKLOAD).0, 200);
    assert_eq!(balance_from(&h, "198.51.100.9").0, 403);
    set_key_policy(&h, r#"{"Version":1,"Status":"Inactive","Statements":[]}"#);
    assert_eq!(balance_from(&h, WORKLOAD).0, 403);
    assert_eq!(balance_from(&h, "198.51.100.9").0, 200);
}

#[test]
fn a_vpc_statement_admits_private_addresses_from_that_vpc_only() {
    let h = Harness::new();
    let policy = r#"{"Version":1,"Status":"Active","Statements":[{"Type":"VPCWhiteList","Value":"vpc-ci","IPList":["172.16.0.0/16"]}]}"#;
    assert_eq!(set_key_policy(&h, policy).0, 200);
    let from = |vpc| h.call_from(LEAKED, "172.16.1.2", vpc, BSS, "QueryAccountBalance", &[]);
    assert_eq!(from(Some("vpc-ci")).0, 200);
    assert_eq!(from(Some("vpc-other")).0, 403);
    assert_eq!(from(None).0, 403);
}

#[test]
fn malformed_policies_are_refused_and_change_nothing() {
    let h = Harness::new();
    for bad in [
        r#"{"Version":1,"Status":"Active","Statements":null}"#,
        r#"{"Version":1,"Status":"Active","Statements":[{"Type":"ClassicWhiteList","Value":"x","IPList":["10.0.0.0/8"]}]}"#,
        r#"{"Version":1,"Status":"Active","Statements":[{"Type":"VPCWhiteList","IPList":["10.0.0.0/8"]}]}"#,
        r#"{"Version":1,"Status":"Active","Statements":[{"Type":"ClassicWhiteList","IPList":["10.0.0.0/40"]}]}"#,
        "not json",
    ] {
        assert_eq!(
            code(&set_key_policy(&h, bad)),
            (400, "InvalidParameter.AccessKeyPolicy".into()),
            "{bad}"
        );
    }
    assert_eq!(balance_from(&h, ATTACKER).0, 200);
}

#[test]
fn restrictive_protection_refuses_ram_and_ims_only_and_actiontrail_records_the_refusals() {
    let h = Harness::new();
    let answer = h.call_from(LEAKED, ATTACKER, None, RAM, "ListUsers", &[]);
    assert_eq!(code(&answer), (403, "Forbidden".into()));
    assert_eq!(
        answer.1["Message"],
        "Forbidden : There is a risk of leakage of this AccessKey."
    );
    assert_eq!(
        code(&h.call_as(LEAKED, IMS, "GetUser", &[("UserId", "1")])).0,
        403
    );
    // KMS is not on Alibaba's list: the protection leaves it open.
    let create = [
        ("SecretName", "x"),
        ("SecretData", "y"),
        ("VersionId", "v1"),
    ];
    assert_eq!(h.call_as(LEAKED, KMS, "CreateSecret", &create).0, 200);
    assert_eq!(h.call_as(LEAKED, TRAIL, "LookupEvents", &[]).0, 200);
    let state = h.state();
    let refused: Vec<&Value> = state["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["errorCode"] == "Forbidden")
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(refused[0]["eventName"], "ListUsers");
    assert_eq!(refused[0]["sourceIpAddress"], ATTACKER);
    assert_eq!(refused[0]["userIdentity"]["accessKeyId"], LEAKED_KEY);
    assert_eq!(
        refused[0]["errorMessage"],
        "Forbidden : There is a risk of leakage of this AccessKey."
    );
}

#[test]
fn the_workload_keeps_its_fenced_key_in_use_only_from_inside_the_fence() {
    for (address, used) in [(WORKLOAD, true), (ATTACKER, false)] {
        let mut scenario: Value = serde_json::from_str(SCENARIO).unwrap();
        scenario["workload"] = serde_json::json!({"access_key_id": LEAKED_KEY,
            "secret_name": "prod/ci-deployer/ak", "source_ip": address});
        let h = Harness::with(&scenario.to_string());
        set_key_policy(&h, FENCE);
        h.advance(60);
        workload::tick(&mut h.shared.lock().world, h.clock.now());
        let state = h.state();
        let last_used = &state["users"][1]["access_keys"][0]["last_used"];
        assert_eq!(
            *last_used == "2026-11-28T12:01:00Z",
            used,
            "{address}: {last_used}"
        );
    }
}
