//! Bearer tokens for the status and operator API, checked against stored SHA-256 hashes.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::{ApiToken, Role};

/// Who is calling, by the configured token name.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
}

/// Finds the caller's token and checks that its role is at least `needed`.
pub fn authorize(
    tokens: &[ApiToken],
    headers: &HeaderMap,
    needed: Role,
) -> Result<Caller, ApiError> {
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    // Every entry is compared, so timing does not reveal which one matched.
    let mut found = None;
    for token in tokens {
        if bool::from(token.sha256.ct_eq(&digest)) {
            found = Some(token);
        }
    }
    let token =
        found.ok_or_else(|| ApiError::Unauthorized("the bearer token is not valid".into()))?;
    if token.role < needed {
        return Err(ApiError::Forbidden(format!(
            "token `{}` has the {} role; this needs {}",
            token.name,
            token.role.as_str(),
            needed.as_str()
        )));
    }
    Ok(Caller {
        name: token.name.clone(),
    })
}
