//! What a leaked key left behind, as a checklist for the person who cleans up: users, keys,
//! console logons, policies attached and resources created, each from a successful call.

use super::AuditFindings;

/// Resource types listed as users or keys already.
const LISTED_AS_IDENTITIES: [&str; 2] = ["ACS::RAM::User", "ACS::RAM::AccessKey"];

impl AuditFindings {
    /// One line per artefact, in time order within each kind.
    pub fn checklist(&self) -> Vec<String> {
        let mut items = Vec::new();
        let unnamed = || "(name not in ActionTrail)".to_owned();
        for user in &self.users_created.items {
            items.push(format!(
                "RAM user {} (created by event {})",
                user.user_name.clone().unwrap_or_else(unnamed),
                user.event_id
            ));
        }
        for key in &self.keys_created.items {
            items.push(format!(
                "AccessKey {} of user {}",
                key.access_key_id.clone().unwrap_or_else(unnamed),
                key.user_name.clone().unwrap_or_else(unnamed)
            ));
        }
        for change in self
            .identity_changes
            .items
            .iter()
            .filter(|c| c.error_code.is_none())
        {
            let on = change
                .user_name
                .clone()
                .or_else(|| change.role_name.clone().map(|r| format!("role {r}")))
                .or_else(|| change.group_name.clone().map(|g| format!("group {g}")))
                .unwrap_or_else(unnamed);
            let policy = change.policy_name.clone().unwrap_or_else(unnamed);
            let line = match change.name.as_str() {
                "CreateUser" | "CreateAccessKey" => continue,
                "AttachPolicyToUser" | "AttachPolicyToRole" | "AttachPolicyToGroup" => {
                    format!("policy {policy} attached to {on}")
                }
                "CreateLoginProfile" => format!("console logon (password) for {on}"),
                "CreatePolicy" | "CreatePolicyVersion" => format!("policy {policy} written"),
                "CreateRole" => format!("RAM {on}"),
                other => format!("{other} on {on}"),
            };
            items.push(line);
        }
        for resource in self
            .resources_created
            .items
            .iter()
            .filter(|r| !LISTED_AS_IDENTITIES.contains(&r.kind.as_str()))
        {
            let ids = if resource.ids.is_empty() {
                "(ids not in ActionTrail)".to_owned()
            } else {
                resource.ids.join(", ")
            };
            let region = resource.region.as_deref().unwrap_or("an unknown region");
            items.push(format!(
                "{} {ids} in {region} ({})",
                resource.kind, resource.event_name
            ));
        }
        let left_out = self.users_created.truncated
            + self.keys_created.truncated
            + self.identity_changes.truncated
            + self.resources_created.truncated;
        if left_out > 0 {
            items.push(format!(
                "{left_out} more not listed: search ActionTrail for the key's calls"
            ));
        }
        items
    }
}
