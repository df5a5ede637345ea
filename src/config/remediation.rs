//! `[triage]`, `[revoke]`, `[audit]`, `[billing]` and `[remediation]`: how the worker handles
//! an incident.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::Errors;
use super::fence::{self, ContainmentSettings, FenceConfig};
use super::sinks::{OperatorSinkSettings, SinkPolicy};
use super::{ConfigError, values};
use crate::domain::{Cidr, Step};

/// The runbook's Deny policy, shipped in `config/policies/` and compiled in as the default.
const DEFAULT_DENY_POLICY: &str = include_str!("../../config/policies/deny-high-risk.json");
/// ActionTrail keeps events for 90 days.
const MAX_LOOKBACK: Duration = crate::domain::triage::ACTIONTRAIL_RETENTION;

#[derive(Debug, Deserialize, Serialize)]
pub struct TriageSettings {
    /// A key used within this long before the leak was detected is in use.
    #[serde(deserialize_with = "values::text_or_number")]
    pub in_use_window: String,
}

/// `[approvals]`: steps that wait for an operator's `approve` before they run.
#[derive(Debug, Deserialize, Serialize)]
pub struct ApprovalSettings {
    /// Step names (`delete_key`, `disable_old_key`, `rotate`, ...).
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub steps: Vec<String>,
    /// How long a step waits for approval; unset waits for ever.
    pub deadline: Option<String>,
    /// After the deadline: `proceed`, or `needs_attention`.
    pub on_deadline: OnDeadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDeadline {
    Proceed,
    NeedsAttention,
}

/// `[rotation]`: which users akguard rotates itself, and the timing of a cutover.
#[derive(Debug, Deserialize, Serialize)]
pub struct RotationSettings {
    #[serde(default)]
    pub users: Vec<RotationUser>,
    /// How long the old key must go unused before it is disabled.
    #[serde(deserialize_with = "values::text_or_number")]
    pub quiet_period: String,
    /// How often last-used data is read while waiting for the cutover.
    #[serde(deserialize_with = "values::text_or_number")]
    pub poll_interval: String,
    /// How long a disabled key may be re-enabled before it is deleted.
    #[serde(deserialize_with = "values::text_or_number")]
    pub disable_grace: String,
    /// Disable at once an active key that appeared on the user after the leak (the
    /// attacker's persistence, perhaps) instead of only reporting it.
    pub disable_unknown_keys: bool,
    /// Sinks `set-rotation` may name beyond those of `users`; none by default.
    #[serde(default)]
    pub operator_sinks: OperatorSinkSettings,
}

/// One `[[rotation.users]]` entry: where the user's workload reads its key.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct RotationUser {
    pub user: String,
    pub sink: SinkKind,
    pub secret_name: Option<String>,
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    Kms,
    File,
}

/// Where a new key is delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A KMS secret the workload reads (`PutSecretValue`).
    Kms { secret_name: String },
    /// A file the workload reads, written with mode 0600 and an atomic rename.
    File { path: PathBuf },
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RevokeSettings {
    pub policy_name: String,
    /// Detach the Deny policy once the leaked key is deleted (never before).
    pub detach_after_delete: bool,
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
    /// How long the first incident of an account waits for others to share its account-wide
    /// audit pass.
    #[serde(deserialize_with = "values::text_or_number")]
    pub batch_gather: String,
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

/// `[protect]`: identities akguard never acts on, besides its own.
#[derive(Debug, Deserialize, Serialize)]
pub struct ProtectSettings {
    /// RAM user names (break-glass users, other responders).
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub users: Vec<String>,
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub access_key_ids: Vec<String>,
}

/// Everything the worker needs, validated.
#[derive(Debug, Clone)]
pub struct RemediationConfig {
    pub workers: usize,
    pub dry_run: bool,
    pub lease: Duration,
    pub poll_interval: Duration,
    pub in_use_window: Duration,
    /// The users akguard rotates, with where each one's workload reads its key.
    pub rotation: Vec<(String, Sink)>,
    /// Which sinks a key may be delivered to.
    pub sinks: SinkPolicy,
    pub quiet_period: Duration,
    pub cutover_poll: Duration,
    pub disable_grace: Duration,
    pub detach_after_delete: bool,
    pub disable_unknown_keys: bool,
    pub approvals: Vec<Step>,
    pub approval_deadline: Option<Duration>,
    pub on_deadline: OnDeadline,
    pub policy_name: String,
    pub policy_document: String,
    pub known_cidrs: Vec<Cidr>,
    pub lookback: Duration,
    pub settle_delay: Duration,
    pub batch_gather: Duration,
    pub regions: Vec<String>,
    pub increase_threshold_percent: u32,
    /// `protect.users`, to which akguard adds its own identity at start.
    pub protect_users: Vec<String>,
    pub protect_access_key_ids: Vec<String>,
    /// The network fence for keys in use.
    pub fence: FenceConfig,
}

fn parse_duration(key: &str, raw: &str) -> Result<Duration, ConfigError> {
    values::parse(raw)
        .ok_or_else(|| ConfigError::invalid(key, "expected a duration such as 30s, 15m, 1h or 7d"))
}

/// Checks every setting of these sections; the error lists all that are invalid.
#[allow(clippy::too_many_arguments)]
pub(super) fn validate(
    triage: &TriageSettings,
    rotation: &RotationSettings,
    approvals: &ApprovalSettings,
    revoke: &RevokeSettings,
    audit: &AuditSettings,
    billing: &BillingSettings,
    remediation: &RemediationSettings,
    protect: &ProtectSettings,
    containment: &ContainmentSettings,
    region: &str,
    protected_dirs: Vec<PathBuf>,
) -> Result<RemediationConfig, ConfigError> {
    let mut errors = Errors::default();
    let mut duration = |key: &str, raw: &str| errors.take(parse_duration(key, raw));
    let lease = duration("remediation.lease", &remediation.lease);
    let poll_interval = duration("remediation.poll_interval", &remediation.poll_interval);
    let in_use_window = duration("triage.in_use_window", &triage.in_use_window);
    let quiet_period = duration("rotation.quiet_period", &rotation.quiet_period);
    let cutover_poll = duration("rotation.poll_interval", &rotation.poll_interval);
    let disable_grace = duration("rotation.disable_grace", &rotation.disable_grace);
    let lookback = duration("audit.lookback", &audit.lookback);
    let settle_delay = duration("audit.settle_delay", &audit.settle_delay);
    let batch_gather = duration("audit.batch_gather", &audit.batch_gather);
    let approval_deadline = approvals
        .deadline
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| duration("approvals.deadline", d));
    for (key, list) in [
        ("protect.users", &protect.users),
        ("protect.access_key_ids", &protect.access_key_ids),
    ] {
        if list.iter().any(|v| v.trim().is_empty()) {
            errors.push(ConfigError::invalid(key, "entries must not be empty"));
        }
    }
    if lease < Duration::from_secs(1) && !errors.covers("remediation.lease") {
        errors.push(ConfigError::invalid(
            "remediation.lease",
            "must be at least 1s",
        ));
    }
    if lookback > MAX_LOOKBACK {
        errors.push(ConfigError::invalid(
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
        errors.push(ConfigError::invalid(
            "revoke.policy_name",
            "1 to 128 letters, digits and '-', as RAM requires",
        ));
    }
    let policy_document = errors.take(policy_document(revoke));
    let known_cidrs = audit
        .known_cidrs
        .iter()
        .filter_map(|c| match c.parse() {
            Ok(cidr) => Some(cidr),
            Err(_) => {
                errors.push(ConfigError::invalid(
                    "audit.known_cidrs",
                    format!("`{c}` is not a CIDR block"),
                ));
                None
            }
        })
        .collect();
    let valid_known: Vec<String> = audit
        .known_cidrs
        .iter()
        .filter(|c| c.parse::<Cidr>().is_ok())
        .cloned()
        .collect();
    let fence = fence::validate(containment, &valid_known, &mut errors);
    let mut regions = if audit.regions.is_empty() {
        vec![region.to_owned()]
    } else {
        audit.regions.clone()
    };
    if !regions.contains(&audit.global_region) {
        regions.push(audit.global_region.clone());
    }
    let approvals_steps = approvals
        .steps
        .iter()
        .filter_map(|name| {
            if name == "disable_in_use_key" {
                // One name per step: the one the incident's state, findings and approvals use.
                errors.push(ConfigError::invalid(
                    "approvals.steps",
                    "`disable_in_use_key` is now called `disable_old_key`, the name the \
                     incident's state, findings and approvals use: write that instead",
                ));
                return None;
            }
            let step = Step::parse(name);
            if step.is_none() {
                let names: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
                errors.push(ConfigError::invalid(
                    "approvals.steps",
                    format!("`{name}` is not a step name; one of {}", names.join(", ")),
                ));
            }
            step
        })
        .collect();
    let rotation_sinks = sinks(rotation, &mut errors);
    let sink_policy = errors.take(SinkPolicy::new(
        &rotation.operator_sinks,
        &rotation_sinks,
        protected_dirs,
    ));
    errors.finish(RemediationConfig {
        workers: remediation.workers,
        dry_run: remediation.dry_run,
        lease,
        poll_interval,
        in_use_window,
        rotation: rotation_sinks,
        sinks: sink_policy,
        quiet_period,
        cutover_poll,
        disable_grace,
        detach_after_delete: revoke.detach_after_delete,
        disable_unknown_keys: rotation.disable_unknown_keys,
        approvals: approvals_steps,
        approval_deadline,
        on_deadline: approvals.on_deadline,
        policy_name: revoke.policy_name.clone(),
        policy_document,
        known_cidrs,
        lookback,
        settle_delay,
        batch_gather,
        regions,
        increase_threshold_percent: billing.increase_threshold_percent,
        protect_users: protect.users.iter().map(|u| u.trim().to_owned()).collect(),
        protect_access_key_ids: protect
            .access_key_ids
            .iter()
            .map(|k| k.trim().to_owned())
            .collect(),
        fence,
    })
}

/// The Deny policy document, compacted: RAM counts its characters against a 6,144 limit.
fn policy_document(revoke: &RevokeSettings) -> Result<String, ConfigError> {
    let key = "revoke.policy_file";
    let text = match &revoke.policy_file {
        Some(path) => std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            what: "revoke.policy_file",
            path: path.clone(),
            message: e.to_string(),
        })?,
        None => DEFAULT_DENY_POLICY.to_owned(),
    };
    let document: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ConfigError::invalid(key, format!("not JSON: {e}")))?;
    if !document["Statement"].is_array() {
        return Err(ConfigError::invalid(
            key,
            "a RAM policy needs a Statement list",
        ));
    }
    Ok(document.to_string())
}

/// Each listed user with its sink. A user's workload reads its key from one place, so a user
/// listed twice is an error even when both entries agree.
fn sinks(rotation: &RotationSettings, errors: &mut Errors) -> Vec<(String, Sink)> {
    let mut sinks: Vec<(String, Sink)> = Vec::new();
    for (i, entry) in rotation.users.iter().enumerate() {
        let key = |field: &str| format!("rotation.users[{i}].{field}");
        if let Some(first) = rotation.users.iter().position(|u| u.user == entry.user)
            && first < i
        {
            errors.push(ConfigError::invalid(
                key("user"),
                format!(
                    "`{}` is already listed at rotation.users[{first}]; list each user once, \
                     with the one sink its workload reads",
                    entry.user
                ),
            ));
            continue;
        }
        let sink = match entry.sink {
            SinkKind::Kms => match entry.secret_name.clone().filter(|n| !n.is_empty()) {
                Some(secret_name) => Sink::Kms { secret_name },
                None => {
                    errors.push(ConfigError::invalid(
                        key("secret_name"),
                        "required for a kms sink",
                    ));
                    continue;
                }
            },
            SinkKind::File => match entry.path.clone().filter(|p| p.is_absolute()) {
                Some(path) => Sink::File { path },
                None => {
                    errors.push(ConfigError::invalid(
                        key("path"),
                        "an absolute path is required for a file sink",
                    ));
                    continue;
                }
            },
        };
        sinks.push((entry.user.clone(), sink));
    }
    sinks
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
