//! Fixtures: ActionTrail events made with a leaked key, and an attack built from them.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::super::AuditFindings;
use super::super::event::IDENTITY_EVENTS;
use crate::domain::cidr::Cidr;

pub const LEAKED: &str = "LTAI5tQ9xLeakedCiDeploy7";
pub const ATTACKER: &str = "45.134.26.19";
pub const EXIT_NODE: &str = "185.220.101.47";
pub const OFFICE: &str = "10.0.8.14";
pub const NEW_SECRET: &str = "Bd7TrW2qLx9VmN4cZp8KsJ3hGf6YeA";

/// An ActionTrail event made with the leaked key, shaped as LookupEvents returns it: a RAM
/// call for identity names, else ECS; a read for `Describe`/`List`/`Get`, else a write.
pub fn event(n: u32, time: &str, name: &str, ip: &str) -> Value {
    let id = format!("5C1E0B0A-{n:04}-4B1E-9A6C-4E1F8B2C{n:04}");
    let read = ["Describe", "List", "Get"]
        .iter()
        .any(|p| name.starts_with(p));
    let rw = if read { "Read" } else { "Write" };
    let ram = IDENTITY_EVENTS.contains(&name) || name == "ListUsers";
    let service = if ram { "Ram" } else { "Ecs" };
    json!({
        "eventId": id,
        "eventVersion": 1,
        "eventTime": time,
        "eventType": "ApiCall",
        "eventCategory": "Management",
        "eventRW": rw,
        "eventName": name,
        "eventSource": format!("{}.aliyuncs.com", service.to_lowercase()),
        "serviceName": service,
        "acsRegion": "cn-hangzhou",
        "isGlobal": service == "Ram",
        "apiVersion": "2014-05-26",
        "requestId": id,
        "sourceIpAddress": ip,
        "userAgent": "AlibabaCloud (Linux; amd64) Python/3.11.4 Core/2.16.1",
        "userIdentity": {
            "type": "ram-user",
            "principalId": "276500000000000101",
            "accountId": "1234567890123456",
            "accessKeyId": LEAKED,
            "userName": "ci-deployer"
        },
        "requestParameters": { "RegionId": "cn-hangzhou" },
        "recipientAccountId": "1234567890123456"
    })
}

pub fn with(mut event: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().unwrap() {
        event[key] = value.clone();
    }
    event
}

/// The leaked-in-use scenario: reconnaissance, a backdoor user with a key and admin rights,
/// SSH opened to the world, GPU instances, a refused second user, and old use from the
/// office.
pub fn attack() -> Vec<Value> {
    vec![
        event(1, "2024-05-01T01:00:00Z", "DescribeRegions", ATTACKER),
        with(
            event(3, "2024-05-01T02:00:00Z", "CreateUser", ATTACKER),
            json!({
                "requestParameters": { "UserName": "svc-backup", "RegionId": "cn-hangzhou" },
                "referencedResources": { "ACS::RAM::User": ["svc-backup"] },
                "responseElements": {
                    "User": { "UserName": "svc-backup", "UserId": "276500000000000199" }
                }
            }),
        ),
        with(
            event(4, "2024-05-01T02:01:00Z", "CreateAccessKey", ATTACKER),
            json!({
                "requestParameters": { "UserName": "svc-backup", "RegionId": "cn-hangzhou" },
                "referencedResources": { "ACS::RAM::User": ["svc-backup"] },
                "responseElements": {
                    "AccessKey": {
                        "AccessKeyId": "LTAI5tBkD00rSvcBackup3Zq",
                        "AccessKeySecret": NEW_SECRET,
                        "Status": "Active"
                    }
                }
            }),
        ),
        with(
            event(5, "2024-05-01T02:02:00Z", "AttachPolicyToUser", ATTACKER),
            json!({
                "requestParameters": {
                    "UserName": "svc-backup",
                    "PolicyName": "AdministratorAccess",
                    "PolicyType": "System"
                },
                "referencedResources": { "ACS::RAM::User": ["svc-backup"] }
            }),
        ),
        with(
            event(
                6,
                "2024-05-01T03:00:00Z",
                "AuthorizeSecurityGroup",
                ATTACKER,
            ),
            json!({
                "acsRegion": "ap-southeast-1",
                "requestParameters": {
                    "SecurityGroupId": "sg-t4n2x8m1k0q7w3e5r9y1",
                    "IpProtocol": "tcp",
                    "PortRange": "22/22",
                    "SourceCidrIp": "0.0.0.0/0"
                },
                "referencedResources": { "ACS::ECS::SecurityGroup": ["sg-t4n2x8m1k0q7w3e5r9y1"] }
            }),
        ),
        with(
            event(7, "2024-05-01T03:02:00Z", "RunInstances", ATTACKER),
            json!({
                "acsRegion": "ap-southeast-1",
                "requestParameters": {
                    "InstanceType": "ecs.gn6i-c24g1.12xlarge",
                    "Amount": "20",
                    "SecurityGroupId": "sg-t4n2x8m1k0q7w3e5r9y1"
                },
                "referencedResources": {
                    "ACS::ECS::Instance": ["i-t4nfm1x0a2b3c4d5e6f7", "i-t4nfm1x0a2b3c4d5e6f8"]
                },
                "responseElements": {
                    "InstanceIdSets": {
                        "InstanceIdSet": ["i-t4nfm1x0a2b3c4d5e6f7", "i-t4nfm1x0a2b3c4d5e6f8"]
                    }
                }
            }),
        ),
        event(9, "2024-05-01T04:00:00Z", "DescribeInstances", EXIT_NODE),
        with(
            event(11, "2024-05-01T04:30:00Z", "CreateUser", EXIT_NODE),
            json!({
                "requestParameters": { "UserName": "svc-backup2" },
                "referencedResources": { "ACS::RAM::User": ["svc-backup2"] },
                "errorCode": "Forbidden",
                "errorMessage": "Forbidden : There is a risk of leakage of this AccessKey."
            }),
        ),
        with(
            event(12, "2024-04-11T09:00:00Z", "DescribeInstances", OFFICE),
            json!({ "userAgent": "aliyun-cli/3.0.204" }),
        ),
        with(
            event(13, "2024-04-30T09:00:00Z", "ListUsers", "10.0.0.5"),
            json!({ "userIdentity": { "accessKeyId": "LTAI5tAKGUARDEMULATOR001" } }),
        ),
    ]
}

pub fn known() -> Vec<Cidr> {
    vec!["10.0.0.0/8".parse().unwrap()]
}

pub fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(text.parse().unwrap())
}

pub fn without_passes(mut findings: AuditFindings) -> AuditFindings {
    findings.passes = 0;
    findings.pass_fingerprints.clear();
    findings
}

pub fn noisy(range: std::ops::Range<u32>, ip: impl Fn(u32) -> String) -> Vec<Value> {
    let start: DateTime<Utc> = "2024-05-01T00:00:00Z".parse().unwrap();
    range
        .map(|n| {
            let time = (start + chrono::Duration::seconds(i64::from(n))).to_rfc3339();
            event(n, &time, "ModifyInstanceAttribute", &ip(n))
        })
        .collect()
}
