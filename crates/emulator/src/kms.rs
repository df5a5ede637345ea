//! KMS Secrets Manager (2016-01-20): generic secrets and their versions, with the
//! `ACSCurrent`/`ACSPrevious` stage moves and `PutSecretValue`'s idempotency on `VersionId`.

use serde_json::{Value, json};

use super::error::ApiError;
use super::params::Params;
use super::product::{Call, unknown_action};
use super::scenario::{Scenario, Secret, SecretVersion};
use super::when::When;

pub(crate) const ACTIONS: &[&str] = &["CreateSecret", "PutSecretValue", "GetSecretValue"];

const CURRENT: &str = "ACSCurrent";
const PREVIOUS: &str = "ACSPrevious";
/// A generic secret keeps 10 versions; KMS drops the earliest beyond that.
const MAX_VERSIONS: usize = 10;

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "CreateSecret" => create_secret(call),
        "PutSecretValue" => put_secret_value(call),
        "GetSecretValue" => get_secret_value(call),
        _ => Err(unknown_action()),
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("Forbidden.ResourceNotFound", "The resource is not found.")
}

fn exists() -> ApiError {
    ApiError::conflict("Rejected.ResourceExist", "The resource already exists.")
}

/// `SecretName` may also be the secret's ARN.
fn secret_name(params: &Params) -> Result<&str, ApiError> {
    let name = params.required("SecretName")?;
    Ok(name
        .strip_prefix("acs:kms:")
        .and_then(|rest| rest.split_once(":secret/"))
        .map_or(name, |(_, name)| name))
}

fn find_mut<'a>(world: &'a mut Scenario, name: &str) -> Result<&'a mut Secret, ApiError> {
    world
        .secrets
        .iter_mut()
        .find(|s| s.name == name)
        .ok_or_else(not_found)
}

fn data_type(params: &Params) -> Result<String, ApiError> {
    match params.get("SecretDataType").unwrap_or("text") {
        t @ ("text" | "binary") => Ok(t.to_string()),
        _ => Err(ApiError::invalid(
            "SecretDataType",
            "must be text or binary",
        )),
    }
}

fn arn(call: &Call, name: &str) -> String {
    let region = call.params.get("RegionId").unwrap_or("cn-hangzhou");
    format!("acs:kms:{region}:{}:secret/{name}", call.world.account.uid)
}

fn create_secret(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let name = params.required("SecretName")?;
    let data = params.required("SecretData")?;
    let version_id = params.required("VersionId")?;
    let data_type = data_type(params)?;
    let secret_type = params.get("SecretType").unwrap_or("Generic");
    if call.world.secrets.iter().any(|s| s.name == name) {
        return Err(exists());
    }
    let arn = arn(call, name);
    call.world.secrets.push(Secret {
        name: name.to_string(),
        description: params.get("Description").unwrap_or_default().to_string(),
        secret_type: secret_type.to_string(),
        create_date: When::At(call.now),
        versions: vec![SecretVersion {
            version_id: version_id.to_string(),
            data: data.to_string(),
            data_type,
            stages: vec![CURRENT.into()],
            create_date: When::At(call.now),
        }],
    });
    Ok(json!({
        "Arn": arn,
        "SecretName": name,
        "SecretType": secret_type,
        "VersionId": version_id,
        "AutomaticRotation": "Disabled",
    }))
}

/// `VersionStages` as a JSON array (`["ACSCurrent"]`) or a comma-separated list.
fn requested_stages(params: &Params) -> Result<Vec<String>, ApiError> {
    let Some(raw) = params.get("VersionStages") else {
        return Ok(vec![CURRENT.into()]);
    };
    if raw.trim_start().starts_with('[') {
        return serde_json::from_str(raw)
            .map_err(|_| ApiError::invalid("VersionStages", "expected a JSON array of stages"));
    }
    Ok(raw
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn stages_view(stages: &[String]) -> Value {
    json!({ "VersionStage": stages })
}

fn put_secret_value(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let name = secret_name(params)?;
    let version_id = params.required("VersionId")?;
    let data = params.required("SecretData")?;
    let data_type = data_type(params)?;
    let stages = requested_stages(params)?;
    let now = call.now;
    let secret = find_mut(call.world, name)?;
    if let Some(existing) = secret.versions.iter().find(|v| v.version_id == version_id) {
        // The same version with the same value is a replay and succeeds; anything else would
        // rewrite history.
        if existing.data != data || existing.data_type != data_type {
            return Err(exists());
        }
        return Ok(json!({
            "SecretName": secret.name,
            "VersionId": version_id,
            "VersionStages": stages_view(&existing.stages),
        }));
    }
    if stages.iter().any(|s| s == CURRENT) {
        for version in &mut secret.versions {
            version.stages.retain(|s| s != PREVIOUS);
            if let Some(at) = version.stages.iter().position(|s| s == CURRENT) {
                version.stages[at] = PREVIOUS.into();
            }
        }
    }
    for version in &mut secret.versions {
        version
            .stages
            .retain(|s| s == PREVIOUS || !stages.contains(s));
    }
    secret.versions.push(SecretVersion {
        version_id: version_id.to_string(),
        data: data.to_string(),
        data_type,
        stages: stages.clone(),
        create_date: When::At(now),
    });
    while secret.versions.len() > MAX_VERSIONS {
        let unstaged = secret.versions.iter().position(|v| v.stages.is_empty());
        secret.versions.remove(unstaged.unwrap_or(0));
    }
    Ok(json!({
        "SecretName": secret.name,
        "VersionId": version_id,
        "VersionStages": stages_view(&stages),
    }))
}

fn get_secret_value(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let name = secret_name(params)?;
    let version_id = params.get("VersionId");
    // Without either selector KMS returns the current version.
    let stage = params
        .get("VersionStage")
        .or(version_id.is_none().then_some(CURRENT));
    let secret = call
        .world
        .secrets
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(not_found)?;
    let version = secret
        .versions
        .iter()
        .find(|v| {
            version_id.is_none_or(|id| v.version_id == id)
                && stage.is_none_or(|st| v.stages.iter().any(|s| s == st))
        })
        .ok_or_else(not_found)?;
    Ok(json!({
        "SecretName": secret.name,
        "SecretType": secret.secret_type,
        "SecretData": version.data,
        "SecretDataType": version.data_type,
        "VersionId": version.version_id,
        "VersionStages": stages_view(&version.stages),
        "CreateTime": version.create_date.to_string(),
        "AutomaticRotation": "Disabled",
    }))
}
