//! STS (2015-04-01): `AssumeRole` and `GetCallerIdentity`, and the credential minting the
//! metadata service shares.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use super::ids;
use super::product::{Call, unknown_action};
use super::scenario::{Role, Scenario, TemporaryCredential};
use super::when::When;

pub(crate) const ACTIONS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

/// Expired credentials are kept this long, so their use is told "expired" rather than "unknown".
const KEEP_EXPIRED: TimeDelta = TimeDelta::hours(6);

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "AssumeRole" => assume_role(call),
        "GetCallerIdentity" => get_caller_identity(call),
        _ => Err(unknown_action()),
    }
}

pub(crate) fn find_role<'a>(world: &'a Scenario, arn: &str) -> Option<&'a Role> {
    world.roles.iter().find(|r| r.arn.eq_ignore_ascii_case(arn))
}

/// Mints credentials for `role` lasting `secs`, and remembers them so they can sign requests.
pub(crate) fn issue(
    world: &mut Scenario,
    role_arn: &str,
    session: &str,
    secs: u32,
    now: DateTime<Utc>,
) -> TemporaryCredential {
    world
        .temporary_credentials
        .retain(|c| c.expiration.at(now) + KEEP_EXPIRED > now);
    let cred = TemporaryCredential {
        access_key_id: ids::sts_access_key_id(),
        secret: ids::sts_secret(),
        security_token: ids::security_token(),
        expiration: When::At(now + TimeDelta::seconds(i64::from(secs))),
        role_arn: role_arn.to_string(),
        session_name: session.to_string(),
    };
    world.temporary_credentials.push(cred.clone());
    cred
}

fn assume_role(call: &mut Call) -> Result<Value, ApiError> {
    let arn = call.params.required("RoleArn")?;
    let session = call.params.required("RoleSessionName")?;
    let requested: Option<u32> = call.params.int("DurationSeconds")?;
    if requested == Some(0) {
        return Err(ApiError::invalid("DurationSeconds", "must be positive"));
    }
    let not_found = || {
        ApiError::not_found(
            "EntityNotExist.Role",
            format!("The role does not exist: {arn}."),
        )
    };
    // A role of this account, else a member's: its credentials then act in that member.
    let (world, role) = match find_role(call.world, arn).cloned() {
        Some(role) => (&mut *call.world, role),
        None => call.world.member_role_mut(arn).ok_or_else(not_found)?,
    };
    // The scenario's duration caps what is issued, so a short one forces client refreshes.
    let secs = requested.map_or(role.duration_secs, |r| r.min(role.duration_secs));
    let role_name = role.name().to_string();
    let role_id = role.role_id.clone().unwrap_or_default();
    let uid = world.account.uid.clone();
    let cred = issue(world, &role.arn, session, secs, call.now);
    Ok(json!({
        "Credentials": {
            "AccessKeyId": cred.access_key_id,
            "AccessKeySecret": cred.secret,
            "SecurityToken": cred.security_token,
            "Expiration": cred.expiration.to_string(),
        },
        "AssumedRoleUser": {
            "Arn": format!("acs:ram::{uid}:role/{role_name}/{session}"),
            "AssumedRoleId": format!("{role_id}:{session}"),
        },
    }))
}

fn get_caller_identity(call: &mut Call) -> Result<Value, ApiError> {
    let uid = &call.world.account.uid;
    Ok(match &call.caller.principal {
        Principal::Root => json!({
            "AccountId": uid, "UserId": uid, "PrincipalId": uid,
            "IdentityType": "Account", "Arn": format!("acs:ram::{uid}:root"),
        }),
        Principal::User(name) => {
            let id = call.world.user(name)?.user_id();
            json!({
                "AccountId": uid, "UserId": id, "PrincipalId": id,
                "IdentityType": "RAMUser", "Arn": format!("acs:ram::{uid}:user/{name}"),
            })
        }
        Principal::Role { arn, session } => {
            let role = find_role(call.world, arn);
            let role_id = role.and_then(|r| r.role_id.clone()).unwrap_or_default();
            let name = role.map_or("", Role::name);
            json!({
                "AccountId": uid, "UserId": format!("{role_id}:{session}"),
                "PrincipalId": format!("{role_id}:{session}"), "RoleId": role_id,
                "IdentityType": "AssumedRoleUser",
                "Arn": format!("acs:ram::{uid}:assumed-role/{name}/{session}"),
            })
        }
    })
}
