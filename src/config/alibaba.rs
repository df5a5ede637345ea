//! `[alibaba]`: akguard's own identity in Alibaba Cloud (never a leaked key), its endpoints,
//! timeouts, retries and rate limits, turned into the cloud client's options.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::error::Errors;
use super::{ConfigError, serialize_secret};
use crate::cloud::credentials::{BaseSource, Credentials};
use crate::cloud::product::Product;
use crate::cloud::ratelimit::ApiClass;
use crate::cloud::retry::RetryPolicy;
use crate::cloud::{ClientOptions, SignatureVersion};

#[derive(Debug, Deserialize, Serialize)]
pub struct AlibabaSettings {
    pub region: String,
    pub access_key_id: Option<String>,
    #[serde(serialize_with = "serialize_secret")]
    pub access_key_secret: Option<SecretString>,
    #[serde(serialize_with = "serialize_secret")]
    pub security_token: Option<SecretString>,
    /// Take credentials from the ECS metadata service instead: the instance RAM role's name,
    /// or `"auto"` to use whichever role the instance has.
    pub ecs_ram_role: Option<String>,
    pub metadata_url: String,
    /// Assume this role with the credentials above, e.g. to act in another account.
    pub role_arn: Option<String>,
    pub role_session_name: String,
    pub role_duration_secs: u64,
    /// One base URL for every product (an emulator); `endpoints.<product>` wins over it.
    pub endpoint: Option<String>,
    #[serde(default)]
    pub endpoints: BTreeMap<String, String>,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    /// `v1` (HMAC-SHA1) or `v3` (ACS3-HMAC-SHA256).
    pub signature_version: SignatureVersion,
    pub retry: RetrySettings,
    pub rate_limits: RateLimitSettings,
    /// `[[alibaba.accounts]]`: the other accounts, each reached through a role (see `accounts`).
    #[serde(default)]
    pub accounts: Vec<super::accounts::AccountSettings>,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct RetrySettings {
    pub max_attempts: u32,
    pub base_ms: u64,
    pub cap_ms: u64,
}

/// Calls per second, per account.
#[derive(Debug, Deserialize, Serialize)]
pub struct RateLimitSettings {
    pub lookup_events: f64,
    pub ram_writes: f64,
    /// IMS `SetAccessKeyPolicy` (the network fence).
    pub access_key_policy: f64,
    pub other: f64,
}

impl AlibabaSettings {
    /// The SDKs' standard variables apply where akguard's own settings are silent.
    pub(super) fn fill_from_standard_env(&mut self, env: &BTreeMap<String, String>) {
        let get = |k: &str| {
            env.get(k)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        if self.access_key_id.is_none() {
            self.access_key_id = get("ALIBABA_CLOUD_ACCESS_KEY_ID");
        }
        if self.access_key_secret.is_none() {
            self.access_key_secret = get("ALIBABA_CLOUD_ACCESS_KEY_SECRET").map(SecretString::from);
        }
        if self.security_token.is_none() {
            self.security_token = get("ALIBABA_CLOUD_SECURITY_TOKEN").map(SecretString::from);
        }
        if self.role_arn.is_none() {
            self.role_arn = get("ALIBABA_CLOUD_ROLE_ARN");
        }
    }

    /// `[alibaba.retry]`: how the worker reschedules a step whose call failed transiently.
    pub(super) fn step_retry(&self) -> Result<RetryPolicy, ConfigError> {
        if self.retry.max_attempts == 0
            || self.retry.base_ms == 0
            || self.retry.cap_ms < self.retry.base_ms
        {
            return Err(ConfigError::invalid(
                "alibaba.retry",
                "max_attempts and base_ms must be positive and cap_ms at least base_ms",
            ));
        }
        Ok(RetryPolicy {
            max_attempts: self.retry.max_attempts,
            base: Duration::from_millis(self.retry.base_ms),
            cap: Duration::from_millis(self.retry.cap_ms),
        })
    }

    /// Checks every `[alibaba]` setting; `None` when no credentials are configured. The error
    /// lists every invalid setting.
    pub(super) fn client_options(&self) -> Result<Option<ClientOptions>, ConfigError> {
        let mut errors = Errors::default();
        let mut invalid = |key: &str, message: &str| {
            errors.push(ConfigError::invalid(format!("alibaba.{key}"), message))
        };
        if self.region.trim().is_empty() {
            invalid("region", "must not be empty");
        }
        let base = match (
            &self.ecs_ram_role,
            &self.access_key_id,
            &self.access_key_secret,
        ) {
            (Some(_), Some(_), _) => {
                invalid(
                    "ecs_ram_role",
                    "set either ecs_ram_role or access_key_id, not both",
                );
                None
            }
            (Some(role), None, _) => Some(BaseSource::EcsRamRole {
                metadata_url: self.metadata_url.trim_end_matches('/').to_owned(),
                role: (role != "auto").then(|| role.clone()),
            }),
            (None, Some(id), Some(secret)) => Some(BaseSource::Static(Credentials {
                access_key_id: id.trim().to_owned(),
                access_key_secret: secret.clone(),
                security_token: self.security_token.clone(),
                expires_at: None,
            })),
            (None, Some(_), None) => {
                invalid(
                    "access_key_secret",
                    "access_key_id is set but its secret is not",
                );
                None
            }
            (None, None, Some(_)) => {
                invalid(
                    "access_key_id",
                    "access_key_secret is set but the key id is not",
                );
                None
            }
            (None, None, None) => return errors.finish(None),
        };
        let endpoints = endpoints(
            "alibaba.",
            self.endpoint.as_ref(),
            &self.endpoints,
            |product| Some(product.default_endpoint(&self.region)),
            &mut errors,
        );
        let mut invalid = |key: &str, message: &str| {
            errors.push(ConfigError::invalid(format!("alibaba.{key}"), message))
        };
        let assume_role = match &self.role_arn {
            Some(arn) if super::accounts::role_account(arn).is_none() => {
                invalid("role_arn", "expected acs:ram::<account id>:role/<name>");
                None
            }
            Some(arn) => {
                if !(900..=43_200).contains(&self.role_duration_secs) {
                    invalid("role_duration_secs", "must be between 900 and 43200");
                }
                Some((
                    arn.clone(),
                    self.role_session_name.clone(),
                    Duration::from_secs(self.role_duration_secs),
                ))
            }
            None => None,
        };
        let limits = &self.rate_limits;
        if [
            limits.lookup_events,
            limits.ram_writes,
            limits.access_key_policy,
            limits.other,
        ]
        .iter()
        .any(|r| !r.is_finite() || *r < 0.0)
        {
            invalid("rate_limits", "rates are calls per second, 0 for unlimited");
        }
        let Some(base) = base else {
            return Err(errors.into_error());
        };
        let regional_actiontrail =
            self.endpoint.is_none() && !self.endpoints.contains_key("actiontrail");
        errors.finish(Some(ClientOptions {
            base,
            assume_role,
            endpoints,
            regional_actiontrail,
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            timeout: Duration::from_millis(self.timeout_ms),
            signature_version: self.signature_version,
            rates: vec![
                (ApiClass::LookupEvents, limits.lookup_events),
                (ApiClass::RamWrite, limits.ram_writes),
                (ApiClass::AccessKeyPolicy, limits.access_key_policy),
                (ApiClass::Other, limits.other),
            ],
        }))
    }
}

/// Each product's base URL: `endpoints.<product>`, else `endpoint`, else `fallback`'s; every
/// key and URL is checked, errors named under `prefix` (`alibaba.`, `alibaba.accounts[N].`).
pub(super) fn endpoints(
    prefix: &str,
    endpoint: Option<&String>,
    named: &BTreeMap<String, String>,
    fallback: impl Fn(Product) -> Option<String>,
    errors: &mut Errors,
) -> HashMap<Product, String> {
    for name in named.keys() {
        if !Product::ALL.iter().any(|p| p.name() == name) {
            errors.push(ConfigError::invalid(
                format!("{prefix}endpoints.{name}"),
                "unknown product; expected ram, ims, sts, actiontrail, bss, kms or sas",
            ));
        }
    }
    let mut out = HashMap::new();
    for product in Product::ALL {
        let url = named
            .get(product.name())
            .or(endpoint)
            .cloned()
            .or_else(|| fallback(product))
            .unwrap_or_default();
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            errors.push(ConfigError::invalid(
                format!("{prefix}endpoints.{}", product.name()),
                "must be a full http:// or https:// base URL",
            ));
        }
        out.insert(product, url.trim_end_matches('/').to_owned());
    }
    out
}
