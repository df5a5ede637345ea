//! IMS (2019-08-15): who owns a key, when it was last used, and console logons (only IMS
//! can switch one off without deleting it).

use chrono::{DateTime, Utc};

use super::{Effect, parse_time};
use crate::cloud::parse::text;
use crate::cloud::product::Product;
use crate::cloud::ratelimit::Priority;
use crate::cloud::{Called, CloudClient, CloudError, Request};

/// Whether a console logon is on: IMS reports it with the same words as a key's status.
pub type LoginStatus = super::Status;

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
        let request = Request::new(Product::Ims, "GetUser")
            .param("UserAccessKeyId", access_key_id)
            .priority(Priority::Containment);
        // IMS answers EntityNotExist.User or EntityNotExist.User.AccessKey for a key no RAM
        // user owns.
        let called = match self.call(request).await {
            Ok(called) => called,
            Err(err)
                if err
                    .code()
                    .is_some_and(|c| c.starts_with("EntityNotExist.User")) =>
            {
                return Ok(Called {
                    request_id: err.request_id().unwrap_or_default().to_owned(),
                    value: None,
                });
            }
            Err(err) => return Err(err),
        };
        let user = called.value.get("User").cloned().unwrap_or_default();
        let found = text(&user, &["UserName"]).map(|user_name| ImsUser {
            user_id: text(&user, &["UserId"]).unwrap_or_default(),
            user_name,
            user_principal_name: text(&user, &["UserPrincipalName"]),
        });
        Ok(called.map(|_| found))
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

    /// The user with this RAM user id, or `None` when there is none.
    pub async fn user_by_id(&self, user_id: &str) -> Result<Called<Option<ImsUser>>, CloudError> {
        let request = Request::new(Product::Ims, "GetUser").param("UserId", user_id);
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

    /// Whether the user's console logon is on; `None` when the user has no console logon.
    pub async fn login_status(
        &self,
        user_principal_name: &str,
    ) -> Result<Called<Option<LoginStatus>>, CloudError> {
        let request = Request::new(Product::Ims, "GetLoginProfile")
            .param("UserPrincipalName", user_principal_name);
        let called = self
            .optional(request, "EntityNotExist.User.LoginProfile")
            .await?;
        Ok(called.map(|value| {
            let profile = value?.get("LoginProfile")?.clone();
            // A profile shown without a status is taken as on, so it is switched off.
            let status = text(&profile, &["Status"]).and_then(|s| LoginStatus::parse(&s));
            Some(status.unwrap_or(LoginStatus::Active))
        }))
    }

    /// Switches the user's console logon on or off, keeping its password and settings.
    pub async fn set_login_status(
        &self,
        user_principal_name: &str,
        status: LoginStatus,
    ) -> Result<Called<()>, CloudError> {
        let request = Request::new(Product::Ims, "UpdateLoginProfile")
            .param("UserPrincipalName", user_principal_name)
            .param("Status", status.as_str());
        Ok(self.call(request).await?.map(|_| ()))
    }
}

impl CloudClient {
    /// The key's own network access restriction policy, as the JSON string IMS holds; `None`
    /// when IMS answers without one (the documents do not say what "never set" looks like).
    pub async fn access_key_policy(
        &self,
        user_principal_name: &str,
        access_key_id: &str,
    ) -> Result<Called<Option<String>>, CloudError> {
        let request = Request::new(Product::Ims, "GetAccessKeyPolicy")
            .param("UserPrincipalName", user_principal_name)
            .param("UserAccessKeyId", access_key_id)
            .priority(Priority::Containment);
        let called = self.call(request).await?;
        let policy = text(&called.value, &["AccessKeyPolicy"]);
        Ok(called.map(|_| policy))
    }

    /// Replaces the key's network access restriction policy with `policy` (a JSON string).
    pub async fn set_access_key_policy(
        &self,
        user_principal_name: &str,
        access_key_id: &str,
        policy: &str,
    ) -> Result<Called<Effect>, CloudError> {
        let request = Request::new(Product::Ims, "SetAccessKeyPolicy")
            .param("UserPrincipalName", user_principal_name)
            .param("UserAccessKeyId", access_key_id)
            .param("AccessKeyPolicy", policy)
            .priority(Priority::Containment);
        self.effect(request).await
    }
}
