//! Hostile text in ActionTrail events: the attacker names users, resources and parameters, and
//! none of it may reach the findings unclean.

use serde_json::{Value, json};

use super::super::AuditFindings;
use super::support::*;
use crate::domain::text::{MAX_FOREIGN, is_unsafe};
use crate::hostile::hostile_strings;

/// Events in which the attacker chose `name` wherever ActionTrail would copy it.
fn events_naming(name: &str) -> Vec<Value> {
    vec![
        with(
            event(1, "2024-05-01T02:00:00Z", "CreateUser", name),
            json!({
                "requestParameters": { "UserName": name },
                "responseElements": { "User": { "UserName": name } },
                "acsRegion": name,
            }),
        ),
        with(
            event(2, "2024-05-01T02:01:00Z", "CreateAccessKey", ATTACKER),
            json!({
                "requestParameters": { "UserName": name },
                "responseElements": { "AccessKey": { "AccessKeyId": name } },
            }),
        ),
        with(
            event(3, "2024-05-01T02:02:00Z", "RunInstances", ATTACKER),
            json!({
                "referencedResources": { name: [name], "ACS::ECS::Instance": name },
                "errorCode": null,
            }),
        ),
        with(
            event(4, "2024-05-01T02:03:00Z", "DeleteVpc", ATTACKER),
            json!({ "resourceType": name, "resourceName": name }),
        ),
        with(
            event(5, "2024-05-01T02:04:00Z", "AttachPolicyToUser", ATTACKER),
            json!({
                "requestParameters": { "PolicyName": name, "UserName": name },
                "errorCode": name,
                "serviceName": "Ram",
            }),
        ),
    ]
}

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(fields) => fields.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings_in(v, out);
        }),
        _ => {}
    }
}

#[test]
fn hostile_names_in_events_reach_the_findings_cleaned_and_capped() {
    for name in hostile_strings() {
        let findings = AuditFindings::from_events(LEAKED, &events_naming(&name), &known());
        assert_eq!(findings.events_examined, 5, "{name:?}");
        let mut kept = Vec::new();
        strings_in(&serde_json::to_value(&findings).unwrap(), &mut kept);
        for s in kept {
            assert!(!s.chars().any(is_unsafe), "{name:?} left {s:?}");
            assert!(
                s.chars().count() <= MAX_FOREIGN,
                "{name:?} left {} chars",
                s.len()
            );
        }
    }
}
