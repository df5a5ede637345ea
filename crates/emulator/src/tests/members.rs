//! Member accounts: a role there assumed from the home account, credentials that act in that
//! member only, state kept apart, and Security Center's directory parameter.

use serde_json::{Value, json};

use super::support::*;

const MEMBER: &str = "2222222222222222";
const MEMBER_ROLE: &str = "acs:ram::2222222222222222:role/akguard-responder";

/// The test account with one member holding a user, a role and a leak record of its own.
fn harness() -> Harness {
    let mut world: Value = serde_json::from_str(SCENARIO).unwrap();
    world["members"] = json!([{
        "account": {"uid": MEMBER, "name": "member-prod"},
        "users": [{"name": "svc", "access_keys": [
            {"id": "LTAI5tMEMBERMEMBERMEMB01", "secret": "memberSecretMemberSecret00001"}]}],
        "roles": [{"arn": MEMBER_ROLE}],
        "leaks": [{"id": 389357, "access_key_id": "LTAI5tMEMBERMEMBERMEMB01",
            "ali_user_name": "member-prod", "user_type": "ram", "url": "https://github.com/m/r",
            "gmt_modified": "-5m"}],
    }]);
    Harness::with(&world.to_string())
}

fn user_names(body: &Value) -> Vec<&str> {
    body["Users"]["User"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["UserName"].as_str().unwrap())
        .collect()
}

#[test]
fn a_members_role_acts_in_that_member_only() {
    let h = harness();
    let (status, body) = h.call(
        STS,
        "AssumeRole",
        &[("RoleArn", MEMBER_ROLE), ("RoleSessionName", "akguard-7")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["AssumedRoleUser"]["Arn"],
        "acs:ram::2222222222222222:role/akguard-responder/akguard-7"
    );
    let creds = &body["Credentials"];
    let member = Signer {
        key: creds["AccessKeyId"].as_str().unwrap(),
        secret: creds["AccessKeySecret"].as_str().unwrap(),
        token: creds["SecurityToken"].as_str(),
    };
    let (status, identity) = h.call_as(member, STS, "GetCallerIdentity", &[]);
    assert_eq!(
        (status, identity["AccountId"].as_str()),
        (200, Some(MEMBER))
    );
    let (_, listed) = h.call_as(member, RAM, "ListUsers", &[]);
    assert_eq!(user_names(&listed), ["svc"]);
    let (_, home) = h.call(RAM, "ListUsers", &[]);
    assert!(!user_names(&home).contains(&"svc"), "{home}");

    // A change made in the member stays there.
    let (status, _) = h.call_as(
        member,
        RAM,
        "UpdateAccessKey",
        &[
            ("UserName", "svc"),
            ("UserAccessKeyId", "LTAI5tMEMBERMEMBERMEMB01"),
            ("Status", "Inactive"),
        ],
    );
    assert_eq!(status, 200);
    let inner = h.shared.lock();
    let svc = &inner.world.members[0].users[0];
    assert_eq!(format!("{:?}", svc.access_keys[0].status), "Inactive");
    let accounts: Vec<&str> = inner.calls.iter().map(|c| c.account.as_str()).collect();
    assert_eq!(
        accounts,
        [
            "1234567890123456",
            MEMBER,
            MEMBER,
            "1234567890123456",
            MEMBER
        ]
    );
}

#[test]
fn a_members_credentials_cannot_reach_the_home_account_or_assume_its_roles() {
    let h = harness();
    let (_, body) = h.call(
        STS,
        "AssumeRole",
        &[("RoleArn", MEMBER_ROLE), ("RoleSessionName", "akguard")],
    );
    let creds = &body["Credentials"];
    let member = Signer {
        key: creds["AccessKeyId"].as_str().unwrap(),
        secret: creds["AccessKeySecret"].as_str().unwrap(),
        token: creds["SecurityToken"].as_str(),
    };
    let home_role = "acs:ram::1234567890123456:role/akguard-responder";
    assert_eq!(
        code(&h.call_as(
            member,
            STS,
            "AssumeRole",
            &[("RoleArn", home_role), ("RoleSessionName", "s")]
        )),
        (404, "EntityNotExist.Role".into())
    );
    assert_eq!(
        code(&h.call_as(member, RAM, "GetUser", &[("UserName", "akguard")])),
        (404, "EntityNotExist.User".into())
    );
}

#[test]
fn the_home_account_reads_a_members_leak_records_through_the_directory() {
    let h = harness();
    let (status, listed) = h.call(
        SAS,
        "DescribeAccesskeyLeakList",
        &[("ResourceDirectoryAccountId", MEMBER)],
    );
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["AccessKeyLeakList"][0]["AccesskeyId"],
        "LTAI5tMEMBERMEMBERMEMB01"
    );
    let (status, detail) = h.call(
        SAS,
        "DescribeAccessKeyLeakDetail",
        &[("Id", "389357"), ("ResourceDirectoryAccountId", MEMBER)],
    );
    assert_eq!(
        (status, detail["AccesskeyId"].as_str()),
        (200, Some("LTAI5tMEMBERMEMBERMEMB01"))
    );
    assert_eq!(
        code(&h.call(
            SAS,
            "DescribeAccesskeyLeakList",
            &[("ResourceDirectoryAccountId", "9999999999999999")]
        )),
        (400, "InvalidParameter".into())
    );
}
