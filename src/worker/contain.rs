//! Containment: the Deny policy on a key in use, or disabling a key nobody uses. Both read
//! the current state first and change only what differs, then read back what they did.

use serde_json::Value;

use super::context::{StepContext, StepError, StepResult, applied};
use super::{fence, keys};
use crate::cloud::api::{AccessKeyInfo, KeyStatus, PolicyType};
use crate::cloud::ratelimit::Priority;
use crate::domain::findings::{Disable, Revoke, Verified};
use crate::domain::undo::Change;
use crate::domain::{Finding, Reason};

/// Attaches the runbook's Deny policy to the key's user and, where networks are configured,
/// fences the key to them, at once: neither needs the other's answer, each is verified by
/// its own read-back, and the fence adds to the policy, never replaces it. A fence that
/// fails leaves the step to be retried (the attach then answers "already attached").
pub(super) async fn revoke(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let ctx: &StepContext<'_> = ctx;
    let (deny, fence) = tokio::join!(deny(ctx), fence::apply(ctx));
    let result = deny?;
    let fence = match fence {
        Err(err) if result.halted.is_some() => {
            tracing::warn!(incident.id = ctx.incident.id.0, error = %err,
                "the network fence failed beside a Deny policy that cannot be attached");
            None
        }
        fence => fence?,
    };
    Ok(match fence {
        Some(found) => result.finding(Finding::Fence(found)),
        None => result,
    })
}

/// Attaches the Deny policy and verifies it: the act and the read-back are containment's
/// second and third round trips. Whether the policy is already attached comes from the
/// attach's own answer (`EntityAlreadyExists.User.Policy`), not from a read before it.
async fn deny(ctx: &StepContext<'_>) -> Result<StepResult, StepError> {
    let client = ctx.client.clone();
    let user = ctx.user()?.to_owned();
    let name = ctx.inner.config.policy_name.clone();
    let mut finding = Revoke {
        policy: name.clone(),
        user_name: user.clone(),
        new_version: None,
        error: None,
        verified: None,
    };
    // Twice at most: an attach that finds the policy gone has it recreated, then tries again.
    let mut tries = 0;
    loop {
        tries += 1;
        if ensure_policy(ctx).await? {
            finding.new_version = Some(true);
        }
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
            Err(StepError::Cloud(err))
                if err.code() == Some("EntityNotExist.Policy") && tries < 2 =>
            {
                tracing::warn!(
                    incident.id = ctx.incident.id.0,
                    policy = %name,
                    "the Deny policy is gone; creating it again"
                );
                *ctx.work.deny_policy.lock().await = false;
            }
            other => {
                other?;
                break;
            }
        }
    }
    if ctx.dry_run() {
        finding.verified = Some(Verified::SkippedInDryRun);
        return Ok(StepResult::default().finding(Finding::Revoke(finding)));
    }
    // The key list is not needed to contain, so it is read beside the verification, unless
    // triage read it already.
    let listed = ctx.listed_keys(&user);
    let listing = async {
        match listed {
            Some(keys) => Ok(keys),
            None => ctx.note(
                "ListAccessKeys",
                &user,
                client.list_access_keys(&user).await,
            ),
        }
    };
    let (after, keys) = tokio::join!(
        client.list_policies_for_user_as(&user, Priority::Containment),
        listing
    );
    let after = ctx.note("ListPoliciesForUser", &user, after);
    if !after?
        .iter()
        .any(|p| p.name == name && p.policy_type == "Custom")
    {
        return Err(StepError::Unverified(format!(
            "{name} is not among {user}'s policies"
        )));
    }
    finding.verified = Some(Verified::Yes);
    let mut result = StepResult {
        contained: true,
        ..StepResult::default()
    }
    .finding(Finding::Revoke(finding));
    if let Some(facts) = keys.ok().and_then(|keys| key_facts(ctx, &keys)) {
        result = result.finding(facts);
    }
    Ok(result)
}

/// Makes sure the Deny policy exists with the configured document. The check runs once per
/// process, and again after any change to the policy (read back) or after an attach found it
/// gone, rather than once per incident. `true` when a new version had to be made default.
async fn ensure_policy(ctx: &StepContext<'_>) -> Result<bool, StepError> {
    let inner = ctx.inner;
    let mut checked = ctx.work.deny_policy.lock().await;
    if *checked {
        return Ok(false);
    }
    let client = ctx.client.clone();
    let name = &inner.config.policy_name;
    let document = &inner.config.policy_document;
    let mut new_version = false;
    let read = || client.get_policy(name, PolicyType::Custom);
    match ctx.read("GetPolicy", name, read()).await? {
        Some(policy) if same_document(policy.document.as_deref(), document) => {
            *checked = true;
            return Ok(false);
        }
        None => {
            let description = "akguard: denies high-risk actions to a leaked AccessKey's user";
            ctx.mutate("CreatePolicy", name, || {
                client.create_policy(name, document, description)
            })
            .await?;
        }
        Some(_) => {
            ctx.mutate("CreatePolicyVersion", name, || {
                applied(client.create_policy_version(name, document))
            })
            .await?;
            new_version = true;
        }
    }
    if !ctx.dry_run() {
        let after = ctx.read("GetPolicy", name, read()).await?;
        if !after.is_some_and(|p| same_document(p.document.as_deref(), document)) {
            return Err(StepError::Unverified(format!(
                "{name} does not hold the configured document yet"
            )));
        }
        *checked = true;
    }
    Ok(new_version)
}

/// The triage finding completed with what the key list shows (the key's status, the user's
/// other keys): facts triage no longer waits for, learned beside containment. Only the first
/// containment adds them, so a later disable (after a rotation) leaves them as they were.
fn key_facts(ctx: &StepContext<'_>, keys: &[AccessKeyInfo]) -> Option<Finding> {
    let key = ctx.incident.access_key_id.as_str();
    let mut triage = ctx.incident.findings.triage.clone()?;
    if triage.key_status.is_some() {
        return None;
    }
    let listed = keys.iter().find(|k| k.access_key_id == key)?;
    triage.key_status = Some(format!("{:?}", listed.status));
    triage.other_keys = Some(
        keys.iter()
            .filter(|k| k.access_key_id != key)
            .map(|k| k.access_key_id.clone())
            .collect(),
    );
    Some(Finding::Triage(triage))
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
    let (before, listed) = keys::set_status(ctx, &user, KeyStatus::Inactive).await?;
    let facts = key_facts(ctx, &listed);
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
    let result = StepResult {
        contained: true,
        ..StepResult::default()
    }
    .finding(record(finding));
    Ok(match facts {
        Some(facts) => result.finding(facts),
        None => result,
    })
}

/// Policy documents are equal when they parse to the same JSON, whatever their spacing.
fn same_document(stored: Option<&str>, wanted: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<Value>(s).ok();
    stored
        .and_then(parse)
        .is_some_and(|s| Some(s) == parse(wanted))
}
