//! Classifying calls: resources created or deleted, identity changes, leak-protection refusals.

use serde_json::json;

use super::super::{AuditFindings, Capped, ResourceChange};
use super::support::*;

#[test]
fn created_resources_are_read_from_the_response_then_references_then_names() {
    let region = json!({ "RegionId": "cn-hangzhou" });
    let events = [
        // RunInstances also references what it used; only the instances were created.
        with(
            event(1, "2024-05-01T01:00:00Z", "RunInstances", ATTACKER),
            json!({ "referencedResources": {
                "ACS::ECS::Instance": ["i-1"],
                "ACS::ECS::SecurityGroup": ["sg-1"],
                "ACS::ECS::Image": ["m-1"]
            }}),
        ),
        with(
            event(2, "2024-05-01T01:01:00Z", "AllocateEipAddress", ATTACKER),
            json!({ "referencedResources": { "ACS::VPC::EIP": "eip-1,eip-2" } }),
        ),
        with(
            event(3, "2024-05-01T01:02:00Z", "CreateVpc", ATTACKER),
            json!({ "resourceType": "ACS::VPC::VPC", "resourceName": "vpc-1" }),
        ),
        with(
            event(4, "2024-05-01T01:03:00Z", "ImportKeyPair", ATTACKER),
            json!({ "requestParameters": { "KeyPairName": "miner", "RegionId": "cn-hangzhou" } }),
        ),
        with(
            event(5, "2024-05-01T01:04:00Z", "DeleteInstance", ATTACKER),
            json!({ "requestParameters": { "InstanceId": "i-9", "RegionId": "cn-hangzhou" } }),
        ),
        event(6, "2024-05-01T01:05:00Z", "ReleaseEipAddress", ATTACKER),
        with(
            event(7, "2024-05-01T01:06:00Z", "CreateVSwitch", ATTACKER),
            json!({ "errorCode": "Forbidden.RAM", "requestParameters": region }),
        ),
        event(8, "2024-05-01T01:07:00Z", "RunCommand", ATTACKER),
        event(9, "2024-05-01T01:08:00Z", "Runtime", ATTACKER),
    ];
    let findings = AuditFindings::from_events(LEAKED, &events, &known());
    let kinds = |changes: &Capped<ResourceChange>| -> Vec<(String, String)> {
        changes
            .items
            .iter()
            .map(|r| (r.kind.clone(), r.ids.join(",")))
            .collect()
    };
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(k, i)| (k.to_string(), i.to_string()))
            .collect()
    };
    assert_eq!(
        kinds(&findings.resources_created),
        pairs(&[
            ("ACS::ECS::Instance", "i-1"),
            ("ACS::VPC::EIP", "eip-1,eip-2"),
            ("ACS::VPC::VPC", "vpc-1"),
            ("KeyPair", "miner"),
            ("Command", ""),
        ])
    );
    assert_eq!(
        kinds(&findings.resources_deleted),
        pairs(&[("Instance", "i-9"), ("EipAddress", "")])
    );
    assert_eq!(
        findings.resources_created.items[0].region.as_deref(),
        Some("cn-hangzhou")
    );
}

#[test]
fn identity_changes_come_from_ram_and_ims_only() {
    let events = [
        with(
            event(1, "2024-05-01T01:00:00Z", "CreateUser", ATTACKER),
            json!({
                "serviceName": "Ims",
                "eventSource": "ims.aliyuncs.com",
                "requestParameters": { "UserPrincipalName": "bob@acme.onaliyun.com" },
                "responseElements": { "User": { "UserPrincipalName": "bob@acme.onaliyun.com" } }
            }),
        ),
        with(
            event(2, "2024-05-01T01:01:00Z", "CreateUser", ATTACKER),
            json!({
                "serviceName": "Rds",
                "eventSource": "rds.aliyuncs.com",
                "requestParameters": { "UserName": "dbadmin" }
            }),
        ),
        // Without a user, CreateAccessKey makes a key for the caller.
        with(
            event(3, "2024-05-01T01:02:00Z", "CreateAccessKey", ATTACKER),
            json!({ "responseElements": { "AccessKey": { "Status": "Active" } } }),
        ),
        with(
            event(4, "2024-05-01T01:03:00Z", "AttachPolicyToRole", ATTACKER),
            json!({ "requestParameters": {
                "RoleName": "ecs-admin",
                "PolicyName": "AdministratorAccess",
                "PolicyType": "System"
            }}),
        ),
        with(
            event(5, "2024-05-01T01:04:00Z", "UpdateAccessKey", ATTACKER),
            json!({ "requestParameters": {
                "UserName": "alice",
                "UserAccessKeyId": "LTAI5tAliceKey000000001",
                "Status": "Inactive"
            }}),
        ),
        with(
            event(6, "2024-05-01T01:05:00Z", "BindMFADevice", ATTACKER),
            json!({
                "requestParameters": { "UserName": "alice" },
                "errorCode": "EntityNotExist.User"
            }),
        ),
    ];
    let findings = AuditFindings::from_events(LEAKED, &events, &known());
    let changes = &findings.identity_changes.items;
    let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "CreateUser",
            "CreateAccessKey",
            "AttachPolicyToRole",
            "UpdateAccessKey",
            "BindMFADevice"
        ]
    );
    assert_eq!(
        changes[0].user_name.as_deref(),
        Some("bob@acme.onaliyun.com")
    );
    assert_eq!(changes[1].user_name.as_deref(), Some("ci-deployer"));
    assert_eq!(changes[2].role_name.as_deref(), Some("ecs-admin"));
    assert_eq!(
        changes[2].policy_name.as_deref(),
        Some("AdministratorAccess")
    );
    assert_eq!(
        changes[3].access_key_id.as_deref(),
        Some("LTAI5tAliceKey000000001")
    );
    assert_eq!(
        changes[4].error_code.as_deref(),
        Some("EntityNotExist.User")
    );

    let users: Vec<Option<&str>> = findings
        .users_created
        .items
        .iter()
        .map(|u| u.user_name.as_deref())
        .collect();
    assert_eq!(users, [Some("bob@acme.onaliyun.com")]);
    let keys = findings.keys_created();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (
            keys[0].access_key_id.as_deref(),
            keys[0].user_name.as_deref()
        ),
        (None, Some("ci-deployer"))
    );
}

#[test]
fn leak_protection_refusals_are_recognized_in_any_case_and_counted_apart() {
    let refusal = |n, name, message: &str| {
        with(
            event(n, "2024-05-01T01:00:00Z", name, ATTACKER),
            json!({ "errorCode": "Forbidden", "errorMessage": message }),
        )
    };
    let events = [
        refusal(
            1,
            "RunInstances",
            "Forbidden : There is a risk of leakage of this AccessKey.",
        ),
        refusal(
            2,
            "DescribeInstances",
            "THERE IS A RISK OF LEAKAGE OF THIS ACCESSKEY",
        ),
        refusal(
            3,
            "RunInstances",
            "Forbidden : User not authorized to operate on the specified resource.",
        ),
    ];
    let mut events = events.to_vec();
    events.push(event(
        4,
        "2024-05-01T01:05:00Z",
        "DescribeRegions",
        ATTACKER,
    ));
    let findings = AuditFindings::from_events(LEAKED, &events, &known());
    assert_eq!(findings.refused_by_leak_protection.total(), 2);
    // The protection's refusals, a permission refusal, and the one call that went through.
    assert_eq!(findings.failed_calls.total(), 3);
    assert_eq!(findings.succeeded, 1);
    assert_eq!(findings.write_events.total(), 2);
    assert_eq!(findings.resources_created.total(), 0);
    assert!(
        findings
            .summary()
            .ends_with("2 calls refused by leak protection")
    );
}
