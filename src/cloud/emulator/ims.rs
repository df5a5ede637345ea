//! IMS (2019-08-15): the identity lookups akguard uses to map an AccessKey to its owner
//! without touching the leaked key.

use serde_json::{Value, json};

use super::error::ApiError;
use super::product::{Call, unknown_action};
use super::scenario::{AccessKey, Scenario, User};
use super::state::Owner;

pub(crate) const ACTIONS: &[&str] = &["GetUser", "GetAccessKeyLastUsed"];

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "GetUser" => get_user(call),
        "GetAccessKeyLastUsed" => get_access_key_last_used(call),
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
