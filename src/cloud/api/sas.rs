//! Security Center (2018-12-03): Alibaba's own records of leaked AccessKeys.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cloud::parse::{field, integer, text};
use crate::cloud::product::Product;
use crate::cloud::{Called, CloudClient, CloudError, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakStatus {
    Pending,
    Dealt,
}

/// How a leak record was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealType {
    Manual,
    Disable,
    AddWhitelist,
}

impl DealType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Disable => "disable",
            Self::AddWhitelist => "add-whitelist",
        }
    }
}

/// One leak record from `DescribeAccesskeyLeakList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakRecord {
    pub id: i64,
    pub access_key_id: String,
    /// The Alibaba Cloud *account* name, not the RAM user.
    pub account_name: Option<String>,
    /// `master` (the account's own key) or `ram`.
    pub user_type: Option<String>,
    pub url: Option<String>,
    pub discovered_at: Option<DateTime<Utc>>,
    pub status: LeakStatus,
    /// SHA-256 (hex) of the record as received, kept with the notification it becomes.
    pub raw_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakPage {
    pub total: i64,
    pub records: Vec<LeakRecord>,
}

/// Where a leak was found, from `DescribeAccessKeyLeakDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakDetail {
    pub repo_url: Option<String>,
    pub file_url: Option<String>,
    pub github_user: Option<String>,
    pub source: Option<String>,
}

fn record(value: &Value) -> Option<LeakRecord> {
    Some(LeakRecord {
        id: integer(value, "Id")?,
        access_key_id: text(value, &["AccesskeyId", "AccessKeyId"])?,
        account_name: text(value, &["AliUserName"]),
        user_type: text(value, &["UserType"]),
        url: text(value, &["Url"]),
        discovered_at: integer(value, "GmtModified").and_then(DateTime::from_timestamp_millis),
        // The API says `dealed`; Alibaba's own samples say `dealt`.
        status: match text(value, &["Status"]).as_deref() {
            Some("dealed" | "dealt") => LeakStatus::Dealt,
            _ => LeakStatus::Pending,
        },
        raw_sha256: hex::encode(Sha256::digest(value.to_string().as_bytes())),
    })
}

/// Reads a `DescribeAccesskeyLeakList` answer; records without an id or a key are skipped.
pub fn leak_page(value: &Value) -> LeakPage {
    let records = match field(value, "AccessKeyLeakList") {
        Some(Value::Array(list)) => list.iter().filter_map(record).collect(),
        Some(single @ Value::Object(_)) => record(single).into_iter().collect(),
        _ => Vec::new(),
    };
    LeakPage {
        total: integer(value, "TotalCount").unwrap_or(0),
        records,
    }
}

/// Reads a `DescribeAccessKeyLeakDetail` answer.
pub fn leak_detail(value: &Value) -> LeakDetail {
    LeakDetail {
        repo_url: text(value, &["GithubRepoUrl"]),
        file_url: text(value, &["GithubFileUrl"]),
        github_user: text(value, &["GithubUser"]),
        source: text(value, &["Source"]),
    }
}

impl CloudClient {
    /// One page of pending leak records discovered after `since` (epoch milliseconds); of
    /// resource directory `member` when this client is the directory's management account.
    pub async fn describe_access_key_leak_list(
        &self,
        since_ms: i64,
        page: u32,
        page_size: u32,
        member: Option<&str>,
    ) -> Result<Called<LeakPage>, CloudError> {
        let request = Request::new(Product::Sas, "DescribeAccesskeyLeakList")
            .param("CurrentPage", page.to_string())
            .param("PageSize", page_size.to_string())
            .param("Status", "pending")
            .param("StartTs", since_ms.to_string())
            .param_opt("ResourceDirectoryAccountId", member);
        let called = self.call(request).await?;
        let page = leak_page(&called.value);
        Ok(called.map(|_| page))
    }

    /// Every leak record of one key, handled or not: how a `ModifyAccessKeyLeakDeal` is read
    /// back, since its 200 means accepted, not done.
    pub async fn leak_records_of_key(
        &self,
        access_key_id: &str,
    ) -> Result<Called<LeakPage>, CloudError> {
        let request = Request::new(Product::Sas, "DescribeAccesskeyLeakList")
            .param("CurrentPage", "1")
            .param("PageSize", "100")
            .param("Query", access_key_id);
        let called = self.call(request).await?;
        let page = leak_page(&called.value);
        Ok(called.map(|_| page))
    }

    pub async fn describe_access_key_leak_detail(
        &self,
        id: i64,
        member: Option<&str>,
    ) -> Result<Called<LeakDetail>, CloudError> {
        let request = Request::new(Product::Sas, "DescribeAccessKeyLeakDetail")
            .param("Id", id.to_string())
            .param_opt("ResourceDirectoryAccountId", member);
        let called = self.call(request).await?;
        let detail = leak_detail(&called.value);
        Ok(called.map(|_| detail))
    }

    /// Marks a leak record handled.
    pub async fn modify_access_key_leak_deal(
        &self,
        id: i64,
        deal: DealType,
        remark: &str,
    ) -> Result<Called<()>, CloudError> {
        let request = Request::new(Product::Sas, "ModifyAccessKeyLeakDeal")
            .param("Id", id.to_string())
            .param("Type", deal.as_str())
            .param("Remark", remark);
        Ok(self.call(request).await?.map(|_| ()))
    }
}
