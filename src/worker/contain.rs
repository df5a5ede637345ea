//! Containment: the Deny policy on a key in use, or disabling a key nobody uses. Both read
//! the current state first and change only what differs, then read back what they did.

use serde_json::Value;

use super::context::{StepContext, StepError, StepResult, applied};
use super::{fence, keys};
use crate::cloud::api::{KeyStatus, PolicyType};
use crate::domain::findings::{Disable, Revoke, Verified};
use crate::domain::undo::Change;
use crate::domain::{Finding, Reason};

/// Attaches the runbook's Deny policy to the key's user and verifies it.
pub(super) async fn revoke(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let client = ctx.inner.client.clone();
    let user = ctx.user()?.to_owned();
    let name = ctx.inner.config.policy_name.clone();
    let document = ctx.inner.config.policy_document.clone();
    let mut finding = Revoke {
        policy: name.clone(),
        user_name: user.clone(),
        new_version: None,
        error: None,
        verified: None,
    };

    let existing = ctx
        .read(
            "GetPolicy",
            &name,
            client.get_policy(&name, PolicyType::Custom),
        )
        .await?;
    match existing {
        None => {
            let description = "akguard: denies high-risk actions to a leaked AccessKey's user";
            ctx.mutate("CreatePolicy", &name, || {
                client.create_policy(&name, &document, description)
            })
            .await?;
        }
        Some(policy) if !same_document(policy.document.as_deref(), &document) => {
            ctx.mutate("CreatePolicyVersion", &name, || {
                applied(client.create_policy_version(&name, &document))
            })
            .await?;
            finding.new_version = Some(true);
        }
        Some(_) => {}
    }
    let attached = ctx
        .read(
            "ListPoliciesForUser",
            &user,
            client.list_policies_for_user(&user),
        )
        .await?;
    let is_attached = |list: &[crate::cloud::api::AttachedPolicy]| {
        list.iter()
            .any(|p| p.name == name && p.policy_type == "Custom")
    };
    if !is_attached(&attached) {
        let change = Change::AttachPolicy {
            user: user.clone(),
            policy: name.clone(),
        };
        let attach = ctx
            .apply(change, || {
                client.attach_policy_to_user(PolicyType::Custom, &name, &user)
            })
            .await;
        match attach {
            Err(StepError::Cloud(err)) if err.code() == Some("LimitExceeded.User.Policy") => {
                finding.error = Some(err.to_string());
                return Ok(
                    StepResult::halted(Reason::PolicyLimit).finding(Finding::Revoke(finding))
                );
            }
            other => {
                other?;
            }
        }
    }
    if ctx.dry_run() {
        finding.verified = Some(Verified::SkippedInDryRun);
        return with_fence(ctx, StepResult::default().finding(Finding::Revoke(finding))).await;
    }
    let after = ctx
        .read(
            "ListPoliciesForUser",
            &user,
            client.list_policies_for_user(&user),
        )
        .await?;
    if !is_attached(&after) {
        return Err(StepError::Unverified(format!(
            "{name} is not among {user}'s policies"
        )));
    }
    finding.verified = Some(Verified::Yes);
    let result = StepResult {
        contained: true,
        ..StepResult::default()
    }
    .finding(Finding::Revoke(finding));
    with_fence(ctx, result).await
}

/// Adds the network fence to the Deny policy, never in its place: it runs once the policy
/// is verified, and a fence that fails leaves the step to be retried with the policy on.
async fn with_fence(
    ctx: &mut StepContext<'_>,
    result: StepResult,
) -> Result<StepResult, StepError> {
    Ok(match fence::apply(ctx).await? {
        Some(found) => result.finding(Finding::Fence(found)),
        None => result,
    })
}

/// Disables the one leaked key (never "the user's keys") and verifies it. `record` files the
/// finding under its step (`disable_key` for an unused key, `disable_old_key` after a
/// rotation); the time it was verified starts the grace period before deletion.
pub(super) async fn disable(
    ctx: &mut StepContext<'_>,
    record: fn(Disable) -> Finding,
) -> Result<StepResult, StepError> {
    let user = ctx.user()?.to_owned();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let before = keys::set_status(ctx, &user, KeyStatus::Inactive).await?;
    let mut finding = Disable {
        user_name: user,
        access_key_id: key,
        disabled_at: chrono::Utc::now(),
        note: None,
        verified: None,
    };
    if before.is_none() {
        finding.note = Some("the key no longer exists".into());
    } else if ctx.dry_run() {
        finding.verified = Some(Verified::SkippedInDryRun);
        return Ok(StepResult::default().finding(record(finding)));
    } else {
        finding.verified = Some(Verified::Yes);
    }
    Ok(StepResult {
        contained: true,
        ..StepResult::default()
    }
    .finding(record(finding)))
}

/// Policy documents are equal when they parse to the same JSON, whatever their spacing.
fn same_document(stored: Option<&str>, wanted: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
    stored
        .and_then(parse)
        .is_some_and(|s| Some(s) == parse(wanted))
}
