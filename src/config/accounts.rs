//! `[[alibaba.accounts]]`: the other accounts akguard answers for, each reached by assuming a
//! role there with akguard's own identity, with endpoints and rate limits of its own.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::alibaba::{AlibabaSettings, RateLimitSettings};
use super::error::Errors;
use crate::cloud::ClientOptions;
use crate::cloud::accounts::{AccountOptions, LeakPolling};

/// One `[[alibaba.accounts]]` entry.
#[derive(Debug, Deserialize, Serialize)]
pub struct AccountSettings {
    pub account_id: String,
    /// `acs:ram::<account_id>:role/<name>`, assumed with akguard's own credentials.
    pub role_arn: String,
    /// One base URL for every product in this account; `endpoints.<product>` wins over it.
    /// Unset: the home account's endpoints.
    pub endpoint: Option<String>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    /// Calls per second in this account; a rate left out is the home account's.
    #[serde(default)]
    pub rate_limits: AccountRates,
    /// `role` (poll with the assumed role) or `resource_directory` (the home account, a
    /// resource directory's management account, polls with `ResourceDirectoryAccountId`).
    #[serde(default)]
    pub security_center: LeakPolling,
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct AccountRates {
    pub lookup_events: Option<f64>,
    pub ram_writes: Option<f64>,
    pub other: Option<f64>,
}

/// Checks every entry against the home account's settings (`home`, already valid) and builds
/// each one's client options; the errors name the entry (`alibaba.accounts[N]`).
pub(super) fn validate(
    alibaba: &AlibabaSettings,
    home: Option<&ClientOptions>,
) -> Result<Vec<AccountOptions>, ConfigError> {
    if alibaba.accounts.is_empty() {
        return Ok(Vec::new());
    }
    let Some(home) = home else {
        return Err(ConfigError::invalid(
            "alibaba.accounts",
            "other accounts are reached with akguard's own credentials: set those first",
        ));
    };
    let mut errors = Errors::default();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, entry) in alibaba.accounts.iter().enumerate() {
        let at = |key: &str| format!("alibaba.accounts[{i}].{key}");
        let id = entry.account_id.trim();
        let named = |message: &str| format!("account {id}: {message}");
        let mut entry_errors = Errors::default();
        if crate::domain::text::account_id("account_id", id).is_err() {
            entry_errors.push(ConfigError::invalid(
                at("account_id"),
                "expected the account's numeric id",
            ));
        } else if !seen.insert(id.to_owned()) {
            entry_errors.push(ConfigError::invalid(
                at("account_id"),
                named("listed twice; each account takes one entry"),
            ));
        }
        match role_account(&entry.role_arn) {
            None => entry_errors.push(ConfigError::invalid(
                at("role_arn"),
                named("expected acs:ram::<account id>:role/<name>"),
            )),
            Some(of) if of != id => entry_errors.push(ConfigError::invalid(
                at("role_arn"),
                named(&format!("the role is in account {of}, not this one")),
            )),
            Some(_) => {}
        }
        let endpoints = super::alibaba::endpoints(
            &at(""),
            entry.endpoint.as_ref(),
            &entry.endpoints,
            |product| home.endpoints.get(&product).cloned(),
            &mut entry_errors,
        );
        let rates = rates(&alibaba.rate_limits, &entry.rate_limits);
        if rates.iter().any(|(_, r)| !r.is_finite() || *r < 0.0) {
            entry_errors.push(ConfigError::invalid(
                at("rate_limits"),
                named("rates are calls per second, 0 for unlimited"),
            ));
        }
        if !entry_errors.is_empty() {
            errors.push(entry_errors.into_error());
            continue;
        }
        let regional_actiontrail = home.regional_actiontrail
            && entry.endpoint.is_none()
            && !entry.endpoints.contains_key("actiontrail");
        out.push(AccountOptions {
            account_id: id.to_owned(),
            polling: entry.security_center,
            client: ClientOptions {
                base: home.base.clone(),
                assume_role: Some((
                    entry.role_arn.trim().to_owned(),
                    alibaba.role_session_name.clone(),
                    std::time::Duration::from_secs(alibaba.role_duration_secs),
                )),
                endpoints,
                regional_actiontrail,
                connect_timeout: home.connect_timeout,
                timeout: home.timeout,
                signature_version: home.signature_version,
                rates: rates.to_vec(),
            },
        });
    }
    errors.finish(out)
}

/// The account id in `acs:ram::<id>:role/<name>`, or `None` when the ARN is not shaped so.
pub(super) fn role_account(arn: &str) -> Option<&str> {
    let rest = arn.trim().strip_prefix("acs:ram::")?;
    let (account, role) = rest.split_once(':')?;
    let name = role.strip_prefix("role/")?;
    let valid = !account.is_empty()
        && account.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && !name.contains(char::is_whitespace);
    valid.then_some(account)
}

fn rates(
    home: &RateLimitSettings,
    own: &AccountRates,
) -> [(crate::cloud::ratelimit::ApiClass, f64); 3] {
    use crate::cloud::ratelimit::ApiClass;
    [
        (
            ApiClass::LookupEvents,
            own.lookup_events.unwrap_or(home.lookup_events),
        ),
        (
            ApiClass::RamWrite,
            own.ram_writes.unwrap_or(home.ram_writes),
        ),
        (ApiClass::Other, own.other.unwrap_or(home.other)),
    ]
}

#[cfg(test)]
mod tests {
    use super::role_account;

    #[test]
    fn a_role_arn_names_its_account() {
        assert_eq!(
            role_account("acs:ram::2222222222222222:role/akguard"),
            Some("2222222222222222")
        );
        for bad in [
            "acs:ram::role/akguard",
            "acs:ram::22x:role/akguard",
            "acs:ram::2222:user/akguard",
            "acs:ram::2222:role/",
            "arn:aws:iam::2222:role/x",
        ] {
            assert_eq!(role_account(bad), None, "{bad}");
        }
    }
}
