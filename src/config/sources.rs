//! Webhook sources: which format each speaks and how each must authenticate.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::error::Errors;
use super::{ConfigError, serialize_secret, values};
use crate::domain::Cidr;

/// Secrets shorter than this are too easy to guess for a public endpoint.
const MIN_SECRET_LEN: usize = 16;
/// Source names that akguard's own intake paths use for deduplication.
const RESERVED_NAMES: &[&str] = &["manual", "sas"];
const DEFAULT_API_KEY_HEADER: &str = "x-akguard-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    Generic,
    Eventbridge,
    Cloudmonitor,
}

impl SourceFormat {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "generic" => Some(Self::Generic),
            "eventbridge" => Some(Self::Eventbridge),
            "cloudmonitor" => Some(Self::Cloudmonitor),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Eventbridge => "eventbridge",
            Self::Cloudmonitor => "cloudmonitor",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    #[default]
    Hmac,
    ApiKey,
    Basic,
    None,
}

/// One `[intake.sources.<name>]` table as written.
#[derive(Debug, Deserialize, Serialize)]
pub struct SourceSettings {
    pub format: Option<SourceFormat>,
    #[serde(default)]
    pub auth: AuthKind,
    #[serde(default, serialize_with = "serialize_secret")]
    pub secret: Option<SecretString>,
    pub header: Option<String>,
    pub username: Option<String>,
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub allow_cidrs: Vec<String>,
    /// The Alibaba Cloud account ids this source may report for; any when empty.
    #[serde(default, deserialize_with = "values::list_or_comma_separated")]
    pub accounts: Vec<String>,
}

/// How a source proves who it is.
#[derive(Debug)]
pub enum SourceAuth {
    /// `X-Akguard-Signature: sha256=<hex HMAC(secret, timestamp "." body)>`.
    Hmac(SecretString),
    /// A fixed header, as EventBridge API destinations send it. `header` is lowercase.
    ApiKey { header: String, value: SecretString },
    Basic {
        username: String,
        password: SecretString,
    },
    /// Switched off for local development.
    None,
}

/// A source ready for use.
#[derive(Debug)]
pub struct IntakeSource {
    pub name: String,
    pub format: SourceFormat,
    pub auth: SourceAuth,
    pub allow: Vec<Cidr>,
    /// Empty: any account. Otherwise a notification must name one of these.
    pub accounts: Vec<String>,
}

impl SourceSettings {
    /// The source ready for use; the error lists every invalid setting of it.
    pub(super) fn resolve(&self, name: &str) -> Result<IntakeSource, ConfigError> {
        let key = |field: &str| format!("intake.sources.{name}.{field}");
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::invalid(
                key("format"),
                "source names may hold only letters, digits, '_' and '-'",
            ));
        }
        if RESERVED_NAMES.contains(&name) {
            return Err(ConfigError::invalid(
                key("format"),
                format!("`{name}` is reserved for akguard's own intake paths"),
            ));
        }
        let mut errors = Errors::default();
        let format = self.format.or_else(|| SourceFormat::from_name(name));
        if format.is_none() {
            errors.push(ConfigError::invalid(
                key("format"),
                "required when the source's name is not generic, eventbridge or cloudmonitor",
            ));
        }
        let mut secret = || -> Option<SecretString> {
            let problem = match &self.secret {
                Some(s) if s.expose_secret().len() >= MIN_SECRET_LEN => return Some(s.clone()),
                Some(_) => format!("must be at least {MIN_SECRET_LEN} characters"),
                None => "required unless auth = \"none\"".to_owned(),
            };
            errors.push(ConfigError::invalid(key("secret"), problem));
            None
        };
        let auth = match self.auth {
            AuthKind::Hmac => secret().map(SourceAuth::Hmac),
            AuthKind::ApiKey => {
                let value = secret();
                let header = self.header.as_deref().unwrap_or(DEFAULT_API_KEY_HEADER);
                if axum::http::HeaderName::from_bytes(header.as_bytes()).is_err() {
                    errors.push(ConfigError::invalid(
                        key("header"),
                        "not a valid HTTP header name",
                    ));
                }
                value.map(|value| SourceAuth::ApiKey {
                    header: header.to_ascii_lowercase(),
                    value,
                })
            }
            AuthKind::Basic => {
                let password = secret();
                let username = self
                    .username
                    .clone()
                    .filter(|u| !u.is_empty() && !u.contains(':'));
                if username.is_none() {
                    errors.push(ConfigError::invalid(
                        key("username"),
                        "required for basic auth, without ':'",
                    ));
                }
                username
                    .zip(password)
                    .map(|(username, password)| SourceAuth::Basic { username, password })
            }
            AuthKind::None => Some(SourceAuth::None),
        };
        let allow = self
            .allow_cidrs
            .iter()
            .filter_map(|c| match c.parse() {
                Ok(cidr) => Some(cidr),
                Err(_) => {
                    errors.push(ConfigError::invalid(
                        key("allow_cidrs"),
                        format!("`{c}` is not a CIDR block"),
                    ));
                    None
                }
            })
            .collect();
        let accounts: Vec<String> = self.accounts.iter().map(|a| a.trim().to_owned()).collect();
        if let Some(bad) = accounts
            .iter()
            .find(|a| a.is_empty() || !a.bytes().all(|b| b.is_ascii_digit()))
        {
            errors.push(ConfigError::invalid(
                key("accounts"),
                format!("{bad:?} is not an Alibaba Cloud account id (digits only)"),
            ));
        }
        match (format, auth) {
            (Some(format), Some(auth)) => errors.finish(IntakeSource {
                name: name.to_owned(),
                format,
                auth,
                allow,
                accounts,
            }),
            _ => Err(errors.into_error()),
        }
    }
}
