//! Triage: whose key is it, is it protected, is it in use, can its workload take a new one.
//! Every fact is proven against the cloud before any action names the key.

use super::context::{OwnKeys, StepContext, StepError, StepResult};
use super::{identity, usage};
use crate::cloud::api::AccountType;
use crate::cloud::ratelimit::Priority;
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
    let client = ctx.client.clone();
    // Owner and last use both answer from the key id alone, so they are asked at once: the
    // first of containment's three round trips. (IMS's own GetAccessKeyLastUsed needs the
    // owner's principal name, so it would cost a second one; it stays the fallback.) When
    // the report names the key's user, that user's key list is read beside them: if the
    // owner proves to be that user, disabling the key needs no read of its status before
    // the act. A name that proves wrong costs one read and nothing else.
    let named = incident.user_name.clone();
    let listing = async {
        match &named {
            Some(user) => Some(
                client
                    .list_access_keys_as(user, Priority::Containment)
                    .await,
            ),
            None => None,
        }
    };
    let (owner, last_use, listed) = tokio::join!(
        client.user_by_access_key(key),
        client.access_key_last_used_info(key, Priority::Containment),
        listing
    );
    let listed = match (named, listed) {
        (Some(user), Some(listed)) => ctx
            .note("ListAccessKeys", &user, listed)
            .ok()
            .map(|keys| OwnKeys { user, keys }),
        _ => None,
    };
    let ims_owner = ctx.note("GetUser", key, owner);
    let last_use = match ctx.note("GetAccessKeyLastUsedInfo", key, last_use) {
        Ok(info) => Some(info),
        Err(StepError::Cloud(err))
            if err.code().is_some_and(|c| c.starts_with("EntityNotExist")) =>
        {
            None
        }
        Err(err) => {
            if !matches!(&ims_owner, Ok(Some(u)) if u.user_principal_name.is_some()) {
                return Err(err);
            }
            tracing::warn!(incident.id = incident.id.0, error = %err,
                "ActionTrail cannot say when the key was last used; asking IMS instead");
            None
        }
    };
    // IMS GetUser by key id proves the key is this user's own; only an owner that ActionTrail
    // alone names is checked against the user's key list before anything acts on it.
    let (user, principal, last_used) = match ims_owner? {
        Some(user) => {
            let last_used = match (last_use, &user.user_principal_name) {
                (Some(info), _) => info.used_at,
                (None, Some(upn)) => {
                    ctx.read(
                        "GetAccessKeyLastUsed",
                        key,
                        client.access_key_last_used(key, upn),
                    )
                    .await?
                }
                (None, None) => None,
            };
            (user.user_name, user.user_principal_name, last_used)
        }
        None => match last_use {
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
            Some(info) if info.account_type == AccountType::RamUser && info.user_name.is_some() => {
                let user = info.user_name.unwrap_or_default();
                let keys = ctx
                    .read(
                        "ListAccessKeys",
                        &user,
                        client.list_access_keys_as(&user, Priority::Containment),
                    )
                    .await?;
                if !keys.iter().any(|k| k.access_key_id == key) {
                    return Ok(owner_unknown(Triage {
                        claimed_owner: Some(user),
                        why: Some("the key is not in that user's key list".into()),
                        ..Triage::default()
                    }));
                }
                (user, None, info.used_at)
            }
            _ => {
                return Ok(owner_unknown(Triage {
                    why: Some("neither IMS nor ActionTrail knows the key".into()),
                    ..Triage::default()
                }));
            }
        },
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
            created_by_incident: Some(parent),
            path: Some(Path::AttackerKey),
            ..Triage::default()
        };
        return Ok(result.finding(Finding::Triage(triage)));
    }
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
        keys: listed.filter(|own| own.user == user),
        owner: Some((OwnerType::RamUser, Some(user))),
        ..StepResult::default()
    };
    Ok(result.finding(Finding::Triage(triage)))
}
