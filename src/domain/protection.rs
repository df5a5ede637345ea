//! Identities akguard never acts on: its own, learned at start, and those the operator lists
//! in `protect.users` and `protect.access_key_ids` (break-glass users, other responders).

use std::collections::BTreeSet;

/// Whom akguard must leave alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Protection {
    users: BTreeSet<String>,
    access_key_ids: BTreeSet<String>,
    own_users: BTreeSet<String>,
    own_access_key_ids: BTreeSet<String>,
}

/// Why an identity is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    /// akguard signs its own calls with it (or it is akguard's own user).
    Own,
    /// Listed in `protect.*`.
    Listed,
}

impl Protection {
    pub fn listed(
        users: impl IntoIterator<Item = String>,
        access_key_ids: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            users: users.into_iter().collect(),
            access_key_ids: access_key_ids.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Adds akguard's own RAM user (none when it acts as a role or the account) and keys.
    pub fn with_own(
        mut self,
        user: Option<String>,
        access_key_ids: impl IntoIterator<Item = String>,
    ) -> Self {
        self.own_users.extend(user);
        self.own_access_key_ids.extend(access_key_ids);
        self
    }

    pub fn key(&self, access_key_id: &str) -> Option<Protected> {
        if self.own_access_key_ids.contains(access_key_id) {
            Some(Protected::Own)
        } else if self.access_key_ids.contains(access_key_id) {
            Some(Protected::Listed)
        } else {
            None
        }
    }

    pub fn user(&self, name: &str) -> Option<Protected> {
        if self.own_users.contains(name) {
            Some(Protected::Own)
        } else if self.users.contains(name) {
            Some(Protected::Listed)
        } else {
            None
        }
    }

    /// Either `target` (a user name or an AccessKey ID) is protected.
    pub fn covers(&self, target: &str) -> Option<Protected> {
        self.key(target).or_else(|| self.user(target))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_and_listed_identities_are_told_apart() {
        let p = Protection::listed(["breakglass".to_owned()], ["LTAI5tResponder01".to_owned()])
            .with_own(Some("akguard".into()), ["LTAI5tAkguardOwn01".to_owned()]);
        assert_eq!(p.key("LTAI5tAkguardOwn01"), Some(Protected::Own));
        assert_eq!(p.key("LTAI5tResponder01"), Some(Protected::Listed));
        assert_eq!(p.key("LTAI5tSomebodyElse"), None);
        assert_eq!(p.user("akguard"), Some(Protected::Own));
        assert_eq!(p.user("breakglass"), Some(Protected::Listed));
        assert_eq!(p.user("ci-deployer"), None);
        assert_eq!(p.covers("breakglass"), Some(Protected::Listed));
        assert_eq!(p.covers("LTAI5tAkguardOwn01"), Some(Protected::Own));
        assert_eq!(Protection::default().covers("akguard"), None);
    }
}
