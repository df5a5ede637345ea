//! Changes to the leaked key and its user that several steps make: each reads first, changes
//! only what differs, and reads back what it did.

use super::context::{StepContext, StepError, applied};
use crate::cloud::api::{KeyStatus, PolicyType};

/// Sets the incident's own key to `wanted` and verifies it (except in a dry run). Returns the
/// status it had, or `None` when the key no longer exists.
pub(super) async fn set_status(
    ctx: &mut StepContext<'_>,
    user: &str,
    wanted: KeyStatus,
) -> Result<Option<KeyStatus>, StepError> {
    let client = ctx.inner.client.clone();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let status = |keys: &[crate::cloud::api::AccessKeyInfo]| {
        keys.iter()
            .find(|k| k.access_key_id == key)
            .map(|k| k.status)
    };
    let before = status(
        &ctx.read("ListAccessKeys", user, client.list_access_keys(user))
            .await?,
    );
    let Some(current) = before else {
        return Ok(None);
    };
    if current != wanted {
        ctx.mutate("UpdateAccessKey", &key, || {
            applied(client.update_access_key(user, &key, wanted))
        })
        .await?;
    }
    if !ctx.dry_run() {
        let after = status(
            &ctx.read("ListAccessKeys", user, client.list_access_keys(user))
                .await?,
        );
        if after != Some(wanted) {
            return Err(StepError::Unverified(format!(
                "{key} is not {wanted:?} yet"
            )));
        }
    }
    Ok(Some(current))
}

/// Detaches akguard's Deny policy from `user` if it is attached.
pub(super) async fn detach_deny_policy(
    ctx: &mut StepContext<'_>,
    user: &str,
) -> Result<(), StepError> {
    let client = ctx.inner.client.clone();
    let name = ctx.inner.config.policy_name.clone();
    let attached = ctx
        .read(
            "ListPoliciesForUser",
            user,
            client.list_policies_for_user(user),
        )
        .await?;
    if attached
        .iter()
        .any(|p| p.name == name && p.policy_type == "Custom")
    {
        ctx.mutate("DetachPolicyFromUser", user, || {
            client.detach_policy_from_user(PolicyType::Custom, &name, user)
        })
        .await?;
    }
    Ok(())
}
