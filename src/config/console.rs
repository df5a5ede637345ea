//! `[console]`: the on-call console the daemon serves at `/`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::values;

#[derive(Debug, Deserialize, Serialize)]
pub struct ConsoleSettings {
    pub enabled: bool,
    /// Mark the session cookie `Secure`: set it when a TLS proxy fronts akguard (akguard
    /// itself listens in plain HTTP, so it cannot tell).
    pub secure_cookies: bool,
    /// How long a sign-in lasts.
    #[serde(deserialize_with = "values::text_or_number")]
    pub session_ttl: String,
}

/// The console's settings, validated; `None` in `Runtime` when it is off.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleConfig {
    pub secure_cookies: bool,
    pub session_ttl: Duration,
}

impl ConsoleSettings {
    pub(super) fn validate(&self) -> Result<Option<ConsoleConfig>, ConfigError> {
        let session_ttl = values::positive("console.session_ttl", &self.session_ttl, "\"12h\"")?;
        Ok(self.enabled.then_some(ConsoleConfig {
            secure_cookies: self.secure_cookies,
            session_ttl,
        }))
    }
}
