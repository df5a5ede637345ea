//! Retiring the leaked key: deleted once the grace period after disabling it is over, then
//! the Deny policy detached (never before: the runbook forbids it while the key exists) and
//! Security Center told the leak is handled.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::context::{StepContext, StepError, StepResult, applied};
use super::keys;
use crate::cloud::api::{DealType, KeyStatus};
use crate::domain::Reason;
use crate::intake::security_center;

pub(super) async fn delete_key(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let disabled_at: Option<DateTime<Utc>> =
        ["disable_old_key", "disable_key"].iter().find_map(|k| {
            ctx.incident
                .findings
                .get(*k)?
                .get("disabled_at")?
                .as_str()?
                .parse()
                .ok()
        });
    let grace = chrono::Duration::from_std(ctx.inner.config.disable_grace).unwrap_or_default();
    if let Some(until) = disabled_at.map(|t| t + grace)
        && Utc::now() < until
    {
        return Ok(
            StepResult::wait_until(until).finding("delete_key", json!({"grace_until": until}))
        );
    }
    let client = ctx.inner.client.clone();
    let user = ctx.user()?.to_owned();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let present =
        |keys: &[crate::cloud::api::AccessKeyInfo]| keys.iter().any(|k| k.access_key_id == key);
    let keys = ctx
        .read("ListAccessKeys", &user, client.list_access_keys(&user))
        .await?;
    if present(&keys) {
        ctx.mutate("DeleteAccessKey", &key, || {
            client.delete_access_key(&user, &key)
        })
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
    let mut finding =
        json!({"access_key_id": key, "deleted": !ctx.dry_run(), "deleted_at": Utc::now()});
    if ctx.inner.config.detach_after_delete {
        keys::detach_deny_policy(ctx, &user).await?;
        finding["deny_policy_detached"] = json!(true);
    }
    let records = ctx
        .inner
        .store
        .delivery_ids(ctx.incident.id, security_center::SOURCE)
        .await?;
    for record in &records {
        let Ok(id) = record.parse::<i64>() else {
            continue;
        };
        let remark = format!("akguard incident {}: key deleted", ctx.incident.id);
        ctx.mutate("ModifyAccessKeyLeakDeal", record, || {
            applied(client.modify_access_key_leak_deal(id, DealType::Disable, &remark))
        })
        .await?;
    }
    finding["security_center_records_closed"] = json!(records);
    Ok(StepResult::default().finding("delete_key", finding))
}

/// Gives the leaked key back during the grace period, because an operator asked: the
/// workload broke. The Deny policy stays attached.
pub(super) async fn reenable(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let user = ctx.user()?.to_owned();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    if keys::set_status(ctx, &user, KeyStatus::Active)
        .await?
        .is_none()
    {
        return Err(StepError::Unverified(format!(
            "{key} no longer exists; it cannot be re-enabled"
        )));
    }
    Ok(StepResult::halted(Reason::Reenabled).finding(
        "reenable",
        json!({"access_key_id": key, "reenabled_at": Utc::now()}),
    ))
}

/// A false positive: undoes what akguard changed (the Deny policy it attached, the key it
/// disabled), then the incident closes as cancelled. What cannot be undone is recorded.
pub(super) async fn cancel(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let findings = ctx.incident.findings.clone();
    let mut finding = json!({"policy_detached": false, "key_reenabled": false});
    let Some(user) = ctx.incident.user_name.clone() else {
        finding["note"] = json!("no RAM user was changed");
        return Ok(StepResult::default().finding("cancel", finding));
    };
    if findings.get("revoke").is_some() {
        keys::detach_deny_policy(ctx, &user).await?;
        finding["policy_detached"] = json!(true);
    }
    let disabled = ["disable_key", "disable_old_key"]
        .iter()
        .any(|k| findings.get(*k).is_some());
    if disabled {
        match keys::set_status(ctx, &user, KeyStatus::Active).await? {
            Some(_) => finding["key_reenabled"] = json!(true),
            None => finding["note"] = json!("the key was already deleted and cannot be restored"),
        }
    }
    Ok(StepResult::default().finding("cancel", finding))
}
