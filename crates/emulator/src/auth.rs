//! The gateway's checks on every RPC request: common parameters, timestamp window, AccessKey
//! and STS token, signature (V1 here, V3 through the caller's check), nonce replay.

use chrono::{DateTime, TimeDelta, Utc};

use super::error::ApiError;
use super::params::Params;
use super::scenario::KeyStatus;
use super::signature;
use super::state::{Inner, Owner};
use super::when::{When, parse_time};

/// How far a timestamp may be from the emulator's clock, and how long a nonce stays spent.
const WINDOW: TimeDelta = TimeDelta::minutes(15);

/// Common parameters every V1-signed request carries, in the order they are checked.
const COMMON: [&str; 8] = [
    "Action",
    "Version",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "Timestamp",
    "Signature",
];

/// Who signed a request.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub principal: Principal,
    /// Restrictive protection applies to this key.
    pub leaked: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Principal {
    Root,
    User(String),
    Role { arn: String, session: String },
}

pub(crate) fn check_common(params: &Params) -> Result<(), ApiError> {
    for name in COMMON {
        params.required(name)?;
    }
    if params.get("SignatureMethod") != Some("HMAC-SHA1") {
        return Err(ApiError::invalid(
            "SignatureMethod",
            "only HMAC-SHA1 is supported",
        ));
    }
    if params.get("SignatureVersion") != Some("1.0") {
        return Err(ApiError::invalid(
            "SignatureVersion",
            "only 1.0 is supported",
        ));
    }
    Ok(())
}

/// The V1 signature check: `Signature` against the string to sign rebuilt from `params`.
pub(crate) fn verify_v1(secret: &str, method: &str, params: &Params) -> Result<(), ApiError> {
    let string_to_sign = signature::string_to_sign(method, params.all());
    if signature::verify(secret, &string_to_sign, params.required("Signature")?) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "SignatureDoesNotMatch",
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        ),
    ))
}

/// Runs the checks in the gateway's order, `verify` checking the signature with the key's
/// secret; on success the nonce is spent and the key's last-used time is now. `params` holds
/// the timestamp, nonce, key id and token under their V1 names whichever scheme signed.
pub(crate) fn authenticate(
    inner: &mut Inner,
    params: &Params,
    now: DateTime<Utc>,
    service: &str,
    verify: impl FnOnce(&str) -> Result<(), ApiError>,
) -> Result<Caller, ApiError> {
    let timestamp = params.required("Timestamp")?;
    let signed_at = parse_time(timestamp).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidTimeStamp.Format",
            format!("Specified time stamp or date value is not well formatted: {timestamp}."),
        )
    })?;
    if (now - signed_at).abs() > WINDOW {
        return Err(ApiError::bad_request(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let key_id = params.required("AccessKeyId")?;
    let (secret, caller) = identify(inner, key_id, params, now)?;
    verify(&secret)?;
    let nonce = (
        key_id.to_string(),
        params.required("SignatureNonce")?.to_string(),
    );
    inner.nonces.retain(|_, seen| now - *seen <= WINDOW);
    if inner.nonces.contains_key(&nonce) {
        return Err(ApiError::bad_request(
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    inner.nonces.insert(nonce, now);
    if let Some(key) = inner.world.key_mut(key_id) {
        key.last_used = Some(When::At(now));
        key.last_used_service = Some(service.to_string());
    }
    Ok(caller)
}

/// The secret to verify with, and the principal behind the key.
fn identify(
    inner: &Inner,
    key_id: &str,
    params: &Params,
    now: DateTime<Utc>,
) -> Result<(String, Caller), ApiError> {
    if let Some((owner, key)) = inner.world.find_key(key_id) {
        if key.status == KeyStatus::Inactive {
            return Err(ApiError::bad_request(
                "InvalidAccessKeyId.Inactive",
                "Specified access key is disabled.",
            ));
        }
        let principal = match owner {
            Owner::Root => Principal::Root,
            Owner::User(user) => Principal::User(user.name.clone()),
        };
        let caller = Caller {
            principal,
            leaked: key.leaked,
        };
        return Ok((key.secret.clone(), caller));
    }
    let Some(cred) = inner
        .world
        .temporary_credentials
        .iter()
        .find(|c| c.access_key_id == key_id)
    else {
        return Err(ApiError::not_found(
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    };
    let token = params.required("SecurityToken")?;
    if token != cred.security_token {
        return Err(ApiError::bad_request(
            "InvalidSecurityToken.MismatchWithAccessKey",
            "The security token you provided does not match the access key.",
        ));
    }
    if cred.expiration.at(now) <= now {
        return Err(ApiError::bad_request(
            "InvalidSecurityToken.Expired",
            "Specified SecurityToken is expired.",
        ));
    }
    let caller = Caller {
        principal: Principal::Role {
            arn: cred.role_arn.clone(),
            session: cred.session_name.clone(),
        },
        leaked: false,
    };
    Ok((cred.secret.clone(), caller))
}
