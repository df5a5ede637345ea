//! What an identity call changed: the user, role, group, policy or key it acted on, and the
//! users and keys the leaked key created.

use super::event::Event;
use super::{CreatedKey, CreatedUser, IdentityChange};

impl Event<'_> {
    /// The user an identity call acts on (IMS names users by principal name).
    fn target_user(&self) -> Option<String> {
        self.param("UserName")
            .or_else(|| self.param("UserPrincipalName"))
            .or_else(|| self.referenced("ACS::RAM::User"))
    }

    /// AccessKey calls without a user act on the caller's own keys.
    fn key_owner(&self) -> Option<String> {
        self.target_user()
            .or_else(|| self.text(&["userIdentity", "userName"]))
    }

    pub(super) fn identity_change(&self) -> IdentityChange {
        let about_keys = self.name.ends_with("AccessKey");
        IdentityChange {
            event_id: self.key.clone(),
            time: self.time,
            name: self.name.to_owned(),
            user_name: if about_keys {
                self.key_owner()
            } else {
                self.target_user()
            },
            role_name: self
                .param("RoleName")
                .or_else(|| self.referenced("ACS::RAM::Role")),
            group_name: self.param("GroupName"),
            policy_name: self.param("PolicyName"),
            access_key_id: self
                .param("UserAccessKeyId")
                .or_else(|| self.text(&["responseElements", "AccessKey", "AccessKeyId"])),
            source_ip: self.source_ip.map(str::to_owned),
            error_code: self.error_code.map(str::to_owned),
        }
    }

    pub(super) fn created_user(&self) -> CreatedUser {
        CreatedUser {
            user_name: self
                .text(&["responseElements", "User", "UserName"])
                .or_else(|| self.text(&["responseElements", "User", "UserPrincipalName"]))
                .or_else(|| self.target_user()),
            time: self.time,
            event_id: self.key.clone(),
        }
    }

    pub(super) fn created_key(&self) -> CreatedKey {
        CreatedKey {
            // Only the id is read: responseElements may carry the new secret too.
            access_key_id: self.text(&["responseElements", "AccessKey", "AccessKeyId"]),
            user_name: self.key_owner(),
            time: self.time,
            event_id: self.key.clone(),
        }
    }
}
