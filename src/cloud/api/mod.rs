//! Typed Alibaba Cloud calls, one file per product, each an `impl CloudClient` block.

mod actiontrail;
mod bss;
mod ims;
mod kms;
mod ram;
mod sas;
mod sts;

pub use actiontrail::{AccountPage, AccountType, LastUsedInfo};
pub use bss::{AccountBalance, BillItem};
pub use ims::{ImsUser, LoginStatus};
pub use kms::SecretVersion;
pub use ram::{
    AccessKeyInfo, AttachedPolicy, KeyStatus, LoginProfile, MfaDevice, NewAccessKey, PolicyInfo,
    PolicyType, RamUser,
};
pub use sas::{DealType, LeakDetail, LeakPage, LeakRecord, LeakStatus, leak_detail, leak_page};
pub use sts::CallerIdentity;

use chrono::{DateTime, Utc};

use super::error::{CloudError, ErrorClass};
use super::transport::Called;
use super::{CloudClient, Request};

/// Alibaba's `Active` / `Inactive`, as RAM reports a key and IMS a console logon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Inactive,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Inactive => "Inactive",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "Active" => Some(Self::Active),
            "Inactive" => Some(Self::Inactive),
            _ => None,
        }
    }
}

/// What an idempotent write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Applied,
    /// The server said the change was already in place.
    AlreadyDone,
}

impl CloudClient {
    /// A write whose "already done" errors count as success.
    async fn effect(&self, request: Request) -> Result<Called<Effect>, CloudError> {
        match self.call(request).await {
            Ok(called) => Ok(called.map(|_| Effect::Applied)),
            Err(err) if err.class() == ErrorClass::AlreadyDone => Ok(Called {
                request_id: err.request_id().unwrap_or_default().to_owned(),
                value: Effect::AlreadyDone,
            }),
            Err(err) => Err(err),
        }
    }

    /// A read where the `absent` error code means "there is none".
    async fn optional(
        &self,
        request: Request,
        absent: &str,
    ) -> Result<Called<Option<serde_json::Value>>, CloudError> {
        match self.call(request).await {
            Ok(called) => Ok(called.map(Some)),
            Err(err) if err.code() == Some(absent) => Ok(Called {
                request_id: err.request_id().unwrap_or_default().to_owned(),
                value: None,
            }),
            Err(err) => Err(err),
        }
    }
}

/// Alibaba's `YYYY-MM-DDThh:mm:ssZ` (or any RFC 3339).
fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Joins the request ids of a paged listing, oldest first.
fn join_ids(ids: &[String]) -> String {
    ids.join(",")
}
