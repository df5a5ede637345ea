//! The scenario file: the account, its users, keys, policies, trail, bills, secrets and leak
//! records the emulator starts from; `/_emulator/state` answers in the same schema.
//!
//! Schema (JSON, snake_case; unknown fields are rejected so typos surface at load):
//!
//! - `description`: free text.
//! - `account`: `uid`, `name` (the account name SAS shows as `AliUserName`), optional `alias`
//!   (used in user principal names, else the uid), `access_keys` (the root account's keys),
//!   `network_policy` (the account-level network access restriction policy, a JSON string).
//! - `users[]`: `name`, optional `id` (16 digits; derived from the name when absent),
//!   `display_name`, `comments`, `email`, `mobile_phone`, `create_date`, `update_date`,
//!   `last_login_date`, `login_profile` (`status` `Active` or `Inactive`, `mfa_bind_required`,
//!   `password_reset_required`, `create_date`; absent means no console logon), `mfa_device` (`serial_number`, `type`
//!   `VMFA`|`U2F`), `policies[]` (`name`, `type` `System`|`Custom`, `attach_date`),
//!   `access_keys[]`.
//! - An access key: `id`, `secret`, `status` `Active`|`Inactive`, `create_date`, `last_used`,
//!   `last_used_service` (e.g. `Ecs`), `leaked` (restrictive protection applies),
//!   `network_policy` (its own network access restriction policy, a JSON string; it takes
//!   precedence over the account's). A call's source address is the `x-emulator-source-ip`
//!   header (loopback without it), its VPC `x-emulator-source-vpc`.
//! - `policies[]`: custom policies: `name`, `description`, `create_date`, `update_date`,
//!   `default_version`, `versions[]` (`id` like `v1`, `document` as a JSON string or object,
//!   `create_date`). System policies need no entry: any name is a valid system policy.
//! - `roles[]`: assumable roles: `arn` (`acs:ram::<uid>:role/<name>`), optional `role_id`,
//!   `duration_secs` (the longest credential lifetime issued, default 3600).
//! - `metadata`: the ECS metadata service: `role` (a role name from `roles`), `imds_v2_only`.
//! - `events[]`: ActionTrail events as ActionTrail returns them (`eventTime`,
//!   `userIdentity.accessKeyId`, ...); `eventTime` may be an offset like `"-2h"`.
//! - `billing`: `account_name`, `balance` (`available_amount`, `available_cash_amount`,
//!   `credit_amount`, `mybank_credit_amount`, `quota_limit`, `currency`; strings),
//!   `overview` (billing cycle → `QueryBillOverview` items, amounts as numbers; the cycle may
//!   be `YYYY-MM`, `current` or `current-N`).
//! - `secrets[]`: KMS secrets: `name`, `description`, `secret_type`, `create_date`,
//!   `versions[]` (`version_id`, `data`, `data_type` `text`|`binary`, `stages`, `create_date`).
//! - `leaks[]`: Security Center records: `id`, `access_key_id`, `ali_user_name`, `user_type`
//!   `ram`|`master`, `url`, `gmt_create`, `gmt_modified`, `status` `pending`|`dealed`,
//!   `deal_type`, `deal_time`, `remark`, `token_valid`, `whitelist_status`, `whitelist_time`,
//!   and the GitHub detail fields (`github_repo_url`, `github_repo_name`, `github_file_url`,
//!   `github_file_name`, `github_file_type`, `github_file_update_time`, `github_user`,
//!   `github_user_pic_url`, `code`, `source`).
//! - `temporary_credentials[]`: STS credentials issued so far (`access_key_id`, `secret`,
//!   `security_token`, `expiration`, `role_arn`, `session_name`).
//! - `workload`: a simulated service (see [`Workload`]): `access_key_id` (the key it uses),
//!   `secret_name` (the KMS secret it re-reads), `interval_ms` (default 500), `source_ip` and
//!   `source_vpc` (where its calls come from, for network policies). It keeps its key in use
//!   and switches to a key delivered to that secret once the key works.
//! - `faults`: see [`Faults`]. `enforce_rate_limits`: ActionTrail `LookupEvents` at 2/s.
//! - `members[]`: other accounts (a resource directory's members), each in this same schema
//!   with state of its own. Their `roles` trust this (the home) account: its identity assumes
//!   them with STS `AssumeRole`, and the credentials issued act in that member only. Security
//!   Center's `ResourceDirectoryAccountId` reads a member's `leaks` from the home account.
//!
//! Every time field takes RFC 3339 or an offset from load time (`"now"`, `"-15m"`, `"-200d"`).

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::error::EmulatorError;
use super::faults::Faults;
pub use super::records::{
    Balance, Billing, LeakRecord, Secret, SecretVersion, TemporaryCredential,
};
pub use super::when::When;
pub use super::workload::Workload;

/// Everything the emulated account holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub description: String,
    pub account: Account,
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataService>,
    #[serde(default)]
    pub events: Vec<serde_json::Value>,
    #[serde(default)]
    pub billing: Billing,
    #[serde(default)]
    pub secrets: Vec<Secret>,
    #[serde(default)]
    pub leaks: Vec<LeakRecord>,
    #[serde(default)]
    pub temporary_credentials: Vec<TemporaryCredential>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    #[serde(default)]
    pub faults: Faults,
    #[serde(default)]
    pub enforce_rate_limits: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Scenario>,
}

impl Scenario {
    pub fn from_file(path: &Path) -> Result<Self, EmulatorError> {
        let text = std::fs::read_to_string(path).map_err(|source| EmulatorError::ReadScenario {
            path: path.to_owned(),
            source,
        })?;
        Self::from_json(&text)
    }

    pub fn from_json(json: &str) -> Result<Self, EmulatorError> {
        let scenario: Self = serde_json::from_str(json).map_err(EmulatorError::ParseScenario)?;
        scenario.validate()?;
        Ok(scenario)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    pub uid: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// The account-level network access restriction policy, for keys without their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub comments: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub mobile_phone: String,
    #[serde(default = "When::load_time")]
    pub create_date: When,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_date: Option<When>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login_date: Option<When>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_profile: Option<LoginProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_device: Option<MfaDevice>,
    #[serde(default)]
    pub policies: Vec<AttachedPolicy>,
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginProfile {
    /// Console logon on (`Active`) or off (`Inactive`), as IMS sets and shows it.
    #[serde(default)]
    pub status: KeyStatus,
    #[serde(default)]
    pub mfa_bind_required: bool,
    #[serde(default)]
    pub password_reset_required: bool,
    #[serde(default = "When::load_time")]
    pub create_date: When,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaDevice {
    pub serial_number: String,
    #[serde(rename = "type", default = "default_mfa_type")]
    pub kind: String,
}

fn default_mfa_type() -> String {
    "VMFA".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyType {
    System,
    Custom,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "System",
            Self::Custom => "Custom",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachedPolicy {
    pub name: String,
    #[serde(rename = "type")]
    pub policy_type: PolicyType,
    #[serde(default = "When::load_time")]
    pub attach_date: When,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    #[default]
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    #[serde(default)]
    pub status: KeyStatus,
    #[serde(default = "When::load_time")]
    pub create_date: When,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<When>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_service: Option<String>,
    #[serde(default)]
    pub leaked: bool,
    /// The key's network access restriction policy, the JSON string IMS holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "When::load_time")]
    pub create_date: When,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_date: Option<When>,
    pub default_version: String,
    pub versions: Vec<PolicyVersion>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyVersion {
    pub id: String,
    #[serde(deserialize_with = "json_text")]
    pub document: String,
    #[serde(default = "When::load_time")]
    pub create_date: When,
}

/// A policy document may be written as a JSON object or as the string RAM stores.
fn json_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::String(text) => Ok(text),
        other => Ok(other.to_string()),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    #[serde(default = "default_duration")]
    pub duration_secs: u32,
}

fn default_duration() -> u32 {
    3600
}

impl Role {
    /// The part of the ARN after `role/`.
    pub fn name(&self) -> &str {
        self.arn.rsplit_once("role/").map_or("", |(_, name)| name)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetadataService {
    pub role: String,
    #[serde(default)]
    pub imds_v2_only: bool,
}

impl When {
    /// The default for a time the scenario leaves out: the moment it loads.
    pub fn load_time() -> Self {
        Self::FromLoad(chrono::TimeDelta::zero())
    }
}
