//! The scenario's product records: bills, KMS secrets, Security Center leak records and the
//! STS credentials issued so far (schema documented in `scenario.rs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::when::When;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Billing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub overview: BTreeMap<String, Vec<serde_json::Map<String, serde_json::Value>>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Balance {
    pub available_amount: String,
    pub available_cash_amount: String,
    pub credit_amount: String,
    pub mybank_credit_amount: String,
    pub quota_limit: String,
    pub currency: String,
}

impl Default for Balance {
    fn default() -> Self {
        Self {
            available_amount: "0.00".into(),
            available_cash_amount: "0.00".into(),
            credit_amount: "0.00".into(),
            mybank_credit_amount: "0.00".into(),
            quota_limit: "0.00".into(),
            currency: "CNY".into(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secret {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_secret_type")]
    pub secret_type: String,
    #[serde(default = "When::load_time")]
    pub create_date: When,
    pub versions: Vec<SecretVersion>,
}

fn default_secret_type() -> String {
    "Generic".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretVersion {
    pub version_id: String,
    pub data: String,
    #[serde(default = "default_data_type")]
    pub data_type: String,
    #[serde(default)]
    pub stages: Vec<String>,
    #[serde(default = "When::load_time")]
    pub create_date: When,
}

fn default_data_type() -> String {
    "text".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeakRecord {
    pub id: i64,
    pub access_key_id: String,
    pub ali_user_name: String,
    pub user_type: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gmt_create: Option<When>,
    pub gmt_modified: When,
    #[serde(default = "pending")]
    pub status: String,
    #[serde(default = "pending")]
    pub deal_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deal_time: Option<When>,
    #[serde(default)]
    pub remark: String,
    #[serde(default)]
    pub token_valid: i32,
    #[serde(default = "no")]
    pub whitelist_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whitelist_time: Option<When>,
    #[serde(default)]
    pub github_repo_url: String,
    #[serde(default)]
    pub github_repo_name: String,
    #[serde(default)]
    pub github_file_url: String,
    #[serde(default)]
    pub github_file_name: String,
    #[serde(default)]
    pub github_file_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github_file_update_time: Option<When>,
    #[serde(default)]
    pub github_user: String,
    #[serde(default)]
    pub github_user_pic_url: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub source: String,
}

fn pending() -> String {
    "pending".into()
}

fn no() -> String {
    "no".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporaryCredential {
    pub access_key_id: String,
    pub secret: String,
    pub security_token: String,
    pub expiration: When,
    pub role_arn: String,
    pub session_name: String,
}
