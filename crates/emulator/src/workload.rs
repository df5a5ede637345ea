//! A simulated workload: a service that keeps using its AccessKey and re-reads the KMS secret
//! it takes credentials from, switching to a newly delivered key once that key works. It is
//! what lets a rehearsal (and `akguard demo`) show a rotation's cutover without a person.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use super::network::{self, Source};
use super::scenario::{KeyStatus, Scenario};
use super::state::Shared;
use super::when::When;

/// The scenario's `workload` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// The key the workload uses now; the emulator rewrites it when the workload switches,
    /// so `/_emulator/state` shows which key is live.
    pub access_key_id: String,
    /// The KMS secret whose `ACSCurrent` version holds `{"AccessKeyId", "AccessKeySecret"}`.
    pub secret_name: String,
    /// How often the workload calls Alibaba Cloud and re-reads its secret.
    #[serde(default = "default_interval_ms")]
    pub interval_ms: u64,
    /// Where its calls come from, for network access policies (loopback when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The VPC its calls come from; unset: over the internet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_vpc: Option<String>,
}

impl Workload {
    fn source(&self) -> Source {
        Source {
            address: self.source_ip.unwrap_or(Source::default().address),
            vpc: self.source_vpc.clone(),
        }
    }
}

fn default_interval_ms() -> u64 {
    500
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Delivered {
    access_key_id: String,
    access_key_secret: String,
}

/// Ticks until `shutdown`; does nothing when the scenario has no workload.
pub(crate) async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(interval_ms) = shared.lock().world.workload.as_ref().map(|w| w.interval_ms) else {
        return;
    };
    let mut ticks = tokio::time::interval(Duration::from_millis(interval_ms));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = shared.clock.now();
        tick(&mut shared.lock().world, now);
    }
}

/// One round of work: adopt a newly delivered key that works, then use whichever key is live.
pub(crate) fn tick(world: &mut Scenario, now: DateTime<Utc>) {
    let Some(workload) = &world.workload else {
        return;
    };
    let delivered = world
        .secrets
        .iter()
        .find(|s| s.name == workload.secret_name)
        .and_then(|s| {
            s.versions
                .iter()
                .find(|v| v.stages.iter().any(|st| st == "ACSCurrent"))
        })
        .and_then(|v| serde_json::from_str::<Delivered>(&v.data).ok());
    if let Some(new) = delivered
        && new.access_key_id != workload.access_key_id
        && works(world, &new, &workload.source())
    {
        tracing::info!(from = %workload.access_key_id, to = %new.access_key_id, "workload switched keys");
        if let Some(w) = &mut world.workload {
            w.access_key_id = new.access_key_id;
        }
    }
    let Some((live, source)) = world
        .workload
        .as_ref()
        .map(|w| (w.access_key_id.clone(), w.source()))
    else {
        return;
    };
    if network::admit(world, &live, &source).is_err() {
        tracing::debug!(access_key_id = %live, "workload's calls are refused by a network policy");
        return;
    }
    match world.key_mut(&live) {
        Some(key) if key.status == KeyStatus::Active => {
            key.last_used = Some(When::At(now));
        }
        // A workload whose key was disabled or deleted under it fails its calls; nothing is used.
        _ => tracing::debug!(access_key_id = %live, "workload's key does not work"),
    }
}

/// Whether a delivered key exists, is active, admits the workload's address and carries
/// the secret that was delivered.
fn works(world: &Scenario, delivered: &Delivered, source: &Source) -> bool {
    if network::admit(world, &delivered.access_key_id, source).is_err() {
        return false;
    }
    world
        .find_key(&delivered.access_key_id)
        .is_some_and(|(_, key)| {
            key.status == KeyStatus::Active
                && bool::from(
                    key.secret
                        .as_bytes()
                        .ct_eq(delivered.access_key_secret.as_bytes()),
                )
        })
}
