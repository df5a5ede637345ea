//! Changes to AccessKeys and their users that several steps make: each reads first, changes
//! only what differs, and reads back what it did.

use super::context::{StepContext, StepError, applied};
use crate::cloud::api::{AccessKeyInfo, KeyStatus, PolicyType};
use crate::cloud::ratelimit::Priority;
use crate::domain::undo::Change;

/// Sets the incident's own key to `wanted` and verifies it (except in a dry run). Returns the
/// status it had, or `None` when the key no longer exists, and the user's key list as read
/// before the change.
pub(super) async fn set_status(
    ctx: &mut StepContext<'_>,
    user: &str,
    wanted: KeyStatus,
) -> Result<(Option<KeyStatus>, Vec<AccessKeyInfo>), StepError> {
    let key = ctx.incident.access_key_id.as_str().to_owned();
    set_listed_key_status(ctx, user, &key, wanted).await
}

/// Sets `key` of `user` to `wanted` and verifies it (except in a dry run). Returns the status
/// it had, or `None` when the key no longer exists.
pub(super) async fn set_key_status(
    ctx: &mut StepContext<'_>,
    user: &str,
    key: &str,
    wanted: KeyStatus,
) -> Result<Option<KeyStatus>, StepError> {
    Ok(set_listed_key_status(ctx, user, key, wanted).await?.0)
}

/// `set_key_status`, with the key list it read first. That read stays before the change:
/// Alibaba answers `UpdateAccessKey` the same whatever the key's status was, and the status
/// it had is what a cancel puts back. Triage's read of the list, made beside the owner when
/// the report named the user, stands for it.
async fn set_listed_key_status(
    ctx: &mut StepContext<'_>,
    user: &str,
    key: &str,
    wanted: KeyStatus,
) -> Result<(Option<KeyStatus>, Vec<AccessKeyInfo>), StepError> {
    let client = ctx.client.clone();
    // Disabling contains, so its reads go first, as `UpdateAccessKey` does.
    let priority = match wanted {
        KeyStatus::Inactive => Priority::Containment,
        KeyStatus::Active => Priority::Normal,
    };
    let status = |keys: &[AccessKeyInfo]| {
        keys.iter()
            .find(|k| k.access_key_id == key)
            .map(|k| k.status)
    };
    let listed = match ctx.listed_keys(user) {
        Some(listed) => listed,
        None => {
            ctx.read(
                "ListAccessKeys",
                user,
                client.list_access_keys_as(user, priority),
            )
            .await?
        }
    };
    let Some(current) = status(&listed) else {
        return Ok((None, listed));
    };
    if current != wanted {
        let change = Change::KeyStatus {
            user: user.to_owned(),
            access_key_id: key.to_owned(),
            from: current.as_str().to_owned(),
            to: wanted.as_str().to_owned(),
        };
        ctx.apply(change, || {
            applied(client.update_access_key(user, key, wanted))
        })
        .await?;
    }
    if !ctx.dry_run() {
        let after = status(
            &ctx.read(
                "ListAccessKeys",
                user,
                client.list_access_keys_as(user, priority),
            )
            .await?,
        );
        if after != Some(wanted) {
            return Err(StepError::Unverified(format!(
                "{key} is not {wanted:?} yet"
            )));
        }
    }
    Ok((Some(current), listed))
}

/// Detaches akguard's Deny policy from `user` if it is attached.
pub(super) async fn detach_deny_policy(
    ctx: &mut StepContext<'_>,
    user: &str,
) -> Result<(), StepError> {
    let name = ctx.inner.config.policy_name.clone();
    detach_policy(ctx, user, &name).await
}

/// Detaches the custom policy `name` from `user` if it is attached.
pub(super) async fn detach_policy(
    ctx: &mut StepContext<'_>,
    user: &str,
    name: &str,
) -> Result<(), StepError> {
    let client = ctx.client.clone();
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
        let change = Change::DetachPolicy {
            user: user.to_owned(),
            policy: name.to_owned(),
        };
        ctx.apply(change, || {
            client.detach_policy_from_user(PolicyType::Custom, name, user)
        })
        .await?;
    }
    Ok(())
}
