//! Reading events: which count, once each, from where, and when.

use serde_json::json;

use super::super::AuditFindings;
use super::support::*;

#[test]
fn events_made_with_other_keys_are_ignored() {
    let mut unsigned = event(20, "2024-05-01T05:00:00Z", "DescribeInstances", ATTACKER);
    unsigned.as_object_mut().unwrap().remove("userIdentity");
    let other = with(
        event(21, "2024-05-01T05:00:00Z", "CreateUser", ATTACKER),
        json!({ "userIdentity": { "accessKeyId": "LTAI5tSomeoneElse000001" } }),
    );
    let findings = AuditFindings::from_events(LEAKED, &[unsigned, other], &known());
    assert_eq!(findings.events_examined, 0);
    assert!(findings.source_ips.is_empty() && findings.identity_changes.items.is_empty());
}

#[test]
fn an_event_listed_twice_in_one_pass_counts_once() {
    let first = event(1, "2024-05-01T01:00:00Z", "RunInstances", ATTACKER);
    let findings =
        AuditFindings::from_events(LEAKED, &[first.clone(), first.clone(), first], &known());
    assert_eq!(findings.events_examined, 1);
    assert_eq!(findings.source_ips[0].calls, 1);
    assert_eq!(findings.write_events.total(), 1);
    assert_eq!(findings.resources_created.total(), 1);
}

#[test]
fn only_addresses_inside_known_cidrs_are_known() {
    let events = [
        event(1, "2024-05-01T01:00:00Z", "DescribeInstances", "10.1.2.3"),
        event(
            2,
            "2024-05-01T01:01:00Z",
            "DescribeInstances",
            "::ffff:10.9.9.9",
        ),
        event(
            3,
            "2024-05-01T01:02:00Z",
            "DescribeInstances",
            "ecs.aliyuncs.com",
        ),
        event(
            4,
            "2024-05-01T01:03:00Z",
            "DescribeInstances",
            "10.1.2.3, 8.8.8.8",
        ),
        event(5, "2024-05-01T01:04:00Z", "DescribeInstances", "11.0.0.1"),
    ];
    let findings = AuditFindings::from_events(LEAKED, &events, &known());
    let known: Vec<(&str, bool)> = findings
        .source_ips
        .iter()
        .map(|ip| (ip.ip.as_str(), ip.known))
        .collect();
    assert_eq!(
        known,
        [
            ("10.1.2.3", true),
            ("::ffff:10.9.9.9", true),
            ("ecs.aliyuncs.com", false),
            ("10.1.2.3, 8.8.8.8", false),
            ("11.0.0.1", false),
        ]
    );
    let none = AuditFindings::from_events(LEAKED, &events, &[]);
    assert!(none.source_ips.iter().all(|ip| !ip.known));
}

#[test]
fn events_without_a_readable_time_count_but_do_not_move_first_or_last_seen() {
    let mut untimed = event(2, "", "DescribeInstances", ATTACKER);
    untimed.as_object_mut().unwrap().remove("eventTime");
    let events = [
        event(1, "2024-05-01T01:00:00Z", "DescribeInstances", ATTACKER),
        untimed,
        event(3, "yesterday", "RunInstances", ATTACKER),
        event(
            4,
            "2024-05-01T02:00:00+08:00",
            "DescribeInstances",
            ATTACKER,
        ),
        event(5, "soon", "DescribeInstances", EXIT_NODE),
    ];
    let findings = AuditFindings::from_events(LEAKED, &events, &known());
    assert_eq!(findings.events_examined, 5);
    let attacker = &findings.source_ips[0];
    assert_eq!(attacker.calls, 4);
    assert_eq!(attacker.first_seen, at("2024-04-30T18:00:00Z"));
    assert_eq!(attacker.last_seen, at("2024-05-01T01:00:00Z"));
    let exit = &findings.source_ips[1];
    assert_eq!(
        (exit.ip.as_str(), exit.first_seen, exit.last_seen),
        (EXIT_NODE, None, None)
    );
    assert_eq!(findings.write_events.items[0].time, None);
}

#[test]
fn no_events_make_an_empty_pass() {
    let findings = AuditFindings::from_events(LEAKED, &[], &known());
    assert_eq!(findings.passes, 1);
    assert_eq!(
        findings.summary(),
        "0 calls from 0 IPs (0 unknown), 0 write events, 0 resources created, \
         0 users and 0 keys created, 0 calls refused by leak protection"
    );
}
