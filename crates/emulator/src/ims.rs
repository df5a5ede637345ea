//! IMS (2019-08-15): the identity lookups akguard uses to map an AccessKey to its owner
//! without touching the leaked key, and console logons, which only IMS can switch off.

use serde_json::{Value, json};

use super::error::ApiError;
use super::product::{Call, unknown_action};
use super::scenario::{AccessKey, KeyStatus, Scenario, User};
use super::state::Owner;

pub(crate) const ACTIONS: &[&str] = &[
    "GetUser",
    "GetAccessKeyLastUsed",
    "GetLoginProfile",
    "UpdateLoginProfile",
];

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "GetUser" => get_user(call),
        "GetAccessKeyLastUsed" => get_access_key_last_used(call),
        "GetLoginProfile" => get_login_profile(call),
        "UpdateLoginProfile" => update_login_profile(call),
        _ => Err(unknown_action()),
    }
}

fn by_principal_name<'a>(world: &'a Scenario, upn: &str) -> Result<&'a User, ApiError> {
    world
        .users
        .iter()
        .find(|u| world.principal_name(u).eq_ignore_ascii_case(upn))
        .ok_or_else(|| ApiError::no_such_user(upn))
}

fn no_such_key(id: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotExist.User.AccessKey",
        format!("The access key does not exist: {id}."),
    )
}

fn get_user(call: &mut Call) -> Result<Value, ApiError> {
    let world = &*call.world;
    let params = call.params;
    let user = if let Some(upn) = params.get("UserPrincipalName") {
        by_principal_name(world, upn)?
    } else if let Some(id) = params.get("UserId") {
        world
            .users
            .iter()
            .find(|u| u.user_id() == id)
            .ok_or_else(|| ApiError::no_such_user(id))?
    } else if let Some(key_id) = params.get("UserAccessKeyId") {
        match world.find_key(key_id) {
            Some((Owner::User(user), _)) => user,
            // A root key has no RAM user behind it.
            Some((Owner::Root, _)) => return Err(ApiError::no_such_user(key_id)),
            None => return Err(no_such_key(key_id)),
        }
    } else {
        return Err(ApiError::missing("UserPrincipalName"));
    };
    let create = user.create_date.to_string();
    let mut view = json!({
        "UserId": user.user_id(),
        "UserName": user.name,
        "UserPrincipalName": world.principal_name(user),
        "DisplayName": user.display_name.as_deref().unwrap_or(&user.name),
        "Comments": user.comments,
        "Email": user.email,
        "MobilePhone": user.mobile_phone,
        "CreateDate": create,
        "UpdateDate": user.update_date.map_or(create.clone(), |w| w.to_string()),
        "ProvisionType": "Manual",
        "Tags": { "Tag": [] },
    });
    if let Some(last) = user.last_login_date {
        view["LastLoginDate"] = last.to_string().into();
    }
    Ok(json!({ "User": view }))
}

fn get_access_key_last_used(call: &mut Call) -> Result<Value, ApiError> {
    let id = call.params.required("UserAccessKeyId")?;
    let user = by_principal_name(call.world, call.params.required("UserPrincipalName")?)?;
    let key = user
        .access_keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| no_such_key(id))?;
    Ok(last_used_body(key, true))
}

/// `AccessKeyLastUsed` as RAM and IMS answer it (only IMS names the service); empty when
/// the key was never used.
pub(super) fn last_used_body(key: &AccessKey, with_service: bool) -> Value {
    let mut last_used = json!({});
    if let Some(at) = key.last_used {
        last_used["LastUsedDate"] = at.to_string().into();
        if let Some(service) = key.last_used_service.as_ref().filter(|_| with_service) {
            last_used["ServiceName"] = service.clone().into();
        }
    }
    json!({ "AccessKeyLastUsed": last_used })
}

fn no_login_profile(upn: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotExist.User.LoginProfile",
        format!("The login profile does not exist for user: {upn}."),
    )
}

/// The user named by `UserPrincipalName`, by index, so an update can borrow it mutably.
fn user_index(world: &Scenario, upn: &str) -> Result<usize, ApiError> {
    world
        .users
        .iter()
        .position(|u| world.principal_name(u).eq_ignore_ascii_case(upn))
        .ok_or_else(|| ApiError::no_such_user(upn))
}

fn get_login_profile(call: &mut Call) -> Result<Value, ApiError> {
    let upn = call.params.required("UserPrincipalName")?;
    let user = by_principal_name(call.world, upn)?;
    let profile = user
        .login_profile
        .as_ref()
        .ok_or_else(|| no_login_profile(upn))?;
    let create = profile.create_date.to_string();
    Ok(json!({
        "LoginProfile": {
            "UserPrincipalName": call.world.principal_name(user),
            "Status": profile.status.as_str(),
            "PasswordResetRequired": profile.password_reset_required,
            "MFABindRequired": profile.mfa_bind_required,
            "UpdateDate": create,
        }
    }))
}

/// IMS, unlike RAM, can switch a console logon off (`Status=Inactive`) without deleting it.
fn update_login_profile(call: &mut Call) -> Result<Value, ApiError> {
    let upn = call.params.required("UserPrincipalName")?;
    let status = match call.params.get("Status") {
        None => None,
        Some("Active") => Some(KeyStatus::Active),
        Some("Inactive") => Some(KeyStatus::Inactive),
        Some(_) => return Err(ApiError::invalid("Status", "must be Active or Inactive")),
    };
    let mfa = call.params.bool("MFABindRequired")?;
    let reset = call.params.bool("PasswordResetRequired")?;
    let index = user_index(call.world, upn)?;
    let profile = call.world.users[index]
        .login_profile
        .as_mut()
        .ok_or_else(|| no_login_profile(upn))?;
    if let Some(status) = status {
        profile.status = status;
    }
    if let Some(mfa) = mfa {
        profile.mfa_bind_required = mfa;
    }
    if let Some(reset) = reset {
        profile.password_reset_required = reset;
    }
    Ok(json!({}))
}
