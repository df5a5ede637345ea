//! RAM (2015-05-01): users, their AccessKeys, policies, console logon and MFA.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::Value;

use super::{Effect, join_ids, parse_time};
use crate::cloud::parse::{flag, items, text};
use crate::cloud::product::Product;
use crate::cloud::ratelimit::Priority;
use crate::cloud::{Called, CloudClient, CloudError, Request};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RamUser {
    pub user_id: String,
    pub user_name: String,
    pub display_name: Option<String>,
}

/// Whether an AccessKey can sign requests.
pub type KeyStatus = super::Status;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub access_key_id: String,
    pub status: KeyStatus,
    pub create_date: Option<DateTime<Utc>>,
}

/// A key just created: the only moment its secret is ever known.
#[derive(Debug)]
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret: SecretString,
    pub create_date: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    System,
    Custom,
}

impl PolicyType {
    fn as_str(self) -> &'static str {
        match self {
            Self::System => "System",
            Self::Custom => "Custom",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyInfo {
    pub name: String,
    pub default_version: String,
    /// The default version's document, as stored.
    pub document: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPolicy {
    pub name: String,
    pub policy_type: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginProfile {
    pub mfa_bind_required: bool,
    pub password_reset_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaDevice {
    pub serial_number: String,
    pub kind: Option<String>,
}

fn user(value: &Value) -> Option<RamUser> {
    Some(RamUser {
        user_id: text(value, &["UserId"]).unwrap_or_default(),
        user_name: text(value, &["UserName"])?,
        display_name: text(value, &["DisplayName"]),
    })
}

fn ram(action: &'static str) -> Request {
    Request::new(Product::Ram, action)
}

fn decode(action: &str, request_id: &str, message: &str) -> CloudError {
    CloudError::Decode {
        action: action.into(),
        message: message.into(),
        request_id: Some(request_id.into()),
    }
}

impl CloudClient {
    pub async fn get_user(&self, user_name: &str) -> Result<Called<RamUser>, CloudError> {
        let called = self
            .call(ram("GetUser").param("UserName", user_name))
            .await?;
        let found = called.value.get("User").and_then(user);
        let user =
            found.ok_or_else(|| decode("GetUser", &called.request_id, "no User in the answer"))?;
        Ok(called.map(|_| user))
    }

    /// Every RAM user, following `Marker` through all pages.
    pub async fn list_users(&self) -> Result<Called<Vec<RamUser>>, CloudError> {
        let mut users = Vec::new();
        let mut ids = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = self
                .call(
                    ram("ListUsers")
                        .param("MaxItems", "1000")
                        .param_opt("Marker", marker.take()),
                )
                .await?;
            users.extend(
                items(&page.value, "Users", "User")
                    .into_iter()
                    .filter_map(user),
            );
            ids.push(page.request_id.clone());
            marker = text(&page.value, &["Marker"]).filter(|_| flag(&page.value, "IsTruncated"));
            if marker.is_none() {
                return Ok(Called {
                    request_id: join_ids(&ids),
                    value: users,
                });
            }
        }
    }

    pub async fn list_access_keys(
        &self,
        user_name: &str,
    ) -> Result<Called<Vec<AccessKeyInfo>>, CloudError> {
        self.list_access_keys_as(user_name, Priority::Normal).await
    }

    /// `list_access_keys` waiting for the rate limit as `priority` (containment's reads go
    /// before the rest).
    pub async fn list_access_keys_as(
        &self,
        user_name: &str,
        priority: Priority,
    ) -> Result<Called<Vec<AccessKeyInfo>>, CloudError> {
        let request = ram("ListAccessKeys")
            .param("UserName", user_name)
            .priority(priority);
        let called = self.call(request).await?;
        let keys = items(&called.value, "AccessKeys", "AccessKey")
            .into_iter()
            .filter_map(|k| {
                Some(AccessKeyInfo {
                    access_key_id: text(k, &["AccessKeyId"])?,
                    status: match text(k, &["Status"]).as_deref() {
                        Some("Inactive") => KeyStatus::Inactive,
                        _ => KeyStatus::Active,
                    },
                    create_date: text(k, &["CreateDate"]).and_then(|d| parse_time(&d)),
                })
            })
            .collect();
        Ok(called.map(|_| keys))
    }

    /// Creates a key. Not retried blindly by callers: a lost answer still made a key.
    pub async fn create_access_key(
        &self,
        user_name: &str,
    ) -> Result<Called<NewAccessKey>, CloudError> {
        let mut called = self
            .call(ram("CreateAccessKey").param("UserName", user_name))
            .await?;
        let key = called
            .value
            .get_mut("AccessKey")
            .map(Value::take)
            .unwrap_or_default();
        let request_id = called.request_id.clone();
        let created = (|| {
            Some(NewAccessKey {
                access_key_id: text(&key, &["AccessKeyId"])?,
                secret: SecretString::from(text(&key, &["AccessKeySecret"])?),
                create_date: text(&key, &["CreateDate"]).and_then(|d| parse_time(&d)),
            })
        })()
        .ok_or_else(|| {
            decode(
                "CreateAccessKey",
                &request_id,
                "no AccessKey id and secret in the answer",
            )
        })?;
        Ok(Called {
            request_id,
            value: created,
        })
    }

    /// Enables or disables one key. Disabling is containment and jumps the queue.
    pub async fn update_access_key(
        &self,
        user_name: &str,
        access_key_id: &str,
        status: KeyStatus,
    ) -> Result<Called<()>, CloudError> {
        let priority = match status {
            KeyStatus::Inactive => Priority::Containment,
            KeyStatus::Active => Priority::Normal,
        };
        let request = ram("UpdateAccessKey")
            .param("UserName", user_name)
            .param("UserAccessKeyId", access_key_id)
            .param("Status", status.as_str())
            .priority(priority);
        Ok(self.call(request).await?.map(|_| ()))
    }

    pub async fn delete_access_key(
        &self,
        user_name: &str,
        access_key_id: &str,
    ) -> Result<Called<Effect>, CloudError> {
        self.effect(
            ram("DeleteAccessKey")
                .param("UserName", user_name)
                .param("UserAccessKeyId", access_key_id),
        )
        .await
    }

    pub async fn create_policy(
        &self,
        name: &str,
        document: &str,
        description: &str,
    ) -> Result<Called<Effect>, CloudError> {
        let request = ram("CreatePolicy")
            .param("PolicyName", name)
            .param("PolicyDocument", document)
            .param("Description", description)
            .priority(Priority::Containment);
        self.effect(request).await
    }

    /// The policy and its default document, or `None` when it does not exist.
    pub async fn get_policy(
        &self,
        name: &str,
        policy_type: PolicyType,
    ) -> Result<Called<Option<PolicyInfo>>, CloudError> {
        let request = ram("GetPolicy")
            .param("PolicyName", name)
            .param("PolicyType", policy_type.as_str())
            .priority(Priority::Containment);
        let called = self.optional(request, "EntityNotExist.Policy").await?;
        Ok(called.map(|value| {
            let value = value?;
            let policy = value.get("Policy")?;
            Some(PolicyInfo {
                name: text(policy, &["PolicyName"])?,
                default_version: text(policy, &["DefaultVersion"]).unwrap_or_default(),
                document: value
                    .get("DefaultPolicyVersion")
                    .and_then(|v| text(v, &["PolicyDocument"])),
            })
        }))
    }

    /// Adds a version and makes it the default, dropping the oldest when five exist.
    pub async fn create_policy_version(
        &self,
        name: &str,
        document: &str,
    ) -> Result<Called<String>, CloudError> {
        let request = ram("CreatePolicyVersion")
            .param("PolicyName", name)
            .param("PolicyDocument", document)
            .param("SetAsDefault", "true")
            .param(
                "RotateStrategy",
                "DeleteOldestNonDefaultVersionWhenLimitExceeded",
            )
            .priority(Priority::Containment);
        let called = self.call(request).await?;
        let version = called
            .value
            .get("PolicyVersion")
            .and_then(|v| text(v, &["VersionId"]))
            .ok_or_else(|| {
                decode(
                    "CreatePolicyVersion",
                    &called.request_id,
                    "no VersionId in the answer",
                )
            })?;
        Ok(called.map(|_| version))
    }

    pub async fn attach_policy_to_user(
        &self,
        policy_type: PolicyType,
        name: &str,
        user_name: &str,
    ) -> Result<Called<Effect>, CloudError> {
        let request = ram("AttachPolicyToUser")
            .param("PolicyType", policy_type.as_str())
            .param("PolicyName", name)
            .param("UserName", user_name)
            .priority(Priority::Containment);
        self.effect(request).await
    }

    pub async fn detach_policy_from_user(
        &self,
        policy_type: PolicyType,
        name: &str,
        user_name: &str,
    ) -> Result<Called<Effect>, CloudError> {
        let request = ram("DetachPolicyFromUser")
            .param("PolicyType", policy_type.as_str())
            .param("PolicyName", name)
            .param("UserName", user_name);
        self.effect(request).await
    }

    pub async fn list_policies_for_user(
        &self,
        user_name: &str,
    ) -> Result<Called<Vec<AttachedPolicy>>, CloudError> {
        self.list_policies_for_user_as(user_name, Priority::Normal)
            .await
    }

    /// `list_policies_for_user` waiting for the rate limit as `priority`.
    pub async fn list_policies_for_user_as(
        &self,
        user_name: &str,
        priority: Priority,
    ) -> Result<Called<Vec<AttachedPolicy>>, CloudError> {
        let request = ram("ListPoliciesForUser")
            .param("UserName", user_name)
            .priority(priority);
        let called = self.call(request).await?;
        let policies = items(&called.value, "Policies", "Policy")
            .into_iter()
            .filter_map(|p| {
                Some(AttachedPolicy {
                    name: text(p, &["PolicyName"])?,
                    policy_type: text(p, &["PolicyType"]).unwrap_or_default(),
                })
            })
            .collect();
        Ok(called.map(|_| policies))
    }

    /// The console logon profile, or `None` when the user has no console access.
    pub async fn get_login_profile(
        &self,
        user_name: &str,
    ) -> Result<Called<Option<LoginProfile>>, CloudError> {
        let request = ram("GetLoginProfile").param("UserName", user_name);
        let called = self
            .optional(request, "EntityNotExist.User.LoginProfile")
            .await?;
        Ok(called.map(|value| {
            let profile = value?.get("LoginProfile")?.clone();
            Some(LoginProfile {
                mfa_bind_required: flag(&profile, "MFABindRequired"),
                password_reset_required: flag(&profile, "PasswordResetRequired"),
            })
        }))
    }

    /// Sets the named flags; a flag left `None` is not sent and so not changed.
    pub async fn update_login_profile(
        &self,
        user_name: &str,
        mfa_bind_required: Option<bool>,
        password_reset_required: Option<bool>,
    ) -> Result<Called<()>, CloudError> {
        let request = ram("UpdateLoginProfile")
            .param("UserName", user_name)
            .param_opt("MFABindRequired", mfa_bind_required.map(|b| b.to_string()))
            .param_opt(
                "PasswordResetRequired",
                password_reset_required.map(|b| b.to_string()),
            );
        Ok(self.call(request).await?.map(|_| ()))
    }

    /// The user's MFA device, or `None` when none is bound.
    pub async fn get_user_mfa_info(
        &self,
        user_name: &str,
    ) -> Result<Called<Option<MfaDevice>>, CloudError> {
        let request = ram("GetUserMFAInfo").param("UserName", user_name);
        let called = self
            .optional(request, "EntityNotExist.User.MFADevice")
            .await?;
        Ok(called.map(|value| {
            let device = value?.get("MFADevice")?.clone();
            Some(MfaDevice {
                serial_number: text(&device, &["SerialNumber"])?,
                kind: text(&device, &["Type"]),
            })
        }))
    }
}
