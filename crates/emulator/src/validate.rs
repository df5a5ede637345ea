//! Consistency checks on a scenario, so a bad file fails at load with a message naming the entry
//! rather than producing odd answers later.

use std::collections::HashSet;

use super::error::EmulatorError;
use super::scenario::{PolicyType, Scenario};
use super::when::{When, resolve_cycle};

impl Scenario {
    /// Checks uniqueness, references between entries, and value ranges.
    pub(crate) fn validate(&self) -> Result<(), EmulatorError> {
        let fail = |message: String| Err(EmulatorError::InvalidScenario(message));
        if self.account.uid.is_empty() || !self.account.uid.bytes().all(|b| b.is_ascii_digit()) {
            return fail(format!("account.uid `{}` must be digits", self.account.uid));
        }
        let mut key_ids = HashSet::new();
        let mut check_key = |id: &str, secret: &str| {
            if id.is_empty() || secret.is_empty() {
                return Err(format!("access key `{id}` needs an id and a secret"));
            }
            if !key_ids.insert(id.to_string()) {
                return Err(format!("access key `{id}` appears twice"));
            }
            Ok(())
        };
        for key in &self.account.access_keys {
            check_key(&key.id, &key.secret).or_else(fail)?;
        }
        let mut user_names = HashSet::new();
        for user in &self.users {
            if user.name.is_empty() || !user_names.insert(user.name.as_str()) {
                return fail(format!("user `{}` is empty or appears twice", user.name));
            }
            if user.access_keys.len() > 2 {
                return fail(format!(
                    "user `{}` holds more than 2 access keys",
                    user.name
                ));
            }
            for key in &user.access_keys {
                check_key(&key.id, &key.secret).or_else(fail)?;
            }
            for attached in &user.policies {
                let defined = self.policies.iter().any(|p| p.name == attached.name);
                if attached.policy_type == PolicyType::Custom && !defined {
                    return fail(format!(
                        "user `{}` has custom policy `{}`, which `policies` does not define",
                        user.name, attached.name
                    ));
                }
            }
        }
        for cred in &self.temporary_credentials {
            check_key(&cred.access_key_id, &cred.secret).or_else(fail)?;
        }
        let mut policy_names = HashSet::new();
        for policy in &self.policies {
            if !policy_names.insert(policy.name.as_str()) {
                return fail(format!("policy `{}` appears twice", policy.name));
            }
            if policy.versions.is_empty() || policy.versions.len() > 5 {
                return fail(format!("policy `{}` needs 1 to 5 versions", policy.name));
            }
            if !policy
                .versions
                .iter()
                .any(|v| v.id == policy.default_version)
            {
                return fail(format!(
                    "policy `{}`: default version `{}` is not among its versions",
                    policy.name, policy.default_version
                ));
            }
            for version in &policy.versions {
                if serde_json::from_str::<serde_json::Value>(&version.document).is_err() {
                    return fail(format!(
                        "policy `{}` version `{}`: the document is not JSON",
                        policy.name, version.id
                    ));
                }
            }
        }
        let mut role_arns = HashSet::new();
        for role in &self.roles {
            let prefix = format!("acs:ram::{}:role/", self.account.uid);
            if !role.arn.starts_with(&prefix) || role.name().is_empty() {
                return fail(format!("role `{}` must look like `{prefix}NAME`", role.arn));
            }
            if !role_arns.insert(role.arn.to_ascii_lowercase()) || role.duration_secs == 0 {
                return fail(format!("role `{}` appears twice or lasts 0 s", role.arn));
            }
        }
        if let Some(metadata) = &self.metadata {
            if !self.roles.iter().any(|r| r.name() == metadata.role) {
                return fail(format!(
                    "metadata.role `{}` is not a role in `roles`",
                    metadata.role
                ));
            }
        }
        for (i, event) in self.events.iter().enumerate() {
            let time = event.get("eventTime").and_then(|t| t.as_str());
            if time.is_none_or(|t| When::parse(t).is_err()) {
                return fail(format!(
                    "events[{i}] needs an eventTime (RFC 3339 or \"-2h\")"
                ));
            }
        }
        let some_day = chrono::DateTime::UNIX_EPOCH;
        for cycle in self.billing.overview.keys() {
            if resolve_cycle(cycle, some_day).is_none() {
                return fail(format!(
                    "billing cycle `{cycle}` must be YYYY-MM, current or current-N"
                ));
            }
        }
        let mut secret_names = HashSet::new();
        for secret in &self.secrets {
            let mut versions = HashSet::new();
            if !secret_names.insert(secret.name.as_str())
                || secret.versions.is_empty()
                || !secret
                    .versions
                    .iter()
                    .all(|v| versions.insert(&v.version_id))
            {
                return fail(format!(
                    "secret `{}` appears twice, has no versions or repeats a version id",
                    secret.name
                ));
            }
        }
        let mut leak_ids = HashSet::new();
        for leak in &self.leaks {
            if !leak_ids.insert(leak.id) {
                return fail(format!("leak record {} appears twice", leak.id));
            }
            if !matches!(leak.status.as_str(), "pending" | "dealed")
                || !matches!(leak.user_type.as_str(), "ram" | "master")
            {
                return fail(format!(
                    "leak record {}: status must be pending|dealed and user_type ram|master",
                    leak.id
                ));
            }
        }
        if let Some(workload) = &self.workload {
            if self.find_key(&workload.access_key_id).is_none() || workload.interval_ms == 0 {
                return fail(format!(
                    "workload: access key `{}` must exist and interval_ms be above 0",
                    workload.access_key_id
                ));
            }
            if !secret_names.contains(workload.secret_name.as_str()) {
                return fail(format!(
                    "workload: secret `{}` is not in `secrets`",
                    workload.secret_name
                ));
            }
        }
        let mut uids = HashSet::from([self.account.uid.as_str()]);
        for member in &self.members {
            if !uids.insert(member.account.uid.as_str()) {
                return fail(format!(
                    "member account `{}` appears twice",
                    member.account.uid
                ));
            }
            if !member.members.is_empty() {
                return fail(format!(
                    "member account `{}` has members of its own",
                    member.account.uid
                ));
            }
            member.validate()?;
        }
        self.faults
            .validate()
            .map_err(EmulatorError::InvalidScenario)
    }
}
