//! STS (2015-04-01): who akguard itself is, so that it never acts on its own identity.

use crate::cloud::parse::text;
use crate::cloud::product::Product;
use crate::cloud::{Called, CloudClient, CloudError, Request};

/// `GetCallerIdentity`: the identity behind the credentials akguard signs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account_id: Option<String>,
    /// `Account`, `RAMUser` or `AssumedRoleUser`.
    pub identity_type: Option<String>,
    pub arn: Option<String>,
}

impl CallerIdentity {
    /// The RAM user's name, for a `RAMUser` identity (`acs:ram::<account>:user/<name>`).
    pub fn user_name(&self) -> Option<&str> {
        if self.identity_type.as_deref() != Some("RAMUser") {
            return None;
        }
        let (_, name) = self.arn.as_deref()?.split_once(":user/")?;
        Some(name).filter(|n| !n.is_empty())
    }
}

impl CloudClient {
    pub async fn caller_identity(&self) -> Result<Called<CallerIdentity>, CloudError> {
        let called = self
            .call(Request::new(Product::Sts, "GetCallerIdentity"))
            .await?;
        let v = &called.value;
        let identity = CallerIdentity {
            account_id: text(v, &["AccountId"]),
            identity_type: text(v, &["IdentityType"]),
            arn: text(v, &["Arn"]),
        };
        Ok(called.map(|_| identity))
    }

    /// The credentials akguard signs with, named without their secret.
    pub fn credentials_label(&self) -> String {
        self.credentials().describe()
    }

    /// The AccessKey IDs akguard signs with now: the base key and, with `role_arn`, the
    /// assumed role's temporary ones (which change as they are refreshed).
    pub async fn own_access_key_ids(&self) -> Result<Vec<String>, CloudError> {
        self.credentials().key_ids().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_ram_user_identity_names_a_user() {
        let identity = |kind: &str, arn: &str| CallerIdentity {
            account_id: Some("1234567890123456".into()),
            identity_type: Some(kind.into()),
            arn: Some(arn.into()),
        };
        assert_eq!(
            identity("RAMUser", "acs:ram::1234567890123456:user/akguard").user_name(),
            Some("akguard")
        );
        assert_eq!(
            identity("Account", "acs:ram::1234567890123456:root").user_name(),
            None
        );
        assert_eq!(
            identity(
                "AssumedRoleUser",
                "acs:ram::1234567890123456:assumed-role/akguard/s"
            )
            .user_name(),
            None
        );
        assert_eq!(
            identity("RAMUser", "acs:ram::1234567890123456:user/").user_name(),
            None
        );
    }
}
