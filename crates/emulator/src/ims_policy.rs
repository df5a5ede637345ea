//! IMS (2019-08-15) network access restriction policies: per AccessKey and for the account.
//! There is no delete call; `Status: Inactive` with no statements is "no policy".

use serde_json::{Value, json};

use super::auth::Principal;
use super::error::ApiError;
use super::network;
use super::product::{Call, unknown_action};
use super::scenario::AccessKey;
use super::state::Owner;
use akguard_netpolicy::fence::AccessKeyPolicy;

pub(crate) const ACTIONS: &[&str] = &[
    "SetAccessKeyPolicy",
    "GetAccessKeyPolicy",
    "SetAccessKeyPolicyForAccount",
    "GetAccessKeyPolicyForAccount",
];

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "SetAccessKeyPolicy" => {
            let policy = call.params.required("AccessKeyPolicy")?.to_owned();
            network::validate(&policy)?;
            key(call)?.network_policy = Some(policy);
            Ok(json!({}))
        }
        "GetAccessKeyPolicy" => {
            let key = key(call)?;
            Ok(json!({
                "AccessKeyId": key.id,
                "AccessKeyPolicy": shown(&key.network_policy),
            }))
        }
        "SetAccessKeyPolicyForAccount" => {
            let policy = call.params.required("AccessKeyPolicy")?.to_owned();
            network::validate(&policy)?;
            call.world.account.network_policy = Some(policy);
            Ok(json!({}))
        }
        "GetAccessKeyPolicyForAccount" => Ok(json!({
            "AccessKeyPolicy": shown(&call.world.account.network_policy),
        })),
        _ => Err(unknown_action()),
    }
}

/// A policy never set is shown as "no policy" (the documents do not say what IMS answers).
fn shown(policy: &Option<String>) -> String {
    policy
        .clone()
        .unwrap_or_else(|| AccessKeyPolicy::none().to_json())
}

/// The key named by `UserAccessKeyId`, of the user named by `UserPrincipalName`; without a
/// principal name, one of the caller's own keys.
fn key<'a>(call: &'a mut Call) -> Result<&'a mut AccessKey, ApiError> {
    let id = call.params.required("UserAccessKeyId")?.to_owned();
    let not_found = || {
        ApiError::not_found(
            "EntityNotExist.User.AccessKey",
            format!("The access key does not exist: {id}."),
        )
    };
    let owner_matches = match call.params.get("UserPrincipalName") {
        Some(upn) => {
            let user = call
                .world
                .users
                .iter()
                .find(|u| call.world.principal_name(u).eq_ignore_ascii_case(upn))
                .ok_or_else(|| ApiError::no_such_user(upn))?;
            user.access_keys.iter().any(|k| k.id == id)
        }
        None => match (call.world.find_key(&id), &call.caller.principal) {
            (Some((Owner::Root, _)), Principal::Root) => true,
            (Some((Owner::User(user), _)), Principal::User(name)) => &user.name == name,
            _ => false,
        },
    };
    if !owner_matches {
        return Err(not_found());
    }
    call.world.key_mut(&id).ok_or_else(not_found)
}
