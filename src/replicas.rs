//! This daemon as one replica among several on one database: it registers itself, sends a
//! heartbeat, and warns when the live replicas disagree on the version, the Alibaba Cloud
//! account or the settings that decide what akguard does to it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::store::{Replica, Store, StoreError};

/// How often a replica records its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A replica heard from within this window is live (the status API lists it).
pub const LIVE_WITHIN: Duration = Duration::from_secs(60);
/// Replicas compared with this one: heard from within three heartbeats, so a replica that
/// was just replaced (a restart with new settings) is not mistaken for a live one.
const COMPARED_WITHIN: Duration = Duration::from_secs(15);

/// Who this daemon is among the replicas.
#[derive(Clone)]
pub struct ReplicaIdentity {
    pub id: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    /// A hash per settings section replicas must agree on (see [`config_digest`]).
    pub config_digest: String,
    /// The Alibaba Cloud account, once the worker has learned it from STS.
    pub account: Arc<OnceLock<String>>,
}

impl ReplicaIdentity {
    /// `deny_policy` is the Deny policy document as loaded, which the settings only name
    /// by file.
    pub fn new(settings: &Settings, deny_policy: &str) -> Self {
        let nonce = crate::cloud::sign::fresh_nonce();
        Self {
            id: format!("r-{}", &nonce[..12]),
            host: host_name(),
            started_at: Utc::now(),
            config_digest: config_digest(settings, deny_policy),
            account: Arc::new(OnceLock::new()),
        }
    }

    fn row(&self, now: DateTime<Utc>) -> Replica {
        Replica {
            id: self.id.clone(),
            host: self.host.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_at: self.started_at,
            heartbeat_at: now,
            account_id: self.account.get().cloned(),
            config_digest: self.config_digest.clone(),
        }
    }

    /// Registers the replica now, so the status API lists it from the start.
    pub async fn register(&self, store: &dyn Store) -> Result<(), StoreError> {
        store.record_replica(&self.row(Utc::now())).await
    }

    /// Records a heartbeat every [`HEARTBEAT_EVERY`] until `shutdown`, warning once about
    /// each live replica that disagrees with this one; then removes the replica's row.
    pub async fn heartbeat(self, store: Arc<dyn Store>, shutdown: CancellationToken) {
        let mut warned = BTreeSet::new();
        loop {
            let now = Utc::now();
            if let Err(err) = store.record_replica(&self.row(now)).await {
                tracing::warn!(error = %err, "cannot record this replica's heartbeat");
            }
            let since = now - chrono::Duration::from_std(COMPARED_WITHIN).unwrap_or_default();
            match store.replicas_since(since).await {
                Ok(live) => self.compare(&live, &mut warned),
                Err(err) => tracing::warn!(error = %err, "cannot list the live replicas"),
            }
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                () = shutdown.cancelled() => break,
            }
        }
        if let Err(err) = store.remove_replica(&self.id).await {
            tracing::warn!(error = %err, "cannot remove this replica's row; it lapses in a minute");
        }
    }

    /// Warns about each live replica that runs another version, acts in another account or
    /// has other settings; once per replica and difference.
    fn compare(&self, live: &[Replica], warned: &mut BTreeSet<(String, String)>) {
        let me = self.row(Utc::now());
        for other in live.iter().filter(|r| r.id != self.id) {
            for difference in differences(&me, other) {
                if warned.insert((other.id.clone(), difference.clone())) {
                    tracing::warn!(
                        replica.id = %other.id,
                        replica.host = %other.host,
                        difference = %difference,
                        "this replica differs from a live replica on the same database: {difference}; \
                         replicas must share the account and the settings"
                    );
                }
            }
        }
    }
}

/// What differs between two replicas, in words; never a secret (only names and hashes).
fn differences(me: &Replica, other: &Replica) -> Vec<String> {
    let mut found = Vec::new();
    if me.version != other.version {
        found.push(format!(
            "version {} here, {} there",
            me.version, other.version
        ));
    }
    if let (Some(mine), Some(theirs)) = (&me.account_id, &other.account_id)
        && mine != theirs
    {
        found.push(format!("alibaba account {mine} here, {theirs} there"));
    }
    let mine: BTreeMap<String, String> =
        serde_json::from_str(&me.config_digest).unwrap_or_default();
    let theirs: BTreeMap<String, String> =
        serde_json::from_str(&other.config_digest).unwrap_or_default();
    let sections: BTreeSet<&String> = mine.keys().chain(theirs.keys()).collect();
    let differing: Vec<&str> = sections
        .into_iter()
        .filter(|s| mine.get(*s) != theirs.get(*s))
        .map(String::as_str)
        .collect();
    if !differing.is_empty() {
        found.push(format!("settings [{}] differ", differing.join("], [")));
    }
    found
}

/// A short hash of each settings section that decides what akguard does to the account
/// (`alibaba`, the remediation sections, `protect`, `containment`) and of the Deny policy
/// document itself (replicas on different hosts may read different files at one path), as a
/// JSON object.
/// Sections a replica may set for itself (listen address, database, log, console,
/// notifications) are left out. Secrets enter only as `[redacted]`.
pub fn config_digest(settings: &Settings, deny_policy: &str) -> String {
    let sections: [(&str, serde_json::Result<serde_json::Value>); 11] = [
        ("alibaba", serde_json::to_value(&settings.alibaba)),
        ("triage", serde_json::to_value(&settings.triage)),
        ("rotation", serde_json::to_value(&settings.rotation)),
        ("approvals", serde_json::to_value(&settings.approvals)),
        ("revoke", serde_json::to_value(&settings.revoke)),
        ("audit", serde_json::to_value(&settings.audit)),
        ("billing", serde_json::to_value(&settings.billing)),
        ("remediation", serde_json::to_value(&settings.remediation)),
        ("protect", serde_json::to_value(&settings.protect)),
        ("containment", serde_json::to_value(&settings.containment)),
        ("deny_policy", Ok(serde_json::Value::from(deny_policy))),
    ];
    let digest: BTreeMap<&str, String> = sections
        .into_iter()
        .map(|(name, value)| {
            let text = value.map(|v| v.to_string()).unwrap_or_default();
            (name, hex::encode(&Sha256::digest(text.as_bytes())[..6]))
        })
        .collect();
    serde_json::to_string(&digest).unwrap_or_default()
}

/// The host name the operating system reports (`gethostname`), or `unknown`.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the call writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(version: &str, account: Option<&str>, digest: &str) -> Replica {
        Replica {
            id: "r".into(),
            host: "h".into(),
            version: version.into(),
            started_at: Utc::now(),
            heartbeat_at: Utc::now(),
            account_id: account.map(str::to_owned),
            config_digest: digest.into(),
        }
    }

    #[test]
    fn differences_name_the_version_the_account_and_the_sections() {
        let me = replica("1.0.0", Some("111"), r#"{"alibaba":"aa","protect":"pp"}"#);
        let other = replica("1.1.0", Some("222"), r#"{"alibaba":"aa","protect":"qq"}"#);
        assert_eq!(
            differences(&me, &other),
            vec![
                "version 1.0.0 here, 1.1.0 there".to_owned(),
                "alibaba account 111 here, 222 there".to_owned(),
                "settings [protect] differ".to_owned(),
            ]
        );
        assert!(differences(&me, &me).is_empty());
    }

    #[test]
    fn the_host_name_is_the_one_the_system_reports() {
        let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(host_name(), expected.trim());
    }
}
