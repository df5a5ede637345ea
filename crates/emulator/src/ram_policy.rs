//! RAM (2015-05-01) policies: custom policies and their versions, and attaching policies to
//! users, with RAM's limits.

use serde_json::{Value, json};

use super::error::ApiError;
use super::params::Params;
use super::product::{Call, unknown_action};
use super::scenario::{Policy, PolicyType, PolicyVersion, Scenario};
use super::when::{When, format_time};

pub(crate) const ACTIONS: &[&str] = &[
    "CreatePolicy",
    "GetPolicy",
    "DeletePolicy",
    "CreatePolicyVersion",
    "ListPolicyVersions",
];

const MAX_VERSIONS: usize = 5;
const MAX_DOCUMENT_CHARS: usize = 6144;
const ROTATE: &str = "DeleteOldestNonDefaultVersionWhenLimitExceeded";

/// What `GetPolicy` shows for a system policy: the emulator does not model their contents.
const SYSTEM_DOCUMENT: &str = r#"{"Version":"1","Statement":[]}"#;

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "CreatePolicy" => create_policy(call),
        "GetPolicy" => get_policy(call),
        "DeletePolicy" => delete_policy(call),
        "CreatePolicyVersion" => create_policy_version(call),
        "ListPolicyVersions" => list_policy_versions(call),
        _ => Err(unknown_action()),
    }
}

pub(crate) fn policy_type(params: &Params) -> Result<PolicyType, ApiError> {
    match params.required("PolicyType")? {
        "System" => Ok(PolicyType::System),
        "Custom" => Ok(PolicyType::Custom),
        _ => Err(ApiError::bad_request(
            "InvalidParameter.PolicyType",
            "The parameter \"PolicyType\" must be System or Custom.",
        )),
    }
}

pub(crate) fn custom<'a>(world: &'a Scenario, name: &str) -> Result<&'a Policy, ApiError> {
    world
        .policies
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::no_such_policy(name))
}

fn custom_mut<'a>(world: &'a mut Scenario, name: &str) -> Result<&'a mut Policy, ApiError> {
    world
        .policies
        .iter_mut()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::no_such_policy(name))
}

/// RAM stores the document as given, but refuses one that is not a policy.
fn checked_document(call: &Call) -> Result<String, ApiError> {
    let document = call.params.required("PolicyDocument")?;
    if document.chars().count() > MAX_DOCUMENT_CHARS {
        return Err(ApiError::bad_request(
            "InvalidParameter.PolicyDocument.Length",
            format!("The policy document exceeds {MAX_DOCUMENT_CHARS} characters."),
        ));
    }
    let parsed: Option<Value> = serde_json::from_str(document).ok();
    let is_policy = parsed.as_ref().is_some_and(|d| {
        d.get("Version").is_some() && d.get("Statement").is_some_and(Value::is_array)
    });
    if !is_policy {
        return Err(ApiError::bad_request(
            "MalformedPolicyDocument",
            "The policy document is malformed.",
        ));
    }
    Ok(document.to_string())
}

fn version_view(version: &PolicyVersion, default: &str) -> Value {
    json!({
        "VersionId": version.id,
        "IsDefaultVersion": version.id == default,
        "PolicyDocument": version.document,
        "CreateDate": version.create_date.to_string(),
    })
}

fn create_policy(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("PolicyName")?;
    if name.len() > 128 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(ApiError::bad_request(
            "InvalidParameter.PolicyName.InvalidChars",
            "The policy name may hold up to 128 letters, digits and hyphens.",
        ));
    }
    let document = checked_document(call)?;
    let description = call
        .params
        .get("Description")
        .unwrap_or_default()
        .to_string();
    if call.world.policies.iter().any(|p| p.name == name) {
        return Err(ApiError::conflict(
            "EntityAlreadyExists.Policy",
            format!("The policy already exists: {name}."),
        ));
    }
    let now = When::At(call.now);
    call.world.policies.push(Policy {
        name: name.to_string(),
        description: description.clone(),
        create_date: now,
        update_date: None,
        default_version: "v1".into(),
        versions: vec![PolicyVersion {
            id: "v1".into(),
            document,
            create_date: now,
        }],
    });
    Ok(json!({
        "Policy": {
            "PolicyName": name,
            "PolicyType": "Custom",
            "Description": description,
            "DefaultVersion": "v1",
            "CreateDate": format_time(call.now),
        }
    }))
}

fn attachment_count(world: &Scenario, name: &str, kind: PolicyType) -> usize {
    world
        .users
        .iter()
        .filter(|u| {
            u.policies
                .iter()
                .any(|p| p.name == name && p.policy_type == kind)
        })
        .count()
}

fn get_policy(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("PolicyName")?;
    let kind = policy_type(call.params)?;
    let count = attachment_count(call.world, name, kind);
    if kind == PolicyType::System {
        let epoch = format_time(chrono::DateTime::UNIX_EPOCH);
        return Ok(json!({
            "Policy": {
                "PolicyName": name, "PolicyType": "System", "Description": "",
                "DefaultVersion": "v1", "AttachmentCount": count,
                "CreateDate": epoch, "UpdateDate": epoch,
            },
            "DefaultPolicyVersion": {
                "VersionId": "v1", "IsDefaultVersion": true,
                "PolicyDocument": SYSTEM_DOCUMENT, "CreateDate": epoch,
            },
        }));
    }
    let policy = custom(call.world, name)?;
    let default = policy
        .versions
        .iter()
        .find(|v| v.id == policy.default_version)
        .map(|v| version_view(v, &policy.default_version));
    Ok(json!({
        "Policy": {
            "PolicyName": policy.name,
            "PolicyType": "Custom",
            "Description": policy.description,
            "DefaultVersion": policy.default_version,
            "AttachmentCount": count,
            "CreateDate": policy.create_date.to_string(),
            "UpdateDate": policy.update_date.unwrap_or(policy.create_date).to_string(),
        },
        "DefaultPolicyVersion": default,
    }))
}

fn delete_policy(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("PolicyName")?;
    let cascade = call.params.bool("CascadingDelete")?.unwrap_or(false);
    custom(call.world, name)?;
    let attached = attachment_count(call.world, name, PolicyType::Custom);
    if attached > 0 && !cascade {
        return Err(ApiError::conflict(
            "DeleteConflict.Policy.User",
            format!("The policy is attached to {attached} user(s): {name}."),
        ));
    }
    for user in &mut call.world.users {
        user.policies
            .retain(|p| !(p.name == name && p.policy_type == PolicyType::Custom));
    }
    call.world.policies.retain(|p| p.name != name);
    Ok(json!({}))
}

fn create_policy_version(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("PolicyName")?;
    let document = checked_document(call)?;
    let set_default = call.params.bool("SetAsDefault")?.unwrap_or(false);
    let rotate = match call.params.get("RotateStrategy") {
        None | Some("None") => false,
        Some(ROTATE) => true,
        Some(_) => return Err(ApiError::invalid("RotateStrategy", "unknown strategy")),
    };
    let now = call.now;
    let policy = custom_mut(call.world, name)?;
    if policy.versions.len() >= MAX_VERSIONS {
        let oldest = policy
            .versions
            .iter()
            .position(|v| v.id != policy.default_version);
        match oldest {
            Some(i) if rotate => {
                policy.versions.remove(i);
            }
            _ => {
                return Err(ApiError::conflict(
                    "LimitExceeded.Policy.Version",
                    format!(
                        "The count of versions of the policy exceeds the limit: {MAX_VERSIONS}."
                    ),
                ));
            }
        }
    }
    // Version ids keep counting up after deletions, as RAM's do.
    let next = policy
        .versions
        .iter()
        .filter_map(|v| v.id.strip_prefix('v')?.parse::<u32>().ok())
        .max()
        .unwrap_or(0)
        + 1;
    let version = PolicyVersion {
        id: format!("v{next}"),
        document,
        create_date: When::At(now),
    };
    if set_default {
        policy.default_version = version.id.clone();
    }
    policy.update_date = Some(When::At(now));
    let view = version_view(&version, &policy.default_version);
    policy.versions.push(version);
    Ok(json!({ "PolicyVersion": view }))
}

fn list_policy_versions(call: &mut Call) -> Result<Value, ApiError> {
    let name = call.params.required("PolicyName")?;
    if policy_type(call.params)? == PolicyType::System {
        return Ok(json!({ "PolicyVersions": { "PolicyVersion": [{
            "VersionId": "v1", "IsDefaultVersion": true,
            "PolicyDocument": SYSTEM_DOCUMENT,
            "CreateDate": format_time(chrono::DateTime::UNIX_EPOCH),
        }] } }));
    }
    let policy = custom(call.world, name)?;
    let versions: Vec<Value> = policy
        .versions
        .iter()
        .map(|v| version_view(v, &policy.default_version))
        .collect();
    Ok(json!({ "PolicyVersions": { "PolicyVersion": versions } }))
}
