//! `[metrics]`: whether `/metrics` is served, on which address, and the bearer token a
//! scraper must present (from `AKGUARD__METRICS__TOKEN` only, like every secret).

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{ConfigError, serialize_secret};

/// Tokens shorter than this are too easy to guess.
const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Deserialize, Serialize)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Its own address for `/metrics`; unset, it is served beside the API on `server.listen`.
    pub listen: Option<String>,
    #[serde(default, serialize_with = "serialize_secret")]
    pub token: Option<SecretString>,
}

/// `/metrics` as the daemon serves it.
#[derive(Debug)]
pub struct MetricsConfig {
    pub listen: Option<SocketAddr>,
    pub token: Option<SecretString>,
}

impl MetricsSettings {
    /// `None` when metrics are off; the error names the invalid setting.
    pub(super) fn validate(&self) -> Result<Option<MetricsConfig>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let listen = match self.listen.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => Some(raw.parse().map_err(|_| {
                ConfigError::invalid("metrics.listen", "expected an address like 127.0.0.1:9464")
            })?),
        };
        if let Some(token) = &self.token
            && token.expose_secret().trim().chars().count() < MIN_TOKEN_LEN
        {
            return Err(ConfigError::invalid(
                "metrics.token",
                format!("must be at least {MIN_TOKEN_LEN} characters"),
            ));
        }
        Ok(Some(MetricsConfig {
            listen,
            token: self.token.clone(),
        }))
    }
}
