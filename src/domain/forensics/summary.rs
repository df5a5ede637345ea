//! The one-line summary of findings, for humans.

use super::{AuditFindings, Capped, ResourceChange};

impl AuditFindings {
    /// One line for humans, e.g. "12 calls from 3 IPs (2 unknown), 4 write events, 2 resources
    /// created, 1 user and 1 key created, 1 call refused by leak protection".
    pub fn summary(&self) -> String {
        let unknown = self.source_ips.iter().filter(|ip| !ip.known).count();
        let ips = match self.events_from_unlisted_ips {
            0 => plural(self.source_ips.len() as u64, "IP"),
            _ => format!("{}+ IPs", self.source_ips.len()),
        };
        let deleted = match resource_count(&self.resources_deleted) {
            0 => String::new(),
            n => format!(", {n} deleted"),
        };
        format!(
            "{} from {ips} ({unknown} unknown), {}, {} created{deleted}, {} and {} created, {} \
             refused by leak protection",
            plural(self.events_examined, "call"),
            plural(self.write_events.total(), "write event"),
            plural(resource_count(&self.resources_created), "resource"),
            plural(self.users_created.total(), "user"),
            plural(self.keys_created.total(), "key"),
            plural(self.refused_by_leak_protection.total(), "call"),
        )
    }
}

/// Resources named across entries; an entry that names none counts as one, as do left-out ones.
fn resource_count(changes: &Capped<ResourceChange>) -> u64 {
    let listed: usize = changes.items.iter().map(|c| c.ids.len().max(1)).sum();
    listed as u64 + changes.truncated
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
