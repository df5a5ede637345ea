//! Retiring the leaked key: deleted once the grace period after disabling it is over, then
//! the Deny policy detached (never before: the runbook forbids it while the key exists) and
//! Security Center told the leak is handled.

use chrono::Utc;

use super::context::{StepContext, StepError, StepResult, applied};
use super::{fence, keys, logins};
use crate::cloud::api::{DealType, KeyStatus, LeakStatus, LoginStatus};
use crate::domain::findings::{Cancel, Deletion, Reenable};
use crate::domain::undo::{self, Change, NotUndone};
use crate::domain::{Finding, Reason};
use crate::intake::security_center;

pub(super) async fn delete_key(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let grace = chrono::Duration::from_std(ctx.inner.config.disable_grace).unwrap_or_default();
    if let Some(until) = ctx.incident.findings.disabled_at().map(|t| t + grace)
        && Utc::now() < until
    {
        let waiting = Deletion {
            grace_until: Some(until),
            ..Deletion::default()
        };
        return Ok(StepResult::wait_until(until).finding(Finding::DeleteKey(waiting)));
    }
    let client = ctx.client.clone();
    let user = ctx.user()?.to_owned();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let present =
        |keys: &[crate::cloud::api::AccessKeyInfo]| keys.iter().any(|k| k.access_key_id == key);
    let keys = ctx
        .read("ListAccessKeys", &user, client.list_access_keys(&user))
        .await?;
    if present(&keys) {
        let change = Change::DeleteKey {
            user: user.clone(),
            access_key_id: key.clone(),
        };
        ctx.apply(change, || client.delete_access_key(&user, &key))
            .await?;
        if !ctx.dry_run() {
            let after = ctx
                .read("ListAccessKeys", &user, client.list_access_keys(&user))
                .await?;
            if present(&after) {
                return Err(StepError::Unverified(format!("{key} still exists")));
            }
        }
    }
    let mut finding = Deletion {
        access_key_id: Some(key.clone()),
        deleted: Some(!ctx.dry_run()),
        deleted_at: Some(Utc::now()),
        ..Deletion::default()
    };
    if ctx.inner.config.detach_after_delete {
        keys::detach_deny_policy(ctx, &user).await?;
        finding.deny_policy_detached = Some(true);
    }
    let records = ctx
        .inner
        .store
        .delivery_ids(ctx.incident.id, security_center::SOURCE)
        .await?;
    let closing: Vec<(&String, i64)> = records
        .iter()
        .filter_map(|r| Some((r, security_center::record_id(r)?)))
        .collect();
    let ids: Vec<i64> = closing.iter().map(|(_, id)| *id).collect();
    // In the incident's own account: Security Center takes no ResourceDirectoryAccountId here.
    for (record, id) in &closing {
        let remark = format!("akguard incident {}: key deleted", ctx.incident.id);
        ctx.mutate("ModifyAccessKeyLeakDeal", record, || {
            applied(client.modify_access_key_leak_deal(*id, DealType::Disable, &remark))
        })
        .await?;
    }
    if !ids.is_empty() && !ctx.dry_run() {
        // A 200 from ModifyAccessKeyLeakDeal means accepted, not done: read the records back.
        let page = ctx
            .read(
                "DescribeAccesskeyLeakList",
                &key,
                client.leak_records_of_key(&key),
            )
            .await?;
        let open: Vec<String> = ids
            .iter()
            .filter(|id| {
                !page
                    .records
                    .iter()
                    .any(|r| r.id == **id && r.status == LeakStatus::Dealt)
            })
            .map(i64::to_string)
            .collect();
        if !open.is_empty() {
            return Err(StepError::Unverified(format!(
                "Security Center does not show leak record(s) {} as handled yet",
                open.join(", ")
            )));
        }
    }
    finding.security_center_records_closed = Some(records);
    Ok(StepResult::default().finding(Finding::DeleteKey(finding)))
}

/// Gives the leaked key back during the grace period, because an operator asked: the
/// workload broke. The Deny policy stays attached.
pub(super) async fn reenable(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let user = ctx.user()?.to_owned();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    if keys::set_status(ctx, &user, KeyStatus::Active)
        .await?
        .0
        .is_none()
    {
        return Err(StepError::Unverified(format!(
            "{key} no longer exists; it cannot be re-enabled"
        )));
    }
    Ok(
        StepResult::halted(Reason::Reenabled).finding(Finding::Reenable(Reenable {
            access_key_id: key,
            reenabled_at: Utc::now(),
        })),
    )
}

/// A false positive: undoes the changes that the recorded call results show akguard applied,
/// and only those, then the incident closes as cancelled. What it cannot undo (a deleted key,
/// a call whose result was never recorded) is listed in the finding.
pub(super) async fn cancel(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let records = ctx.inner.store.incident_audit(ctx.incident.id).await?;
    let plan = undo::plan(&records);
    let mut undone = Vec::new();
    let mut not_undone = plan.cannot.clone();
    let mut gone = |change: &Change, why: &str| {
        not_undone.push(NotUndone {
            api: change.api().into(),
            target: change.target().into(),
            why: why.into(),
        })
    };
    for change in &plan.undo {
        let done = match change {
            Change::DetachPolicy { user, policy } => {
                keys::detach_policy(ctx, user, policy).await?;
                true
            }
            Change::KeyStatus {
                user,
                access_key_id,
                to,
                ..
            } => {
                let wanted = KeyStatus::parse(to).unwrap_or(KeyStatus::Active);
                let before = keys::set_key_status(ctx, user, access_key_id, wanted).await?;
                if before.is_none() {
                    gone(change, "the key no longer exists");
                }
                before.is_some()
            }
            Change::LoginStatus {
                user,
                user_principal_name,
                to,
                ..
            } => {
                let wanted = LoginStatus::parse(to).unwrap_or(LoginStatus::Active);
                let before = logins::set_status(ctx, user, user_principal_name, wanted).await?;
                if before.is_none() {
                    gone(change, "the user has no console logon any more");
                }
                before.is_some()
            }
            Change::AccessKeyPolicy {
                user_principal_name,
                access_key_id,
                to,
                ..
            } => {
                let restored = fence::restore(ctx, user_principal_name, access_key_id, to).await?;
                if !restored {
                    gone(change, "the key no longer exists; its policy went with it");
                }
                restored
            }
            Change::AttachPolicy { .. } | Change::DeleteKey { .. } => {
                gone(change, "akguard has no undo for this change");
                false
            }
        };
        if done {
            undone.push(change.describe());
        }
    }
    let finding = Cancel {
        undone,
        not_undone,
        dry_run: ctx.dry_run(),
    };
    Ok(StepResult::default().finding(Finding::Cancel(finding)))
}
