//! `[[notify.channels]]`: where on-call notifications go, and their secrets, which come from
//! `AKGUARD__NOTIFY__CHANNELS__<NAME>__SECRET` (the channel's name in capitals) because
//! the list's elements have no variable of their own.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::{Deserialize, Serialize, Serializer};

use super::ConfigError;
use super::error::Errors;
use crate::cloud::retry::RetryPolicy;
use crate::domain::notice::{NoticeKind, Route, Severity};

/// The variables that carry channel secrets, kept away from the `config` crate (which would
/// read them as keys of a table where the file has a list).
pub(super) const SECRET_VARS: &str = "AKGUARD__NOTIFY__CHANNELS__";

#[derive(Debug, Deserialize, Serialize)]
pub struct NotifySettings {
    #[serde(default)]
    pub channels: Vec<ChannelSettings>,
    pub max_attempts: u32,
    pub refused_attempts: u32,
    pub retry_base_ms: u64,
    pub retry_cap_ms: u64,
}

/// The channels and how their deliveries are retried.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub channels: Vec<Channel>,
    /// For failures that may pass: 5xx, 429, a network error.
    pub retry: RetryPolicy,
    /// Attempts of a message the platform refused (4xx, or an error code in a 200 answer).
    pub refused_attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Dingtalk,
    Lark,
    Slack,
    Wecom,
    Pagerduty,
    Webhook,
}

impl ChannelKind {
    /// What `secret` is for this kind; `None`: the kind takes no secret.
    fn secret_role(self) -> Option<&'static str> {
        match self {
            Self::Dingtalk | Self::Lark => Some("the robot's signing secret"),
            Self::Pagerduty => Some("the integration's routing key"),
            Self::Webhook => Some("the HMAC secret the receiver verifies"),
            Self::Slack | Self::Wecom => None,
        }
    }

    /// The events this kind can carry: PagerDuty pages (and resolves) only.
    fn events(self) -> &'static [NoticeKind] {
        match self {
            Self::Pagerduty => &[
                NoticeKind::NeedsPerson,
                NoticeKind::StepFailing,
                NoticeKind::ChainOpened,
                NoticeKind::Resolved,
                NoticeKind::Cancelled,
            ],
            _ => &NoticeKind::ALL,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    En,
    Ja,
    Zh,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct ChannelSettings {
    pub name: String,
    pub kind: ChannelKind,
    /// Robot URLs carry their token: only the scheme and host are ever shown.
    #[serde(serialize_with = "serialize_webhook_url")]
    pub url: String,
    #[serde(default, serialize_with = "super::serialize_secret")]
    pub secret: Option<SecretString>,
    /// Unset: every event the kind can carry.
    #[serde(default)]
    pub events: Option<Vec<NoticeKind>>,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
    #[serde(default = "english")]
    pub language: Language,
    #[serde(default)]
    pub show_key_id: bool,
}

fn lowest() -> Severity {
    Severity::Info
}

fn english() -> Language {
    Language::En
}

fn serialize_webhook_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    let shown = match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}/[redacted]",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default()
        ),
        Err(_) => "[redacted]".into(),
    };
    serializer.serialize_str(&shown)
}

/// A channel ready to send to.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub url: reqwest::Url,
    pub secret: Option<SecretString>,
    pub route: Route,
    pub language: Language,
    pub show_key_id: bool,
}

impl NotifySettings {
    /// Sets each channel's secret from its variable; a variable naming no channel, or a key
    /// other than `SECRET`, is an error.
    pub(super) fn fill_secrets(&mut self, vars: &BTreeMap<String, String>, errors: &mut Errors) {
        for (var, value) in vars {
            let rest = &var[SECRET_VARS.len()..];
            let found = rest.rsplit_once("__").and_then(|(name, key)| {
                let channel = self
                    .channels
                    .iter_mut()
                    .find(|c| c.name.eq_ignore_ascii_case(name))?;
                key.eq_ignore_ascii_case("secret").then_some(channel)
            });
            match found {
                Some(channel) => channel.secret = Some(SecretString::from(value.clone())),
                None => errors.push(ConfigError::Unknown {
                    key: format!(
                        "notify.channels.{}",
                        rest.to_ascii_lowercase().replace("__", ".")
                    ),
                    origin: format!("environment variable {var}"),
                    suggestion: None,
                }),
            }
        }
    }

    pub(super) fn validate(&self, errors: &mut Errors) -> NotifyConfig {
        errors.at_least_one([
            ("notify.max_attempts", u64::from(self.max_attempts)),
            ("notify.refused_attempts", u64::from(self.refused_attempts)),
            ("notify.retry_base_ms", self.retry_base_ms),
        ]);
        if self.retry_cap_ms < self.retry_base_ms {
            errors.push(ConfigError::invalid(
                "notify.retry_cap_ms",
                "must be at least notify.retry_base_ms",
            ));
        }
        NotifyConfig {
            channels: self.channels(errors),
            retry: RetryPolicy {
                max_attempts: self.max_attempts,
                base: std::time::Duration::from_millis(self.retry_base_ms),
                cap: std::time::Duration::from_millis(self.retry_cap_ms),
            },
            refused_attempts: self.refused_attempts.min(self.max_attempts),
        }
    }

    fn channels(&self, errors: &mut Errors) -> Vec<Channel> {
        let mut channels = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            let at = |field: &str| format!("notify.channels[{i}].{field} (channel `{}`)", c.name);
            let valid_name = !c.name.is_empty()
                && c.name.len() <= 64
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid_name {
                errors.push(ConfigError::invalid(
                    at("name"),
                    "must be 1 to 64 lowercase letters, digits or '_' (it names the variable \
                     AKGUARD__NOTIFY__CHANNELS__<NAME>__SECRET)",
                ));
            }
            if self.channels[..i].iter().any(|o| o.name == c.name) {
                errors.push(ConfigError::invalid(
                    at("name"),
                    "another channel has this name",
                ));
            }
            let url = match check_url(&c.url) {
                Ok(url) => Some(url),
                Err(message) => {
                    errors.push(ConfigError::invalid(at("url"), message));
                    None
                }
            };
            match (c.kind.secret_role(), &c.secret) {
                (Some(role), None) => errors.push(ConfigError::invalid(
                    at("secret"),
                    format!(
                        "{role} is required: set AKGUARD__NOTIFY__CHANNELS__{}__SECRET",
                        c.name.to_ascii_uppercase()
                    ),
                )),
                (None, Some(_)) => errors.push(ConfigError::invalid(
                    at("secret"),
                    "this kind of channel takes no secret (its URL is its credential)",
                )),
                _ => {}
            }
            let events = c.events.clone().unwrap_or(c.kind.events().to_vec());
            if events.is_empty() {
                errors.push(ConfigError::invalid(
                    at("events"),
                    "lists no event: the channel would never be used",
                ));
            }
            if let Some(bad) = events.iter().find(|e| !c.kind.events().contains(e)) {
                let valid: Vec<&str> = c.kind.events().iter().map(|e| e.as_str()).collect();
                errors.push(ConfigError::invalid(
                    at("events"),
                    format!(
                        "`{}` is not an event this kind of channel carries; expected some of: {}",
                        bad.as_str(),
                        valid.join(", ")
                    ),
                ));
            }
            if let Some(url) = url {
                channels.push(Channel {
                    name: c.name.clone(),
                    kind: c.kind,
                    url,
                    secret: c.secret.clone(),
                    route: Route {
                        channel: c.name.clone(),
                        events,
                        min_severity: c.min_severity,
                    },
                    language: c.language,
                    show_key_id: c.show_key_id,
                });
            }
        }
        channels
    }
}

/// `https://`, or `http://` to a loopback address (a local relay, or a test's receiver).
fn check_url(raw: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(raw).map_err(|_| "is not a URL".to_owned())?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" if !host.is_empty() => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err("must be an https:// URL (http:// only to a loopback address)".into()),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use secrecy::ExposeSecret;

    use super::super::Settings;

    fn load(file: &str, env: &[(&str, &str)]) -> Result<Settings, super::ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(file.as_bytes()).unwrap();
        Settings::load_with_env(
            Some(f.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    const HOOK: &str = "[[notify.channels]]\nname = \"ops_hook\"\nkind = \"webhook\"\n\
                        url = \"https://hooks.example.com/akguard\"\n";

    #[test]
    fn a_channel_secret_comes_from_its_variable_and_is_never_shown() {
        let settings = load(
            HOOK,
            &[(
                "AKGUARD__NOTIFY__CHANNELS__OPS_HOOK__SECRET",
                "hook-secret-value-1",
            )],
        )
        .unwrap();
        let runtime = settings.validate().unwrap();
        let channel = &runtime.notify.channels[0];
        assert_eq!(
            channel.secret.as_ref().unwrap().expose_secret(),
            "hook-secret-value-1"
        );
        let shown = settings.redacted().to_string();
        assert!(
            !shown.contains("hook-secret-value-1") && !shown.contains("example.com/akguard"),
            "{shown}"
        );
    }

    #[test]
    fn a_variable_naming_no_channel_or_no_secret_is_an_unknown_setting() {
        let err = load(
            HOOK,
            &[
                ("AKGUARD__NOTIFY__CHANNELS__OPS_HOOKK__SECRET", "x"),
                (
                    "AKGUARD__NOTIFY__CHANNELS__OPS_HOOK__URL",
                    "https://elsewhere.example",
                ),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown setting `notify.channels.ops_hookk.secret`"),
            "{err}"
        );
        assert!(
            err.contains("unknown setting `notify.channels.ops_hook.url`"),
            "{err}"
        );
        assert!(!err.contains("https://elsewhere"), "{err}");
    }

    #[test]
    fn a_secret_in_the_file_is_refused() {
        let err = load(&format!("{HOOK}secret = \"written-in-the-file\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("notify.channels[0].secret"), "{err}");
        assert!(!err.contains("written-in-the-file"), "{err}");
    }
}
