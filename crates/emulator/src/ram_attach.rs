//! RAM (2015-05-01) policy attachment: attaching and detaching policies on users, within RAM's
//! per-user limits, and listing what a user holds.

use serde_json::{Value, json};

use super::error::ApiError;
use super::params::Params;
use super::product::{Call, unknown_action};
use super::ram_policy::{custom, policy_type};
use super::scenario::{AttachedPolicy, PolicyType, Scenario};
use super::when::When;

pub(crate) const ACTIONS: &[&str] = &[
    "AttachPolicyToUser",
    "DetachPolicyFromUser",
    "ListPoliciesForUser",
];

/// RAM's per-user attachment limits.
const MAX_CUSTOM: usize = 10;
const MAX_SYSTEM: usize = 20;

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "AttachPolicyToUser" => attach(call),
        "DetachPolicyFromUser" => detach(call),
        "ListPoliciesForUser" => list_for_user(call),
        _ => Err(unknown_action()),
    }
}

/// The checks attach and detach share: the user exists, and a custom policy exists.
fn target<'p>(
    world: &Scenario,
    params: &'p Params,
) -> Result<(&'p str, &'p str, PolicyType), ApiError> {
    let kind = policy_type(params)?;
    let policy = params.required("PolicyName")?;
    let user = params.required("UserName")?;
    world.user(user)?;
    if kind == PolicyType::Custom {
        custom(world, policy)?;
    }
    Ok((policy, user, kind))
}

fn attach(call: &mut Call) -> Result<Value, ApiError> {
    let (policy, user_name, kind) = target(call.world, call.params)?;
    let now = call.now;
    let user = call.world.user_mut(user_name)?;
    if user
        .policies
        .iter()
        .any(|p| p.name == policy && p.policy_type == kind)
    {
        return Err(ApiError::conflict(
            "EntityAlreadyExists.User.Policy",
            format!("The policy is already attached to the user: {policy}."),
        ));
    }
    let limit = match kind {
        PolicyType::Custom => MAX_CUSTOM,
        PolicyType::System => MAX_SYSTEM,
    };
    if user
        .policies
        .iter()
        .filter(|p| p.policy_type == kind)
        .count()
        >= limit
    {
        return Err(ApiError::conflict(
            "LimitExceeded.User.Policy",
            format!(
                "The count of {} policies attached to the user exceeds the limit: {limit}.",
                kind.as_str()
            ),
        ));
    }
    user.policies.push(AttachedPolicy {
        name: policy.to_string(),
        policy_type: kind,
        attach_date: When::At(now),
    });
    Ok(json!({}))
}

fn detach(call: &mut Call) -> Result<Value, ApiError> {
    let (policy, user_name, kind) = target(call.world, call.params)?;
    let user = call.world.user_mut(user_name)?;
    let at = user
        .policies
        .iter()
        .position(|p| p.name == policy && p.policy_type == kind)
        .ok_or_else(|| {
            ApiError::not_found(
                "EntityNotExist.User.Policy",
                format!("The policy is not attached to the user: {policy}."),
            )
        })?;
    user.policies.remove(at);
    Ok(json!({}))
}

fn list_for_user(call: &mut Call) -> Result<Value, ApiError> {
    let user = call.world.user(call.params.required("UserName")?)?;
    let policies: Vec<Value> = user
        .policies
        .iter()
        .map(|attached| {
            let defined = (attached.policy_type == PolicyType::Custom)
                .then(|| call.world.policies.iter().find(|p| p.name == attached.name))
                .flatten();
            json!({
                "PolicyName": attached.name,
                "PolicyType": attached.policy_type.as_str(),
                "Description": defined.map_or("", |p| p.description.as_str()),
                "DefaultVersion": defined.map_or("v1", |p| p.default_version.as_str()),
                "AttachDate": attached.attach_date.to_string(),
            })
        })
        .collect();
    Ok(json!({ "Policies": { "Policy": policies } }))
}
