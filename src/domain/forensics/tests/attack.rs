//! The attack scenario end to end: what was found, and how it is stored.

use super::super::{AuditFindings, CreatedKey};
use super::support::*;

#[test]
fn an_attack_is_summarized_call_by_call() {
    let findings = AuditFindings::from_events(LEAKED, &attack(), &known());

    assert_eq!(findings.events_examined, 9);
    assert_eq!(findings.passes, 1);
    assert_eq!(
        findings.summary(),
        "9 calls from 3 IPs (2 unknown), 6 write events, 4 resources created, \
         1 user and 1 key created, 1 call refused by leak protection"
    );

    let ips: Vec<(&str, u64, bool)> = findings
        .source_ips
        .iter()
        .map(|ip| (ip.ip.as_str(), ip.calls, ip.known))
        .collect();
    assert_eq!(
        ips,
        [
            (OFFICE, 1, true),
            (ATTACKER, 6, false),
            (EXIT_NODE, 2, false)
        ]
    );
    let attacker = &findings.source_ips[1];
    assert_eq!(attacker.first_seen, at("2024-05-01T01:00:00Z"));
    assert_eq!(attacker.last_seen, at("2024-05-01T03:02:00Z"));

    let writes: Vec<&str> = findings
        .write_events
        .items
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        writes,
        [
            "CreateUser",
            "CreateAccessKey",
            "AttachPolicyToUser",
            "AuthorizeSecurityGroup",
            "RunInstances",
            "CreateUser"
        ]
    );
    let refused = &findings.write_events.items[5];
    assert_eq!(refused.error_code.as_deref(), Some("Forbidden"));
    assert_eq!(refused.source_ip.as_deref(), Some(EXIT_NODE));
    assert_eq!(
        findings.write_events.items[4].region.as_deref(),
        Some("ap-southeast-1")
    );
    assert_eq!(
        findings.write_events.items[4].service.as_deref(),
        Some("Ecs")
    );

    let created: Vec<(&str, &str, Vec<&str>)> = findings
        .resources_created
        .items
        .iter()
        .map(|r| {
            let ids = r.ids.iter().map(String::as_str).collect();
            (r.event_name.as_str(), r.kind.as_str(), ids)
        })
        .collect();
    assert_eq!(
        created,
        [
            ("CreateUser", "ACS::RAM::User", vec!["svc-backup"]),
            (
                "CreateAccessKey",
                "ACS::RAM::AccessKey",
                vec!["LTAI5tBkD00rSvcBackup3Zq"]
            ),
            (
                "RunInstances",
                "ACS::ECS::Instance",
                vec!["i-t4nfm1x0a2b3c4d5e6f7", "i-t4nfm1x0a2b3c4d5e6f8"]
            ),
        ]
    );
    assert!(findings.resources_deleted.items.is_empty());

    let identity: Vec<_> = findings
        .identity_changes
        .items
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.user_name.as_deref(),
                c.policy_name.as_deref(),
                c.error_code.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        identity,
        [
            ("CreateUser", Some("svc-backup"), None, None),
            ("CreateAccessKey", Some("svc-backup"), None, None),
            (
                "AttachPolicyToUser",
                Some("svc-backup"),
                Some("AdministratorAccess"),
                None
            ),
            ("CreateUser", Some("svc-backup2"), None, Some("Forbidden")),
        ]
    );

    assert_eq!(findings.refused_by_leak_protection.total(), 1);
    assert_eq!(
        findings.succeeded + findings.failed_calls.total(),
        findings.events_examined
    );
    assert_eq!(
        findings.refused_by_leak_protection.items[0].event_id,
        "5C1E0B0A-0011-4B1E-9A6C-4E1F8B2C0011"
    );
    let users: Vec<Option<&str>> = findings
        .users_created
        .items
        .iter()
        .map(|u| u.user_name.as_deref())
        .collect();
    assert_eq!(users, [Some("svc-backup")]);
    assert_eq!(
        findings.keys_created(),
        [CreatedKey {
            access_key_id: Some("LTAI5tBkD00rSvcBackup3Zq".into()),
            user_name: Some("svc-backup".into()),
            time: at("2024-05-01T02:01:00Z"),
            event_id: "5C1E0B0A-0004-4B1E-9A6C-4E1F8B2C0004".into(),
        }]
    );
}

#[test]
fn a_new_keys_secret_never_reaches_the_findings() {
    let findings = AuditFindings::from_events(LEAKED, &attack(), &known());
    let stored = serde_json::to_string(&findings).unwrap();
    assert!(stored.contains("LTAI5tBkD00rSvcBackup3Zq"));
    assert!(!stored.contains(NEW_SECRET));
    assert!(!stored.contains("AccessKeySecret"));
    assert!(!format!("{findings:?}").contains(NEW_SECRET));
}

#[test]
fn findings_survive_a_json_round_trip_in_snake_case() {
    let findings = AuditFindings::from_events(LEAKED, &attack(), &known());
    let stored = serde_json::to_value(&findings).unwrap();
    assert_eq!(stored["events_examined"], 9);
    assert_eq!(
        stored["source_ips"][0]["first_seen"],
        "2024-04-11T09:00:00Z"
    );
    assert_eq!(stored["write_events"]["truncated"], 0);
    assert_eq!(stored["write_events"]["items"][0]["name"], "CreateUser");
    assert_eq!(
        stored["keys_created"]["items"][0]["access_key_id"],
        "LTAI5tBkD00rSvcBackup3Zq"
    );
    assert!(
        stored["write_events"]["items"][0]
            .get("error_code")
            .is_none()
    );
    let back: AuditFindings = serde_json::from_value(stored).unwrap();
    assert_eq!(back, findings);
    assert_eq!(
        serde_json::from_str::<AuditFindings>("{}").unwrap(),
        AuditFindings::default()
    );
}

#[test]
fn the_checklist_names_every_artefact_of_a_successful_call() {
    let findings = AuditFindings::from_events(LEAKED, &attack(), &known());
    let items = findings.checklist();
    let text = items.join("\n");
    assert!(text.contains("RAM user svc-backup"), "{text}");
    assert!(text.contains("AccessKey "), "{text}");
    assert!(
        text.contains("policy AdministratorAccess attached to svc-backup"),
        "{text}"
    );
    assert!(text.contains("ACS::ECS::Instance"), "{text}");
    // The refused second CreateUser made nothing.
    assert_eq!(text.matches("RAM user").count(), 1, "{text}");
}
