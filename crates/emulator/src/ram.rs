//! RAM (2015-05-01): users, their AccessKeys, console logon profiles and MFA devices.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use super::ids;
use super::product::{Call, unknown_action};
use super::scenario::{AccessKey, KeyStatus, Scenario, User};
use super::when::{When, format_time};

pub(crate) const ACTIONS: &[&str] = &[
    "GetUser",
    "ListUsers",
    "ListAccessKeys",
    "CreateAccessKey",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "GetAccessKeyLastUsed",
    "GetLoginProfile",
    "UpdateLoginProfile",
    "GetUserMFAInfo",
];

/// RAM allows two AccessKeys per user.
const MAX_KEYS: usize = 2;

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "GetUser" => get_user(call),
        "ListUsers" => list_users(call),
        "ListAccessKeys" => list_access_keys(call),
        "CreateAccessKey" => create_access_key(call),
        "UpdateAccessKey" => update_access_key(call),
        "DeleteAccessKey" => delete_access_key(call),
        "GetAccessKeyLastUsed" => get_access_key_last_used(call),
        "GetLoginProfile" => get_login_profile(call),
        "UpdateLoginProfile" => update_login_profile(call),
        "GetUserMFAInfo" => get_user_mfa_info(call),
        _ => Err(unknown_action()),
    }
}

/// The user fields `ListUsers` shows; `GetUser` adds `LastLoginDate`.
fn user_view(user: &User) -> Value {
    let create = user.create_date.to_string();
    let update = user.update_date.map_or(create.clone(), |w| w.to_string());
    json!({
        "UserId": user.user_id(),
        "UserName": user.name,
        "DisplayName": user.display_name.as_deref().unwrap_or(&user.name),
        "Comments": user.comments,
        "Email": user.email,
        "MobilePhone": user.mobile_phone,
        "CreateDate": create,
        "UpdateDate": update,
    })
}

fn get_user(call: &mut Call) -> Result<Value, ApiError> {
    let user = call.world.user(call.params.required("UserName")?)?;
    let mut view = user_view(user);
    if let Some(last) = user.last_login_date {
        view["LastLoginDate"] = last.to_string().into();
    }
    Ok(json!({ "User": view }))
}

fn list_users(call: &mut Call) -> Result<Value, ApiError> {
    let max_items: usize = call.params.int("MaxItems")?.unwrap_or(100);
    if !(1..=1000).contains(&max_items) {
        return Err(ApiError::invalid("MaxItems", "must be between 1 and 1000"));
    }
    // The marker names the first user of the next page, so a page boundary survives changes
    // to earlier users.
    let start = match call.params.get("Marker") {
        None => 0,
        Some(marker) => URL_SAFE_NO_PAD
            .decode(marker)
            .ok()
            .and_then(|name| {
                call.world
                    .users
                    .iter()
                    .position(|u| u.name.as_bytes() == name)
            })
            .ok_or_else(|| ApiError::invalid("Marker", "not a marker this API returned"))?,
    };
    let users = &call.world.users;
    let end = (start + max_items).min(users.len());
    let page: Vec<Value> = users[start..end].iter().map(user_view).collect();
    let mut body = json!({ "IsTruncated": end < users.len(), "Users": { "User": page } });
    if let Some(next) = users.get(end) {
        body["Marker"] = URL_SAFE_NO_PAD.encode(&next.name).into();
    }
    Ok(body)
}

/// Whose keys an action is about: `UserName`, or the caller's own when it is left out.
fn key_holder<'a>(call: &'a mut Call) -> Result<&'a mut Vec<AccessKey>, ApiError> {
    let world: &'a mut Scenario = &mut *call.world;
    let name = match (call.params.get("UserName"), &call.caller.principal) {
        (Some(name), _) => name.to_string(),
        (None, Principal::User(name)) => name.clone(),
        (None, Principal::Root) => return Ok(&mut world.account.access_keys),
        (None, Principal::Role { .. }) => return Err(ApiError::missing("UserName")),
    };
    Ok(&mut world.user_mut(&name)?.access_keys)
}

fn no_such_key(id: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotExist.User.AccessKey",
        format!("The access key does not exist: {id}."),
    )
}

fn list_access_keys(call: &mut Call) -> Result<Value, ApiError> {
    let keys: Vec<Value> = key_holder(call)?
        .iter()
        .map(|k| {
            json!({
                "AccessKeyId": k.id,
                "Status": k.status.as_str(),
                "CreateDate": k.create_date.to_string(),
            })
        })
        .collect();
    Ok(json!({ "AccessKeys": { "AccessKey": keys } }))
}

fn create_access_key(call: &mut Call) -> Result<Value, ApiError> {
    let now = call.now;
    let keys = key_holder(call)?;
    if keys.len() >= MAX_KEYS {
        return Err(ApiError::conflict(
            "LimitExceeded.User.AccessKey",
            format!("The count of access keys exceeds the limit: {MAX_KEYS}."),
        ));
    }
    let key = AccessKey {
        id: ids::access_key_id(),
        secret: ids::access_key_secret(),
        status: KeyStatus::Active,
        create_date: When::At(now),
        last_used: None,
        last_used_service: None,
        leaked: false,
        network_policy: None,
    };
    let view = json!({
        "AccessKeyId": key.id,
        "AccessKeySecret": key.secret,
        "Status": key.status.as_str(),
        "CreateDate": format_time(now),
    });
    keys.push(key);
    Ok(json!({ "AccessKey": view }))
}

fn update_access_key(call: &mut Call) -> Result<Value, ApiError> {
    let id = call.params.required("UserAccessKeyId")?;
    let status = match call.params.required("Status")? {
        "Active" => KeyStatus::Active,
        "Inactive" => KeyStatus::Inactive,
        _ => return Err(ApiError::invalid("Status", "must be Active or Inactive")),
    };
    let keys = key_holder(call)?;
    let key = keys
        .iter_mut()
        .find(|k| k.id == id)
        .ok_or_else(|| no_such_key(id))?;
    key.status = status;
    Ok(json!({}))
}

fn delete_access_key(call: &mut Call) -> Result<Value, ApiError> {
    let id = call.params.required("UserAccessKeyId")?;
    let keys = key_holder(call)?;
    let at = keys
        .iter()
        .position(|k| k.id == id)
        .ok_or_else(|| no_such_key(id))?;
    keys.remove(at);
    Ok(json!({}))
}

fn get_access_key_last_used(call: &mut Call) -> Result<Value, ApiError> {
    let id = call.params.required("UserAccessKeyId")?;
    let user = call.world.user(call.params.required("UserName")?)?;
    let key = user
        .access_keys
        .iter()
        .find(|k| k.id == id)
        .ok_or_else(|| no_such_key(id))?;
    Ok(super::ims::last_used_body(key, false))
}

fn no_login_profile(name: &str) -> ApiError {
    ApiError::not_found(
        "EntityNotExist.User.LoginProfile",
        format!("The login policy does not exist for user: {name}."),
    )
}

fn get_login_profile(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("UserName")?;
    let user = call.world.user(name)?;
    let profile = user
        .login_profile
        .as_ref()
        .ok_or_else(|| no_login_profile(name))?;
    Ok(json!({
        "LoginProfile": {
            "UserName": user.name,
            "PasswordResetRequired": profile.password_reset_required,
            "MFABindRequired": profile.mfa_bind_required,
            "CreateDate": profile.create_date.to_string(),
        }
    }))
}

fn update_login_profile(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("UserName")?;
    let mfa = call.params.bool("MFABindRequired")?;
    let reset = call.params.bool("PasswordResetRequired")?;
    let user = call.world.user_mut(name)?;
    let profile = user
        .login_profile
        .as_mut()
        .ok_or_else(|| no_login_profile(name))?;
    if let Some(mfa) = mfa {
        profile.mfa_bind_required = mfa;
    }
    if let Some(reset) = reset {
        profile.password_reset_required = reset;
    }
    Ok(json!({}))
}

fn get_user_mfa_info(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("UserName")?;
    let device = call.world.user(name)?.mfa_device.as_ref().ok_or_else(|| {
        ApiError::not_found(
            "EntityNotExist.User.MFADevice",
            format!("The MFA device does not exist for user: {name}."),
        )
    })?;
    Ok(json!({ "MFADevice": { "SerialNumber": device.serial_number, "Type": device.kind } }))
}
