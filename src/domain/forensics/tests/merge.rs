//! Merging passes, and the caps that keep a noisy key's findings small.

use super::super::{AuditFindings, MAX_LISTED, MAX_SOURCE_IPS, MAX_TRACKED_EVENTS};
use super::support::*;

#[test]
fn a_later_pass_adds_only_events_not_seen_before() {
    let all = attack();
    let first = AuditFindings::from_events(LEAKED, &all[..6], &known());
    let second = AuditFindings::from_events(LEAKED, &all[3..], &known());
    let merged = first.merge(second);
    assert_eq!(merged.passes, 2);
    assert_eq!(merged.pass_fingerprints.len(), 2);
    assert_eq!(
        without_passes(merged),
        without_passes(AuditFindings::from_events(LEAKED, &all, &known()))
    );
}

#[test]
fn merging_is_idempotent_and_order_independent() {
    let all = attack();
    let first = AuditFindings::from_events(LEAKED, &all[..6], &known());
    let second = AuditFindings::from_events(LEAKED, &all[3..], &known());
    let merged = first.clone().merge(second.clone());
    assert_eq!(second.clone().merge(first.clone()), merged);
    assert_eq!(merged.clone().merge(second.clone()), merged);
    assert_eq!(merged.clone().merge(merged.clone()), merged);
    assert_eq!(first.clone().merge(first.clone()), first);
    assert_eq!(AuditFindings::default().merge(first.clone()), first);
}

#[test]
fn passes_with_different_known_cidrs_keep_an_address_unknown() {
    let events = attack();
    let with_office = AuditFindings::from_events(LEAKED, &events, &known());
    let without = AuditFindings::from_events(LEAKED, &events, &[]);
    let merged = with_office.merge(without);
    assert!(merged.source_ips.iter().all(|ip| !ip.known));
}

#[test]
fn long_lists_keep_the_earliest_entries_and_count_the_rest() {
    let one_ip = |_| ATTACKER.to_owned();
    let first = AuditFindings::from_events(LEAKED, &noisy(0..600, one_ip), &known());
    assert_eq!(first.write_events.items.len(), MAX_LISTED);
    assert_eq!(
        (first.write_events.truncated, first.write_events.total()),
        (100, 600)
    );
    assert_eq!(
        first.write_events.items[0].event_id,
        "5C1E0B0A-0000-4B1E-9A6C-4E1F8B2C0000"
    );

    let second = AuditFindings::from_events(LEAKED, &noisy(300..700, one_ip), &known());
    let merged = first.clone().merge(second.clone());
    assert_eq!(merged.events_examined, 700);
    assert_eq!(merged.write_events.items.len(), MAX_LISTED);
    assert_eq!(merged.write_events.total(), 700);
    assert_eq!(merged.clone().merge(second.clone()), merged);
    assert_eq!(second.merge(first), merged);
}

#[test]
fn calls_beyond_the_tracking_bounds_are_counted_without_ids() {
    let events = noisy(0..MAX_TRACKED_EVENTS as u32 + 2, |n| {
        format!("198.51.{}.{}", n / 4 / 256, n / 4 % 256)
    });
    let findings = AuditFindings::from_events(LEAKED, &events, &known());
    assert_eq!(findings.events_examined, MAX_TRACKED_EVENTS as u64 + 2);
    assert_eq!(findings.source_ips.len(), MAX_SOURCE_IPS);
    assert!(findings.summary().starts_with("5002 calls from 1000+ IPs"));
    assert_eq!(
        findings.events_from_unlisted_ips,
        MAX_TRACKED_EVENTS as u64 + 2 - 4_000
    );
    let tracked: usize = findings
        .source_ips
        .iter()
        .map(|ip| ip.event_ids.len())
        .sum();
    assert_eq!(tracked, 4_000);
    assert_eq!(findings.clone().merge(findings.clone()), findings);

    let one_ip = noisy(0..MAX_TRACKED_EVENTS as u32 + 2, |_| ATTACKER.to_owned());
    let findings = AuditFindings::from_events(LEAKED, &one_ip, &known());
    let ip = &findings.source_ips[0];
    assert_eq!(
        (ip.event_ids.len(), ip.untracked_calls, ip.calls),
        (MAX_TRACKED_EVENTS, 2, MAX_TRACKED_EVENTS as u64 + 2)
    );
    assert_eq!(findings.clone().merge(findings.clone()), findings);
}
