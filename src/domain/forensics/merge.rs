//! Folding a later pass into earlier findings. Events are recognized by id, so merging is
//! idempotent and order-independent; what was counted without ids merges as maxima.

use std::collections::BTreeMap;

use super::capped::{Listed, capped};
use super::source_ip::sorted_ips;
use super::{AuditFindings, Capped, SourceIp, earliest};

impl AuditFindings {
    /// Folds a later pass (the one after ActionTrail's ~10-minute lag) into this one. Events are
    /// recognized by `eventId`, so merging is idempotent and order-independent: folding in a
    /// pass already folded in changes nothing.
    pub fn merge(self, other: AuditFindings) -> AuditFindings {
        let mut ips: BTreeMap<String, SourceIp> = BTreeMap::new();
        for ip in self.source_ips.into_iter().chain(other.source_ips) {
            let merged = match ips.remove(&ip.ip) {
                Some(seen) => seen.merge(ip),
                None => ip,
            };
            ips.insert(merged.ip.clone(), merged);
        }
        let source_ips = sorted_ips(ips);
        let events_from_unlisted_ips = self
            .events_from_unlisted_ips
            .max(other.events_from_unlisted_ips);
        let mut pass_fingerprints = self.pass_fingerprints;
        pass_fingerprints.extend(other.pass_fingerprints);
        pass_fingerprints.sort();
        pass_fingerprints.dedup();
        let events_examined =
            source_ips.iter().map(|ip| ip.calls).sum::<u64>() + events_from_unlisted_ips;
        let failed_calls = merge_capped(self.failed_calls, other.failed_calls);
        AuditFindings {
            events_examined,
            passes: u32::try_from(pass_fingerprints.len()).unwrap_or(u32::MAX),
            source_ips,
            events_from_unlisted_ips,
            write_events: merge_capped(self.write_events, other.write_events),
            resources_created: merge_capped(self.resources_created, other.resources_created),
            resources_deleted: merge_capped(self.resources_deleted, other.resources_deleted),
            identity_changes: merge_capped(self.identity_changes, other.identity_changes),
            refused_by_leak_protection: merge_capped(
                self.refused_by_leak_protection,
                other.refused_by_leak_protection,
            ),
            succeeded: events_examined.saturating_sub(failed_calls.total()),
            failed_calls,
            users_created: merge_capped(self.users_created, other.users_created),
            keys_created: merge_capped(self.keys_created, other.keys_created),
            pass_fingerprints,
        }
    }
}

fn merge_capped<T: Listed>(a: Capped<T>, b: Capped<T>) -> Capped<T> {
    // Left-out entries have no ids to compare, so once either side is truncated the total is
    // only known to be at least the larger one.
    let exact = a.truncated == 0 && b.truncated == 0;
    let at_least = a.total().max(b.total());
    let mut items = a.items;
    items.extend(b.items);
    let mut merged = capped(items);
    if !exact {
        merged.truncated = at_least.max(merged.total()) - merged.items.len() as u64;
    }
    merged
}

impl SourceIp {
    fn merge(self, other: SourceIp) -> SourceIp {
        let mut event_ids = self.event_ids;
        event_ids.extend(other.event_ids);
        event_ids.sort();
        event_ids.dedup();
        // Untracked calls have no ids to compare; the larger count is the safe lower bound.
        let untracked_calls = self.untracked_calls.max(other.untracked_calls);
        SourceIp {
            ip: self.ip,
            first_seen: earliest(self.first_seen, other.first_seen),
            last_seen: self.last_seen.max(other.last_seen),
            calls: event_ids.len() as u64 + untracked_calls,
            // Passes could have used different known CIDRs: stay alarmed if either was.
            known: self.known && other.known,
            event_ids,
            untracked_calls,
        }
    }
}
