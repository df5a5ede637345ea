//! `[triage]`, `[revoke]`, `[audit]`, `[billing]` and `[remediation]`: how the worker handles
//! an incident.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, values};
use crate::domain::Cidr;

/// The runbook's Deny policy, shipped in `config/policies/` and compiled in as the default.
const DEFAULT_DENY_POLICY: &str = include_str!("../../config/policies/deny-high-risk.json");
/// ActionTrail keeps events for 90 days.
const MAX_LOOKBACK: Duration = Duration::from_secs(90 * 86_400);

#[derive(Debug, Deserialize, Serialize)]
pub struct TriageSettings {
    /// A key used within this long before the leak was detected is in use.
    #[serde(deserialize_with = "values::text_or_number")]
    pub in_use_window: String,
    /// RAM users whose workloads can take a new key without a person (rotation follows).
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub rotatable_users: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RevokeSettings {
    pub policy_name: String,
    /// A Deny policy document of your own; the runbook's when unset.
    pub policy_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct AuditSettings {
    /// Source addresses that are yours: calls from elsewhere are flagged.
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub known_cidrs: Vec<String>,
    #[serde(deserialize_with = "values::text_or_number")]
    pub lookback: String,
    #[serde(deserialize_with = "values::text_or_number")]
    pub settle_delay: String,
    /// Regions to search; `alibaba.region` when empty.
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub regions: Vec<String>,
    /// Where RAM, IMS and other global events are stored.
    pub global_region: String,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct BillingSettings {
    pub increase_threshold_percent: u32,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RemediationSettings {
    /// Worker loops in this process; 0 records incidents without remediating them (for a
    /// process that only takes in notifications while others share the database and act).
    pub workers: usize,
    pub dry_run: bool,
    #[serde(deserialize_with = "values::text_or_number")]
    pub lease: String,
    #[serde(deserialize_with = "values::text_or_number")]
    pub poll_interval: String,
}

/// Everything the worker needs, validated.
#[derive(Debug, Clone)]
pub struct RemediationConfig {
    pub workers: usize,
    pub dry_run: bool,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub in_use_window: Duration,
    pub rotatable_users: Vec<String>,
    pub policy_name: String,
    pub policy_document: String,
    pub known_cidrs: Vec<Cidr>,
    pub lookback: Duration,
    pub settle_delay: Duration,
    pub regions: Vec<String>,
    pub increase_threshold_percent: u32,
}

fn parse_duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    values::parse(raw)
        .ok_or_else(|| ConfigError::invalid(key, "expected a duration such as 30s, 15m, 1h or 7d"))
}

pub(super) fn validate(
    triage: &TriageSettings,
    revoke: &RevokeSettings,
    audit: &AuditSettings,
    billing: &BillingSettings,
    remediation: &RemediationSettings,
    region: &str,
) -> Result<RemediationConfig, ConfigError> {
    let lease = parse_duration("remediation.lease", &remediation.lease)?;
    if lease < Duration::from_secs(1) {
        return Err(ConfigError::invalid(
            "remediation.lease",
            "must be at least 1s",
        ));
    }
    let lookback = parse_duration("audit.lookback", &audit.lookback)?;
    if lookback > MAX_LOOKBACK {
        return Err(ConfigError::invalid(
            "audit.lookback",
            "ActionTrail keeps events for at most 90d",
        ));
    }
    let name_ok = !revoke.policy_name.is_empty()
        && revoke.policy_name.len() <= 128
        && revoke
            .policy_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !name_ok {
        return Err(ConfigError::invalid(
            "revoke.policy_name",
            "1 to 128 letters, digits and '-', as RAM requires",
        ));
    }
    let policy_document = match &revoke.policy_file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| {
            ConfigError::invalid("revoke.policy_file", format!("{}: {e}", path.display()))
        })?,
        None => DEFAULT_DENY_POLICY.to_owned(),
    };
    let document: serde_json::Value = serde_json::from_str(&policy_document)
        .map_err(|e| ConfigError::invalid("revoke.policy_file", format!("not JSON: {e}")))?;
    if !document["Statement"].is_array() {
        return Err(ConfigError::invalid(
            "revoke.policy_file",
            "a RAM policy needs a Statement list",
        ));
    }
    let known_cidrs = audit
        .known_cidrs
        .iter()
        .map(|c| {
            c.parse().map_err(|_| {
                ConfigError::invalid("audit.known_cidrs", format!("`{c}` is not a CIDR block"))
            })
        })
        .collect::<Result<_, _>>()?;
    let mut regions = if audit.regions.is_empty() {
        vec![region.to_owned()]
    } else {
        audit.regions.clone()
    };
    if !regions.contains(&audit.global_region) {
        regions.push(audit.global_region.clone());
    }
    Ok(RemediationConfig {
        workers: remediation.workers,
        dry_run: remediation.dry_run,
        lease,
        poll_interval: parse_duration("remediation.poll_interval", &remediation.poll_interval)?,
        in_use_window: parse_duration("triage.in_use_window", &triage.in_use_window)?,
        rotatable_users: triage.rotatable_users.clone(),
        policy_name: revoke.policy_name.clone(),
        // Compact: RAM counts the document's characters against a 6,144 limit.
        policy_document: document.to_string(),
        known_cidrs,
        lookback,
        settle_delay: parse_duration("audit.settle_delay", &audit.settle_delay)?,
        regions,
        increase_threshold_percent: billing.increase_threshold_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_policy_denies_exactly_the_runbooks_actions() {
        let doc: serde_json::Value = serde_json::from_str(DEFAULT_DENY_POLICY).unwrap();
        let actions: Vec<&str> = doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .inspect(|s| assert_eq!(s["Effect"], "Deny"))
            .flat_map(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
            })
            .collect();
        assert_eq!(actions.len(), 39);
        for action in [
            "ram:CreateUser",
            "ram:CreateAccessKey",
            "ecs:DeleteInstances",
            "rds:DeleteDBInstance",
            "oss:DeleteBucket",
            "log:DeleteProject",
            "dysms:SendSms",
        ] {
            assert!(actions.contains(&action), "{action}");
        }
        assert!(serde_json::Value::to_string(&doc).len() < 6144);
    }
}
