//! The network fence: limits a leaked key in use to its workload's networks (IMS
//! `SetAccessKeyPolicy`) beside the Deny policy (at the same time), reads it back, and on cancel puts the
//! previous policy back exactly as it was read.

use super::context::{StepContext, StepError};
use crate::domain::OwnerType;
use crate::domain::fence::{AccessKeyPolicy, same_policy};
use crate::domain::findings::{Fence, Verified};
use crate::domain::undo::Change;

/// Fences the incident's key when networks are configured for its user; `None` when not.
pub(super) async fn apply(ctx: &StepContext<'_>) -> Result<Option<Fence>, StepError> {
    let user = ctx.user()?.to_owned();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let Some((networks, source)) = ctx.inner.config.fence.networks_for(&user) else {
        return Ok(None);
    };
    let mut finding = Fence {
        access_key_id: key.clone(),
        networks: None,
        source: None,
        previous_policy: None,
        verified: None,
        not_fenced: None,
    };
    let triage = ctx.incident.findings.triage.as_ref();
    if triage.and_then(|t| t.owner_type) == Some(OwnerType::Sts) {
        finding.not_fenced = Some(
            "an STS key: network access policies do not apply to temporary credentials".into(),
        );
        return Ok(Some(finding));
    }
    let Some(upn) = ctx
        .incident
        .findings
        .user_principal_name()
        .map(str::to_owned)
    else {
        finding.not_fenced = Some("triage did not learn the user's principal name".into());
        return Ok(Some(finding));
    };
    let client = ctx.client.clone();
    let wanted = AccessKeyPolicy::fence(&networks).to_json();
    let current = ctx
        .read(
            "GetAccessKeyPolicy",
            &key,
            client.access_key_policy(&upn, &key),
        )
        .await?;
    let change = |from: String| Change::AccessKeyPolicy {
        user_principal_name: upn.clone(),
        access_key_id: key.clone(),
        from,
        to: wanted.clone(),
    };
    let previous = if same_policy(current.as_deref(), Some(&wanted)) {
        // Already fenced: by someone else, or by an earlier run of this step. That run's
        // intent knows the policy before it; if its result was never recorded, the read
        // just made settles it, and the fence is not set a second time.
        let earlier = earlier_fence(ctx, &key).await?;
        if let Some(Earlier {
            from,
            settled: false,
        }) = &earlier
        {
            ctx.reconciled(change(from.clone())).await?;
        }
        earlier.map(|e| e.from)
    } else {
        let from = current.unwrap_or_else(|| AccessKeyPolicy::none().to_json());
        ctx.apply(change(from.clone()), || {
            client.set_access_key_policy(&upn, &key, &wanted)
        })
        .await?;
        Some(from)
    };
    finding.networks = Some(networks);
    finding.source = Some(source);
    finding.previous_policy = previous;
    if ctx.dry_run() {
        finding.verified = Some(Verified::SkippedInDryRun);
        return Ok(Some(finding));
    }
    let after = ctx
        .read(
            "GetAccessKeyPolicy",
            &key,
            client.access_key_policy(&upn, &key),
        )
        .await?;
    if !same_policy(after.as_deref(), Some(&wanted)) {
        return Err(StepError::Unverified(format!(
            "the network access policy of {key} does not show the fence"
        )));
    }
    finding.verified = Some(Verified::Yes);
    Ok(Some(finding))
}

/// This incident's first fence intent on a key: the policy it found, and whether a result
/// (a call's, or a reconciliation's) followed it.
struct Earlier {
    from: String,
    settled: bool,
}

async fn earlier_fence(ctx: &StepContext<'_>, key: &str) -> Result<Option<Earlier>, StepError> {
    let records = ctx.inner.store.incident_audit(ctx.incident.id).await?;
    let fence_of = |record: &crate::domain::AuditRecord| {
        let detail = record.detail();
        match serde_json::from_value(detail["change"].clone()).ok()? {
            Change::AccessKeyPolicy {
                access_key_id,
                from,
                ..
            } if access_key_id == key && detail["step"] != "cancelling" => Some(from),
            _ => None,
        }
    };
    let Some(from) = records
        .iter()
        .filter(|r| r.action == "cloud.intent")
        .find_map(fence_of)
    else {
        return Ok(None);
    };
    let settled = records.iter().any(|r| {
        matches!(r.action.as_str(), "cloud.call" | "cloud.reconciled")
            && r.detail()["outcome"] == "applied"
            && fence_of(r).is_some()
    });
    Ok(Some(Earlier { from, settled }))
}

/// Puts `policy` back on the key and reads it back; `false` when the key no longer exists
/// (its policy went with it).
pub(super) async fn restore(
    ctx: &mut StepContext<'_>,
    user_principal_name: &str,
    access_key_id: &str,
    policy: &str,
) -> Result<bool, StepError> {
    let client = ctx.client.clone();
    let read = client.access_key_policy(user_principal_name, access_key_id);
    let current = match ctx.read("GetAccessKeyPolicy", access_key_id, read).await {
        Ok(current) => current,
        // IMS documents no error code for a missing key here; any EntityNotExist answer
        // means there is no key (or user) left to restore a policy on.
        Err(StepError::Cloud(err))
            if err.code().is_some_and(|c| c.starts_with("EntityNotExist")) =>
        {
            return Ok(false);
        }
        Err(err) => return Err(err),
    };
    if current.as_deref() == Some(policy) {
        return Ok(true);
    }
    let change = Change::AccessKeyPolicy {
        user_principal_name: user_principal_name.to_owned(),
        access_key_id: access_key_id.to_owned(),
        from: current.unwrap_or_else(|| AccessKeyPolicy::none().to_json()),
        to: policy.to_owned(),
    };
    ctx.apply(change, || {
        client.set_access_key_policy(user_principal_name, access_key_id, policy)
    })
    .await?;
    if ctx.dry_run() {
        return Ok(true);
    }
    let after = ctx
        .read(
            "GetAccessKeyPolicy",
            access_key_id,
            client.access_key_policy(user_principal_name, access_key_id),
        )
        .await?;
    if !same_policy(after.as_deref(), Some(policy)) {
        return Err(StepError::Unverified(format!(
            "the network access policy of {access_key_id} was not restored"
        )));
    }
    Ok(true)
}
