//! IMS (2019-08-15): who owns a key, and when it was last used.

use chrono::{DateTime, Utc};

use super::parse_time;
use crate::cloud::parse::text;
use crate::cloud::product::Product;
use crate::cloud::ratelimit::Priority;
use crate::cloud::{Called, CloudClient, CloudError, Request};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImsUser {
    pub user_id: String,
    pub user_name: String,
    pub user_principal_name: Option<String>,
}

impl CloudClient {
    /// The RAM user owning `access_key_id`, or `None` when no RAM user does (an account
    /// key, an STS key, or a deleted one).
    pub async fn user_by_access_key(
        &self,
        access_key_id: &str,
    ) -> Result<Called<Option<ImsUser>>, CloudError> {
        let request = Request::new(Product::Ims, "GetUser").param("UserAccessKeyId", access_key_id);
        let called = self.optional(request, "EntityNotExist.User").await?;
        Ok(called.map(|value| {
            let user = value?.get("User")?.clone();
            Some(ImsUser {
                user_id: text(&user, &["UserId"]).unwrap_or_default(),
                user_name: text(&user, &["UserName"])?,
                user_principal_name: text(&user, &["UserPrincipalName"]),
            })
        }))
    }

    /// When the key was last used, per IMS; `None` if never.
    pub async fn access_key_last_used(
        &self,
        access_key_id: &str,
        user_principal_name: &str,
    ) -> Result<Called<Option<DateTime<Utc>>>, CloudError> {
        let request = Request::new(Product::Ims, "GetAccessKeyLastUsed")
            .param("UserAccessKeyId", access_key_id)
            .param("UserPrincipalName", user_principal_name)
            .priority(Priority::Forensics);
        let called = self.call(request).await?;
        let last = called
            .value
            .get("AccessKeyLastUsed")
            .and_then(|v| text(v, &["LastUsedDate"]))
            .and_then(|d| parse_time(&d));
        Ok(called.map(|_| last))
    }
}
