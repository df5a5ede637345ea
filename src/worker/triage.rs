//! Triage: whose key is it, is it protected, is it in use, can its workload take a new one.
//! Every fact is proven against the cloud before any action names the key.

use super::context::{StepContext, StepError, StepResult};
use super::{identity, usage};
use crate::cloud::api::AccountType;
use crate::domain::findings::Triage;
use crate::domain::triage::Usage;
use crate::domain::{Finding, OwnerType, Path, Reason};

/// Triage could not prove whose key it is.
fn owner_unknown(triage: Triage) -> StepResult {
    StepResult::halted(Reason::OwnerUnknown).finding(Finding::Triage(triage))
}

pub(super) async fn run(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let incident = ctx.incident;
    let key = incident.access_key_id.as_str();
    if let Some(why) = identity::key_protection(ctx).await? {
        return Ok(identity::stop(ctx, why, identity::Named::default()));
    }
    if incident.access_key_id.is_sts() {
        let result = StepResult {
            path: Some(Path::StsKey),
            owner: Some((OwnerType::Sts, None)),
            ..StepResult::default()
        };
        let triage = Triage {
            owner_type: Some(OwnerType::Sts),
            ..Triage::default()
        };
        return Ok(result.finding(Finding::Triage(triage)));
    }
    let client = ctx.inner.client.clone();
    let ims_owner = ctx
        .read("GetUser", key, client.user_by_access_key(key))
        .await?;
    let (user, principal) = match ims_owner {
        Some(user) => (user.user_name, user.user_principal_name),
        None => {
            // IMS knows only RAM users; ActionTrail also knows the account's own keys.
            let info = match ctx
                .read(
                    "GetAccessKeyLastUsedInfo",
                    key,
                    client.access_key_last_used_info(key),
                )
                .await
            {
                Ok(info) => Some(info),
                Err(StepError::Cloud(err))
                    if err.code().is_some_and(|c| c.starts_with("EntityNotExist")) =>
                {
                    None
                }
                Err(err) => return Err(err),
            };
            match info {
                Some(info) if info.account_type == AccountType::RootAccount => {
                    // Informative only (the account's key is left to a person either way), so
                    // no ActionTrail look-up delays it; null when only one could tell.
                    let usage = usage::from_last_use(ctx, info.used_at);
                    let result = StepResult {
                        path: Some(Path::AccountKey),
                        owner: Some((OwnerType::Account, None)),
                        ..StepResult::default()
                    };
                    let triage = Triage {
                        owner_type: Some(OwnerType::Account),
                        account_id: info.account_id,
                        last_used_at: info.used_at,
                        usage,
                        ..Triage::default()
                    };
                    return Ok(result.finding(Finding::Triage(triage)));
                }
                Some(info)
                    if info.account_type == AccountType::RamUser && info.user_name.is_some() =>
                {
                    (info.user_name.unwrap_or_default(), None)
                }
                _ => {
                    return Ok(owner_unknown(Triage {
                        why: Some("neither IMS nor ActionTrail knows the key".into()),
                        ..Triage::default()
                    }));
                }
            }
        }
    };
    if let Some(why) = ctx.inner.protection.user(&user) {
        let named = identity::Named {
            user_name: Some(user.clone()),
            ..identity::Named::default()
        };
        let mut stop = identity::stop(ctx, why, named);
        stop.owner = Some((OwnerType::RamUser, Some(user)));
        return Ok(stop);
    }
    // Act only on a key proven to be in this user's own list.
    let keys = ctx
        .read("ListAccessKeys", &user, client.list_access_keys(&user))
        .await?;
    let Some(listed) = keys.iter().find(|k| k.access_key_id == key) else {
        return Ok(owner_unknown(Triage {
            claimed_owner: Some(user),
            why: Some("the key is not in that user's key list".into()),
            ..Triage::default()
        }));
    };
    if let Some(parent) = incident.parent_incident_id {
        // The leaked key of the parent incident created this key: it is the attacker's, and
        // however busy it is, no workload of ours depends on it.
        let result = StepResult {
            path: Some(Path::AttackerKey),
            owner: Some((OwnerType::RamUser, Some(user.clone()))),
            ..StepResult::default()
        };
        let triage = Triage {
            owner_type: Some(OwnerType::RamUser),
            user_name: Some(user),
            user_principal_name: principal,
            key_status: Some(format!("{:?}", listed.status)),
            created_by_incident: Some(parent),
            path: Some(Path::AttackerKey),
            ..Triage::default()
        };
        return Ok(result.finding(Finding::Triage(triage)));
    }
    let last_used = match &principal {
        Some(upn) => {
            ctx.read(
                "GetAccessKeyLastUsed",
                key,
                client.access_key_last_used(key, upn),
            )
            .await?
        }
        None => {
            let info = ctx
                .read(
                    "GetAccessKeyLastUsedInfo",
                    key,
                    client.access_key_last_used_info(key),
                )
                .await?;
            info.used_at
        }
    };
    let judged = usage::judge(ctx, last_used).await?;
    // A use nobody can attribute, or a window the data cannot cover, is contained as in use
    // and left to a person: never rotated unasked, never disabled.
    let rotatable =
        judged.usage == Usage::InUse && ctx.inner.config.rotation.iter().any(|(u, _)| *u == user);
    let path = match (judged.usage, rotatable) {
        (Usage::Unused, _) => Path::RamKeyUnused,
        (_, true) => Path::RamKeyRotatable,
        (_, false) => Path::RamKeyInUse,
    };
    if let Some(caveat) = judged.usage.caveat() {
        tracing::warn!(
            incident.id = incident.id.0,
            usage = judged.usage.as_str(),
            "{caveat}"
        );
    }
    let triage = Triage {
        owner_type: Some(OwnerType::RamUser),
        user_name: Some(user.clone()),
        user_principal_name: principal,
        key_status: Some(format!("{:?}", listed.status)),
        other_keys: Some(
            keys.iter()
                .filter(|k| k.access_key_id != key)
                .map(|k| k.access_key_id.clone())
                .collect(),
        ),
        last_used_at: last_used,
        detected_at: Some(incident.detected_at),
        stated_detected_at: incident.stated_detected_at,
        used_before_detection: judged.evidence.used_before_detection,
        evidence: Some(judged.evidence),
        usage: Some(judged.usage),
        rotatable: Some(rotatable),
        path: Some(path),
        ..Triage::default()
    };
    let result = StepResult {
        path: Some(path),
        owner: Some((OwnerType::RamUser, Some(user))),
        ..StepResult::default()
    };
    Ok(result.finding(Finding::Triage(triage)))
}
