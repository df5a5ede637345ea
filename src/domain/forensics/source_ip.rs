//! Where a key was used from: one tally per source address, with the ids of the calls counted.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{earliest, time_order};
use crate::domain::cidr::Cidr;

/// One address (or service name) the key was used from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceIp {
    /// As ActionTrail wrote it: an address, or a service such as `ecs.aliyuncs.com`; empty
    /// when the events had none.
    pub ip: String,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub calls: u64,
    /// Inside one of the operator's known CIDRs. Service names and unreadable addresses are not.
    pub known: bool,
    /// Ids of the calls counted, so that a later pass does not count them again.
    pub event_ids: Vec<String>,
    /// Calls counted beyond `MAX_TRACKED_EVENTS`, without their ids.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub untracked_calls: u64,
}

impl SourceIp {
    pub(super) fn new(ip: &str, known: &[Cidr]) -> Self {
        let known = ip
            .parse::<IpAddr>()
            .is_ok_and(|addr| known.iter().any(|cidr| cidr.contains(addr)));
        Self {
            ip: ip.to_owned(),
            first_seen: None,
            last_seen: None,
            calls: 0,
            known,
            event_ids: Vec::new(),
            untracked_calls: 0,
        }
    }

    pub(super) fn record(&mut self, time: Option<DateTime<Utc>>, event_id: Option<String>) {
        self.first_seen = earliest(self.first_seen, time);
        self.last_seen = self.last_seen.max(time);
        match event_id {
            Some(id) => self.event_ids.push(id),
            None => self.untracked_calls += 1,
        }
        self.calls += 1;
    }
}

pub(super) fn sorted_ips(ips: BTreeMap<String, SourceIp>) -> Vec<SourceIp> {
    let mut ips: Vec<SourceIp> = ips.into_values().collect();
    for ip in &mut ips {
        ip.event_ids.sort();
    }
    ips.sort_by(|a, b| time_order(a.first_seen, &a.ip).cmp(&time_order(b.first_seen, &b.ip)));
    ips
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
